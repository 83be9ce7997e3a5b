"""`autalk align PHOTO -o crop.png`: the aligned face crop (and landmarks JSON) of a photo."""

from keras_autalk.commands.common import EXIT_OK, add_face_choice, face_choice, note


def add_parser(subparsers):
    """Add `autalk align` and its options to `subparsers`."""
    parser = subparsers.add_parser(
        "align", help="find the face in a photo and write the aligned crop"
    )
    parser.add_argument("image", help="the photo (JPEG, PNG, WebP, ...)")
    parser.add_argument(
        "-o", "--output", required=True, help="where to write the crop (.png or .jpg)"
    )
    parser.add_argument(
        "--landmarks", help="also write the landmarks and transform to this JSON file"
    )
    parser.add_argument("--size", type=int, default=None, help="crop side in pixels (default 128)")
    parser.add_argument(
        "--detector",
        choices=("hog", "cnn"),
        default=None,
        help="dlib face detector (default hog; cnn is slower and stricter)",
    )
    add_face_choice(parser)
    parser.set_defaults(handler=run)


def run(args):
    """Run `autalk align` with its parsed options; return the exit status."""
    from keras_autalk.media import align

    config = align.face_config(size=args.size, detector=args.detector)
    face_index, face_box = face_choice(args)
    result = align.align_photo(
        args.image, args.output, args.landmarks, config, face_index=face_index, face_box=face_box
    )
    for message in result.notes:
        note(message)
    print(f"wrote {args.output}" + (f" and {args.landmarks}" if args.landmarks else ""))
    return EXIT_OK
