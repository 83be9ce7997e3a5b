"""The `autalk` command line.

Every sub-command turns bad input into one sentence on stderr and a
non-zero exit status; a traceback is printed only with `--debug` (or
AUTALK_DEBUG=1), for bug reports.
"""

import argparse
import os
import sys

# TensorFlow's C++ start-up chatter is noise for a command-line user.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from keras_autalk import __version__  # noqa: E402
from keras_autalk.errors import AutalkError  # noqa: E402

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_INTERRUPTED = 130


def note(message):
    """Tell the user something worth knowing that is not an error."""
    print(f"autalk: note: {message}", file=sys.stderr)


def _add_doctor(subparsers):
    parser = subparsers.add_parser(
        "doctor", help="check the installation: versions, dlib models, ffmpeg, tensorflow-io"
    )
    parser.set_defaults(handler=_run_doctor)


def _run_doctor(args):
    from keras_autalk import doctor
    from keras_autalk.native import import_tensorflow

    import_tensorflow()

    checks = doctor.run_checks()
    print(doctor.format_report(checks))
    return EXIT_OK if doctor.all_required_ok(checks) else EXIT_ERROR


def _add_align(subparsers):
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
        "--detector", choices=("hog", "cnn"), default=None,
        help="dlib face detector (default hog; cnn is slower and stricter)",
    )
    parser.set_defaults(handler=_run_align)


def _run_align(args):
    from keras_autalk import align

    config = align.face_config(size=args.size, detector=args.detector)
    result = align.align_photo(args.image, args.output, args.landmarks, config)
    for message in result.notes:
        note(message)
    print(f"wrote {args.output}" + (f" and {args.landmarks}" if args.landmarks else ""))
    return EXIT_OK


def _add_features(subparsers):
    parser = subparsers.add_parser(
        "features", help="compute the per-video-frame audio features of a recording"
    )
    parser.add_argument("audio", help="WAV, FLAC, OGG, MP3 or M4A file, any rate and channels")
    parser.add_argument("-o", "--output", required=True, help="where to write them (.npy)")
    parser.add_argument(
        "--backend", choices=("auto", "tfio", "soundfile"), default="auto",
        help="audio decoding backend (default: tensorflow-io if its ops load)",
    )
    parser.set_defaults(handler=_run_features)


def _run_features(args):
    from keras_autalk.native import import_tensorflow

    import_tensorflow()
    from keras_autalk import features

    shape = features.write_features(args.audio, args.output, backend=args.backend)
    print(f"wrote {args.output}: {shape[0]} frames x {shape[1]} steps x {shape[2]} mel bins")
    return EXIT_OK


def _add_prepare(subparsers):
    parser = subparsers.add_parser(
        "prepare", help="turn a corpus (demo, GRID, TCD-TIMIT, a folder) into TFRecords"
    )
    parser.add_argument("--corpus", required=True, choices=("demo", "grid", "tcd-timit", "folder"))
    parser.add_argument("--out", required=True, help="output folder for the TFRecords")
    parser.add_argument(
        "--root", help="the corpus folder (demo: where it is rendered; default demo_corpus "
        "beside --out)",
    )
    parser.add_argument("--size", default="default", choices=("tiny", "small", "default"),
                        help="demo corpus size (default: about 10 minutes on 2 cores)")
    parser.add_argument("--seed", type=int, default=0, help="demo corpus seed")
    parser.add_argument("--workers", type=int, default=2, help="processes (default 2)")
    parser.add_argument("--num-shards", type=int, default=1,
                        help="machines sharing the work (split by speaker)")
    parser.add_argument("--shard-index", type=int, default=0, help="this machine's share (0-based)")
    parser.add_argument("--test-speakers", default="",
                        help="comma-separated speakers of the test split (real corpora)")
    parser.add_argument("--au-estimator", default="default",
                        help="AU labels for videos without an OpenFace CSV: default, none, or a JSON path")
    parser.set_defaults(handler=_run_prepare)


def _run_prepare(args):
    from keras_autalk.native import import_tensorflow

    import_tensorflow()
    from keras_autalk import preparation

    notes = []
    test_speakers = [name for name in args.test_speakers.split(",") if name]
    manifest = preparation.prepare(
        args.corpus, args.out, root=args.root, size=args.size, seed=args.seed,
        num_workers=args.workers, num_shards=args.num_shards, shard_index=args.shard_index,
        test_speakers=test_speakers, au_estimator=args.au_estimator, notes=notes,
    )
    for message in notes:
        note(message)
    summary = ", ".join(
        f"{split}: {info['examples']} utterances, {info['frames']} frames"
        for split, info in sorted(manifest.get("splits", {}).items())
    )
    print(f"wrote {args.out} ({summary}; {manifest.get('skipped', 0)} skipped)")
    return EXIT_OK


def _add_train(subparsers):
    parser = subparsers.add_parser(
        "train", help="run a training recipe (recipes/NAME.py), e.g. talker_demo",
        description="Run a training recipe; the options after RECIPE are the recipe's own "
        "(--out, --epochs, --strategy mirrored|multi-worker|default, ...; see RECIPE --help).",
    )
    parser.add_argument("recipe", help="au_classifier_demo, talker_demo, talker_grid, "
                        "talker_tcd_timit, or the path of a recipe file")
    parser.add_argument("recipe_args", nargs=argparse.REMAINDER, help="the recipe's options")
    parser.set_defaults(handler=_run_train)


def _run_train(args):
    import runpy

    from keras_autalk.training import find_recipe

    path = find_recipe(args.recipe)
    recipe = runpy.run_path(str(path), run_name="autalk_recipe")
    if "main" not in recipe:
        raise AutalkError(f"The recipe '{path}' has no main(argv) function.")
    return recipe["main"](args.recipe_args) or EXIT_OK


def _add_demo(subparsers):
    parser = subparsers.add_parser(
        "demo", help="make a talking-head video from the bundled photo and speech"
    )
    parser.add_argument("-o", "--output", default="demo.mp4", help="output MP4 (default demo.mp4)")
    parser.set_defaults(handler=_run_demo)


def _run_demo(args):
    raise AutalkError(
        "The bundled pretrained model is not part of this release yet (it arrives "
        "with the model and product milestones); nothing was written."
    )


def build_parser():
    """The argument parser of `autalk`."""
    parser = argparse.ArgumentParser(
        prog="autalk",
        description="Talking-head video from one face photo and speech (keras-autalk).",
    )
    parser.add_argument("--version", action="version", version=f"keras-autalk {__version__}")
    parser.add_argument(
        "--debug", action="store_true", help="show the traceback of unexpected errors"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for add in (_add_demo, _add_prepare, _add_train, _add_align, _add_features, _add_doctor):
        add(subparsers)
    return parser


def main(argv=None):
    """Run `autalk` with `argv` (default: the process arguments); return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = args.debug or os.environ.get("AUTALK_DEBUG") == "1"
    try:
        return args.handler(args)
    except AutalkError as error:
        print(f"autalk: error: {error}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("autalk: interrupted; no output was written.", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as error:  # noqa: BLE001 - the last line of defence
        if debug:
            raise
        print(
            f"autalk: error: unexpected failure ({type(error).__name__}: {error}); "
            "run again with --debug and report the traceback.",
            file=sys.stderr,
        )
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
