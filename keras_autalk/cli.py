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
    from keras_autalk.commands import doctor
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
    from keras_autalk.commands import align

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
    from keras_autalk.commands import features

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
    from keras_autalk.commands import prepare as preparation

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
                        "talker_tcd_timit, sync_expert_demo, or the path of a recipe file")
    parser.add_argument("recipe_args", nargs=argparse.REMAINDER, help="the recipe's options")
    parser.set_defaults(handler=_run_train)


def _run_train(args):
    import runpy

    from keras_autalk.training.fit import find_recipe

    path = find_recipe(args.recipe)
    recipe = runpy.run_path(str(path), run_name="autalk_recipe")
    if "main" not in recipe:
        raise AutalkError(f"The recipe '{path}' has no main(argv) function.")
    return recipe["main"](args.recipe_args) or EXIT_OK


def _add_evaluate(subparsers):
    parser = subparsers.add_parser(
        "evaluate", help="score talkers and baselines on a prepared split (PSNR, SSIM, CPBD, "
        "LMD, AU, identity, lip sync)",
        description="Run each --model on every utterance of a prepared split and score it "
        "against the real frames, beside the static and ground-truth baselines; writes "
        "metrics.json, metrics.md, au_curves.png and frame_strip.png into -o. With "
        "--real-speech: the real-speech benchmark instead (klettres-data recordings through "
        "`generate`, measured on the MP4s); writes real_speech.json and real_speech.md.",
    )
    parser.add_argument("--prepared", help="folder written by `autalk prepare` (not needed "
                        "with --real-speech)")
    parser.add_argument("--split", default="test", help="split to evaluate (default test)")
    parser.add_argument(
        "--model", action="append", default=None, metavar="[NAME=]MODEL",
        help="'demo', a pretrained folder or a training run's talker.keras; repeat for "
        "several rows (default: demo)")
    parser.add_argument("--au-classifier", help="AU classifier .keras for the AU scores "
                        "(from `autalk train au_classifier_demo`; without it: no AU scores)")
    parser.add_argument("--sync-expert", help="sync expert .keras for LSE-D / LSE-C (from "
                        "`autalk train sync_expert_demo`; without it: no sync scores)")
    parser.add_argument("--max-utterances", type=int, default=None,
                        help="evaluate only the first N utterances")
    parser.add_argument("--every", type=int, default=1, metavar="K",
                        help="evaluate every K-th utterance (a subset that spans all speakers)")
    parser.add_argument("--no-baselines", action="store_true",
                        help="leave out the static and ground-truth rows")
    real = parser.add_argument_group("real-speech benchmark (--real-speech)")
    real.add_argument("--real-speech", action="store_true",
                      help="run the real-speech benchmark (klettres-data recordings, fetched "
                      "once and cached) instead of scoring a prepared split")
    real.add_argument("--photo", action="append", default=None, metavar="NAME_OR_PATH",
                      help="photo to animate: grace_hopper (the bundled one), astronaut, or a "
                      "file; repeat for several (default: grace_hopper and astronaut)")
    real.add_argument("--language", action="append", default=None, metavar="LANG",
                      help="klettres-data language; repeat for several (default: en, en_GB)")
    real.add_argument("--tracks", type=int, default=1, metavar="N",
                      help="tracks per language (seeds --seed, --seed + 1, ...; default 1)")
    real.add_argument("--duration", type=float, default=15.0, metavar="S",
                      help="shortest track in seconds (default 15)")
    real.add_argument("--seed", type=int, default=0, help="first track's seed (default 0)")
    real.add_argument("--condition", action="append", default=None, metavar="NAME",
                      help="recording condition of the tracks: clean, phone (8 kHz band), "
                      "noisy (pink-ish noise, 10 dB SNR) or reverb (RT60 0.5 s); repeat for "
                      "several (default: clean); targets judge the clean English rows")
    real.add_argument("--reference-corpus", metavar="ROOT",
                      help="demo corpus root (`autalk prepare --corpus demo --root ROOT`): "
                      "adds the ground-truth row measured on its held-out videos")
    real.add_argument("--reference-utterances", type=int, default=8, metavar="N",
                      help="held-out videos measured for the ground-truth row (default 8)")
    real.add_argument("--keep-videos", action="store_true",
                      help="keep the generated MP4s (in -o/videos)")
    parser.add_argument("-o", "--output", required=True, help="output folder")
    parser.set_defaults(handler=_run_evaluate)


def _run_evaluate(args):
    from keras_autalk.evaluation import evaluate as evaluation

    return evaluation.run_cli(args, note=note)


def _add_demo(subparsers):
    parser = subparsers.add_parser(
        "demo", help="make a talking-head video from the bundled photo and speech"
    )
    parser.add_argument("-o", "--output", default="demo.mp4", help="output MP4 (default demo.mp4)")
    parser.set_defaults(handler=_run_demo)


