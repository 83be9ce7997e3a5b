"""`autalk evaluate`: score talkers on a prepared split, or run the real-speech benchmark."""

import os
import sys

from keras_autalk.commands.common import EXIT_OK, note
from keras_autalk.errors import AutalkError


def add_parser(subparsers):
    """Add `autalk evaluate` and its options to `subparsers`."""
    parser = subparsers.add_parser(
        "evaluate",
        help="score talkers and baselines on a prepared split (PSNR, SSIM, CPBD, "
        "LMD, AU, identity, lip sync)",
        description="Run each --model on every utterance of a prepared split and score it "
        "against the real frames, beside the static and ground-truth baselines; writes "
        "metrics.json, metrics.md, au_curves.png and frame_strip.png into -o. With "
        "--real-speech: the real-speech benchmark instead (klettres-data recordings through "
        "`generate`, measured on the MP4s); writes real_speech.json and real_speech.md.",
    )
    _add_prepared_options(parser)
    _add_real_speech_options(parser)
    parser.add_argument("-o", "--output", required=True, help="output folder")
    parser.set_defaults(handler=run)


def _add_prepared_options(parser):
    """Add the options of scoring a prepared split: the split, the models, the scorers."""
    parser.add_argument(
        "--prepared", help="folder written by `autalk prepare` (not needed with --real-speech)"
    )
    parser.add_argument("--split", default="test", help="split to evaluate (default test)")
    parser.add_argument(
        "--model",
        action="append",
        default=None,
        metavar="[NAME=]MODEL",
        help="'demo', a pretrained folder or a training run's talker.keras; repeat for "
        "several rows (default: demo)",
    )
    parser.add_argument(
        "--au-classifier",
        help="AU classifier .keras for the AU scores "
        "(from `autalk train au_classifier_demo`; without it: no AU scores)",
    )
    parser.add_argument(
        "--sync-expert",
        help="sync expert .keras for LSE-D / LSE-C (from "
        "`autalk train sync_expert_demo`; without it: no sync scores)",
    )
    parser.add_argument(
        "--max-utterances", type=int, default=None, help="evaluate only the first N utterances"
    )
    parser.add_argument(
        "--every",
        type=int,
        default=1,
        metavar="K",
        help="evaluate every K-th utterance (a subset that spans all speakers)",
    )
    parser.add_argument(
        "--no-baselines", action="store_true", help="leave out the static and ground-truth rows"
    )


def _add_real_speech_options(parser):
    """Add the real-speech benchmark's option group: photos, languages, tracks, reference."""
    real = parser.add_argument_group("real-speech benchmark (--real-speech)")
    real.add_argument(
        "--real-speech",
        action="store_true",
        help="run the real-speech benchmark (klettres-data recordings, fetched "
        "once and cached) instead of scoring a prepared split",
    )
    real.add_argument(
        "--photo",
        action="append",
        default=None,
        metavar="NAME_OR_PATH",
        help="photo to animate: grace_hopper (the bundled one), astronaut, or a "
        "file; repeat for several (default: grace_hopper and astronaut)",
    )
    real.add_argument(
        "--language",
        action="append",
        default=None,
        metavar="LANG",
        help="klettres-data language; repeat for several (default: en, en_GB)",
    )
    real.add_argument(
        "--tracks",
        type=int,
        default=1,
        metavar="N",
        help="tracks per language (seeds --seed, --seed + 1, ...; default 1)",
    )
    real.add_argument(
        "--duration",
        type=float,
        default=15.0,
        metavar="S",
        help="shortest track in seconds (default 15)",
    )
    real.add_argument("--seed", type=int, default=0, help="first track's seed (default 0)")
    real.add_argument(
        "--condition",
        action="append",
        default=None,
        metavar="NAME",
        help="recording condition of the tracks: clean, phone (8 kHz band), "
        "noisy (pink-ish noise, 10 dB SNR) or reverb (RT60 0.5 s); repeat for "
        "several (default: clean); targets judge the clean English rows",
    )
    real.add_argument(
        "--reference-corpus",
        metavar="ROOT",
        help="demo corpus root (`autalk prepare --corpus demo --root ROOT`): "
        "adds the ground-truth row measured on its held-out videos",
    )
    real.add_argument(
        "--reference-utterances",
        type=int,
        default=8,
        metavar="N",
        help="held-out videos measured for the ground-truth row (default 8)",
    )
    real.add_argument(
        "--keep-videos", action="store_true", help="keep the generated MP4s (in -o/videos)"
    )


def run(args):
    """`autalk evaluate` from its parsed options; returns the exit status."""
    if args.real_speech:
        return _run_real_speech(args)
    return _run_prepared(args)


def _refuse_overwriting_inputs(args):
    """The output folder must not be the prepared folder, a model or a photo given."""
    from keras_autalk.files import refuse_overwriting_inputs

    inputs = [
        ("prepared folder", args.prepared),
        ("AU classifier", args.au_classifier),
        ("sync expert", args.sync_expert),
    ]
    inputs += [("model", spec.partition("=")[2] or spec) for spec in args.model or []]
    inputs += [("photo", photo) for photo in args.photo or []]
    # Bundled names ("demo", "grace_hopper") are not files.
    inputs = [(what, path) for what, path in inputs if path and os.path.exists(path)]
    refuse_overwriting_inputs([("output folder", args.output)], inputs)


