"""`autalk generate`: a face photo and speech in, a talking-head MP4 out."""

from keras_autalk.commands.common import EXIT_OK, add_face_choice, face_choice, note


def add_parser(subparsers):
    """Add `autalk generate` and its options to `subparsers`."""
    parser = subparsers.add_parser(
        "generate", help="make a talking-head video from a face photo and speech",
        description="Find the face in PHOTO, animate it with SPEECH and write an MP4 with "
        "the speech as its audio track.",
    )
    parser.add_argument("--image", required=True, metavar="PHOTO",
                        help="the face photo (JPEG, PNG, WebP, TIFF, ...)")
    parser.add_argument("--audio", required=True, metavar="SPEECH",
                        help="the speech (WAV, FLAC, OGG, MP3, M4A, ...; any rate and channels)")
    parser.add_argument("-o", "--output", required=True, help="the MP4 to write")
    parser.add_argument("--size", type=int, default=None,
                        help="crop side the model runs at (default: the model's, 128)")
    parser.add_argument("--au-csv", default=None,
                        help="also write the predicted AU curves to this CSV (OpenFace columns)")
    parser.add_argument("--articulation", type=float, default=1.0,
                        help="scale the predicted mouth action units (default 1.0; 0 keeps "
                        "the AU-driven mouth still)")
    parser.add_argument("--fps", type=float, default=None,
                        help="output frame rate (default: the model's, 25)")
    add_face_choice(parser)
    parser.add_argument("--model", default="demo",
                        help="a pretrained model name or folder (default demo)")
    parser.set_defaults(handler=run)


def run(args):
    """Run `autalk generate` with its parsed options; return the exit status."""
    from keras_autalk.inference import generate

    face_index, face_box = face_choice(args)
    result = generate.generate(
        args.image, args.audio, args.output, model=args.model, size=args.size,
        au_csv=args.au_csv, articulation=args.articulation, fps=args.fps, progress=True,
        face=face_index, face_box=face_box)
    for message in result.notes:
        note(message)
    print(f"wrote {args.output}" + (f" and {args.au_csv}" if args.au_csv else "")
          + f": {result.num_frames} frames at {result.fps:g} fps, "
          f"{result.audio_seconds:.1f} s of speech, in {result.timings['total']:.1f} s")
    return EXIT_OK