def _run_demo(args):
    from keras_autalk.native import import_tensorflow

    import_tensorflow()
    from keras_autalk.inference import generate
    from keras_autalk.presets import pretrained
    from keras_autalk.media import photos

    # Checked first, so a missing bundled part is said before any work.
    pretrained.resolve_model_dir(pretrained.DEFAULT_MODEL)
    speech = generate.demo_speech_path()
    result = generate.generate(
        photos.load_photo(generate.DEMO_PHOTO), speech, args.output,
        model=pretrained.DEFAULT_MODEL, progress=True)
    for message in result.notes:
        note(message)
    print(f"wrote {args.output}: {result.num_frames} frames at {result.fps:g} fps, "
          f"{result.audio_seconds:.1f} s of speech ({generate.DEMO_PHOTO} photo, bundled "
          f"speech), in {result.timings['total']:.1f} s")
    return EXIT_OK


def _add_generate(subparsers):
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
    parser.add_argument("--model", default="demo",
                        help="a pretrained model name or folder (default demo)")
    parser.set_defaults(handler=_run_generate)


def _run_generate(args):
    from keras_autalk.native import import_tensorflow

    import_tensorflow()
    from keras_autalk.inference import generate

    result = generate.generate(
        args.image, args.audio, args.output, model=args.model, size=args.size,
        au_csv=args.au_csv, articulation=args.articulation, fps=args.fps, progress=True)
    for message in result.notes:
        note(message)
    print(f"wrote {args.output}" + (f" and {args.au_csv}" if args.au_csv else "")
          + f": {result.num_frames} frames at {result.fps:g} fps, "
          f"{result.audio_seconds:.1f} s of speech, in {result.timings['total']:.1f} s")
    return EXIT_OK


EXPORT_FORMATS = ("saved_model", "tflite")


def _add_export(subparsers):
    parser = subparsers.add_parser(
        "export", help="export the generator for TF Serving (SavedModel) or TFLite",
        description="Export the generator as a SavedModel with named serving signatures "
        "(generate, generate_from_waveform, audio_to_au) or as TFLite files "
        "(generator.tflite, audio_to_au.tflite, parity.json); see docs/serving.md.",
    )
    parser.add_argument("--format", required=True, metavar="{saved_model,tflite}",
                        help="what to write")
    parser.add_argument("--quantize", default=None, metavar="{none,fp16,int8}",
                        help="tflite only: float32 weights (none, default), float16 weights "
                        "(fp16) or dynamic-range int8 weights (int8)")
    from keras_autalk.config import DataConfig

    parser.add_argument("--window-frames", type=int, default=None,
                        help="tflite only: video frames per fixed-shape window (default: the "
                        f"training window, {DataConfig().window_frames})")
    parser.add_argument("--model", default="demo",
                        help="a pretrained model name or folder (default demo)")
    parser.add_argument("-o", "--output", required=True, help="the new output folder")
    parser.set_defaults(handler=_run_export)


def _run_export(args):
    from keras_autalk.native import import_tensorflow

    import_tensorflow()
    from keras_autalk.export import saved_model as export
    from keras_autalk.presets.pretrained import load_pretrained

    if args.format not in EXPORT_FORMATS:
        raise AutalkError(f"--format must be saved_model or tflite, got {args.format!r}.")
    if args.format == "saved_model" and (args.quantize is not None
                                         or args.window_frames is not None):
        raise AutalkError("--quantize and --window-frames apply to --format tflite only; "
                          "a SavedModel keeps float32 weights and any clip length.")
    quantize = "none" if args.quantize is None else args.quantize
    if quantize not in export.QUANTIZATIONS:
        raise AutalkError(f"--quantize must be none, fp16 or int8, got {quantize!r}.")
    if args.window_frames is not None and args.window_frames < 1:
        raise AutalkError(f"--window-frames must be at least 1, got {args.window_frames}.")
    export.check_output_directory(args.output)
    model = load_pretrained(args.model)
    if args.format == "saved_model":
        export.export_saved_model(model, args.output)
        print(f"wrote {args.output}: SavedModel with signatures generate (serving_default), "
              "generate_from_waveform, audio_to_au")
        return EXIT_OK
    report = export.export_tflite(model, args.output, quantize=quantize,
                                  window_frames=args.window_frames)
    generator = report["files"]["generator.tflite"]
    psnr = generator["frames_psnr_db"]
    print(f"wrote {args.output}: generator.tflite ({generator['bytes'] / 1e6:.1f} MB, frames "
          f"PSNR {'inf' if psnr is None else f'{psnr:.1f}'} dB against the Keras model, "
          f"{generator['latency_ms_per_window']:.0f} ms per {report['window_frames']}-frame "
          "window), audio_to_au.tflite, parity.json")
    return EXIT_OK


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
    for add in (_add_demo, _add_generate, _add_prepare, _add_train, _add_evaluate, _add_export, _add_align, _add_features,
                _add_doctor):
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
