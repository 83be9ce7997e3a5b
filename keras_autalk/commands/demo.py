"""`autalk demo`: the bundled photo + bundled speech + bundled model -> an MP4."""

from keras_autalk.commands.common import EXIT_OK, note


def add_parser(subparsers):
    """Add `autalk demo` and its options to `subparsers`."""
    parser = subparsers.add_parser(
        "demo", help="make a talking-head video from the bundled photo and speech"
    )
    parser.add_argument("-o", "--output", default="demo.mp4", help="output MP4 (default demo.mp4)")
    parser.add_argument(
        "--runtime",
        default="auto",
        metavar="{auto,litert,keras}",
        help="where the model runs (default auto: LiteRT, without TensorFlow, "
        "where it can; see autalk generate --help)",
    )
    parser.set_defaults(handler=run)


def run(args):
    """Run `autalk demo` with its parsed options; return the exit status."""
    from keras_autalk.inference import generate
    from keras_autalk.media import photos
    from keras_autalk.presets import pretrained

    # Checked first, so a missing bundled part is said before any work.
    pretrained.resolve_model_dir(pretrained.DEFAULT_MODEL)
    speech = generate.demo_speech_path()
    result = generate.generate(
        photos.load_photo(generate.DEMO_PHOTO),
        speech,
        args.output,
        model=pretrained.DEFAULT_MODEL,
        progress=True,
        runtime=args.runtime,
    )
    for message in result.notes:
        note(message)
    print(
        f"wrote {args.output}: {result.num_frames} frames at {result.fps:g} fps, "
        f"{result.audio_seconds:.1f} s of speech ({generate.DEMO_PHOTO} photo, bundled "
        f"speech), in {result.timings['total']:.1f} s ({result.runtime})"
    )
    return EXIT_OK