def _run_prepared(args):
    """`autalk evaluate --prepared DIR ...`: the metrics table of a prepared split."""
    from keras_autalk.datasets import pipeline
    from keras_autalk.evaluation import evaluate as evaluation
    from keras_autalk.evaluation.sync import load_sync_expert
    from keras_autalk.training.au_classifier import load_au_classifier

    only_real = [
        option
        for option, given in (
            ("--photo", getattr(args, "photo", None)),
            ("--language", getattr(args, "language", None)),
            ("--reference-corpus", getattr(args, "reference_corpus", None)),
            ("--keep-videos", getattr(args, "keep_videos", False)),
            ("--condition", getattr(args, "condition", None)),
        )
        if given
    ]
    if only_real:
        raise AutalkError(f"{only_real[0]} applies only with --real-speech.")
    if args.prepared is None:
        raise AutalkError(
            "autalk evaluate needs --prepared DIR (or --real-speech for the real-speech benchmark)."
        )
    _refuse_overwriting_inputs(args)
    out_dir = evaluation.check_out_dir(args.output)
    pipeline.check_shard(pipeline.list_shards(args.prepared, args.split)[0])
    if args.max_utterances is not None and args.max_utterances < 1:
        raise AutalkError("--max-utterances must be at least 1.")
    if args.every < 1:
        raise AutalkError("--every must be at least 1.")
    specs = evaluation.parse_model_specs(args.model or ["demo"])
    systems = {name: evaluation.load_talker(target) for name, target in specs.items()}
    classifier = load_au_classifier(args.au_classifier) if args.au_classifier else None
    expert = load_sync_expert(args.sync_expert) if args.sync_expert else None
    if classifier is None:
        note("no --au-classifier: the table has no AU scores.")
    if expert is None:
        note("no --sync-expert: the table has no lip-sync scores.")
    settings = evaluation.EvaluationSettings(
        split=args.split, max_utterances=args.max_utterances, every=args.every
    )
    evaluation.evaluate(
        systems,
        args.prepared,
        out_dir,
        au_classifier=classifier,
        sync_expert=expert,
        settings=settings,
        baselines=not args.no_baselines,
    )
    print((out_dir / "metrics.md").read_text())
    return EXIT_OK


def command_line(args, models):
    """The `autalk evaluate --real-speech ...` line that reproduces a run (for the tables).

    Example:
    >>> import argparse
    >>> args = argparse.Namespace(photo=None, language=["en"], tracks=2, duration=15.0, seed=0,
    ...                           condition=["clean", "phone"], reference_corpus=None,
    ...                           reference_utterances=8, output="out")
    >>> command_line(args, {"before": "demo"})
    'autalk evaluate --real-speech --model before=demo --language en --tracks 2 --duration 15 --seed 0 --condition clean --condition phone -o out'
    """
    import shlex

    parts = ["autalk", "evaluate", "--real-speech"]
    for name, target in models.items():
        parts += ["--model", f"{name}={target}"]
    for photo in args.photo or []:
        parts += ["--photo", str(photo)]
    for language in args.language or []:
        parts += ["--language", language]
    parts += [
        "--tracks",
        str(args.tracks),
        "--duration",
        f"{args.duration:g}",
        "--seed",
        str(args.seed),
    ]
    for condition in getattr(args, "condition", None) or []:
        parts += ["--condition", condition]
    if args.reference_corpus:
        parts += [
            "--reference-corpus",
            str(args.reference_corpus),
            "--reference-utterances",
            str(args.reference_utterances),
        ]
    return shlex.join(parts + ["-o", str(args.output)])


def _progress(message):
    print(message, file=sys.stderr, flush=True)


def _run_real_speech(args):
    """`autalk evaluate --real-speech ...`: the real-speech benchmark's tables.

    Progress goes to stderr, one line per video; the tables to stdout.
    """
    from keras_autalk.evaluation import evaluate as evaluation
    from keras_autalk.evaluation import real_speech

    for option, given in (
        ("--prepared", args.prepared),
        ("--au-classifier", args.au_classifier),
        ("--sync-expert", args.sync_expert),
        ("--max-utterances", args.max_utterances is not None),
        ("--every", args.every != 1),
        ("--no-baselines", args.no_baselines),
    ):
        if given:
            raise AutalkError(f"{option} does not apply to --real-speech; leave it out.")
    if args.tracks < 1:
        raise AutalkError("--tracks must be at least 1.")
    if not args.duration >= 1.0:
        raise AutalkError("--duration must be at least 1 second.")
    if args.reference_utterances < 1:
        raise AutalkError("--reference-utterances must be at least 1.")
    models = evaluation.parse_model_specs(args.model or ["demo"])
    _refuse_overwriting_inputs(args)
    out_dir = evaluation.check_out_dir(args.output)
    real_speech.run_benchmark(
        models,
        out_dir,
        photos=tuple(args.photo or real_speech.DEFAULT_PHOTOS),
        languages=tuple(args.language or real_speech.DEFAULT_LANGUAGES),
        tracks_per_language=args.tracks,
        duration_s=args.duration,
        seed=args.seed,
        reference_corpus=args.reference_corpus,
        reference_utterances=args.reference_utterances,
        keep_videos=args.keep_videos,
        command=command_line(args, models),
        conditions=tuple(args.condition or ("clean",)),
        log=_progress,
    )
    print((out_dir / "real_speech.md").read_text())
    return EXIT_OK
