"""The `prepare` task: a corpus on disk in, sharded TFRecords out.

For the demo corpus the corpus is first rendered (or completed, when a
rendering was interrupted) into `root`; then every corpus kind runs the same
path: `corpora.read_corpus` -> `prepare.prepare_corpus`.
"""

import pathlib

from keras_autalk.commands.common import EXIT_OK, note
from keras_autalk.config import AutalkConfig
from keras_autalk.corpora import readers as corpora
from keras_autalk.errors import AutalkError

# What `autalk prepare` leaves when a stop signal ends it (see cli.main).
STOPPED_NOTE = "finished shards are kept; run the same command again to resume"


def split_by_speakers(test_speakers):
    """`utterance -> split`: the named speakers are "test", the rest "train"."""
    test_speakers = set(test_speakers or ())

    def split_of(utterance):
        return "test" if utterance.speaker in test_speakers else "train"

    return split_of


def default_au_estimator():
    """The shipped calibrated geometric AU estimator, or None if there is none."""
    from keras_autalk.media import au_labels

    path = pathlib.Path(au_labels.DEFAULT_ESTIMATOR_PATH)
    return path if path.is_file() else None


def prepare(
    corpus,
    out_dir,
    root=None,
    size="default",
    seed=0,
    num_workers=2,
    num_shards=1,
    shard_index=0,
    test_speakers=(),
    au_estimator="default",
    config=AutalkConfig(),
    progress=True,
    notes=None,
):
    """Prepare a corpus into `out_dir`; return the manifest.

    Args:
        corpus: "demo", "grid", "tcd-timit" or "folder".
        out_dir: where the TFRecords, reports and manifest go.
        root: the corpus folder (for "demo": where it is rendered; default
            `demo_corpus` beside `out_dir`).
        size: demo corpus size ("tiny", "small", "default").
        seed: demo corpus seed.
        num_workers: processes for rendering and preparation.
        num_shards, shard_index: split the work by speaker across machines.
        test_speakers: speakers of the test split (real corpora; the demo
            corpus has its own fixed split).
        au_estimator: "default" (the shipped calibrated estimator, if any),
            "none", or the path of an estimator JSON; used for utterances
            without an OpenFace CSV.
        config: `AutalkConfig`.
        progress: progress bars.
        notes: a list that receives messages for the user.
    """
    from keras_autalk.datasets import prepare as prepare_module
    from keras_autalk.files import refuse_overwriting_inputs

    notes = notes if notes is not None else []
    out_dir = pathlib.Path(out_dir)
    extra = {}
    if corpus == "demo":
        from keras_autalk.corpora.demo import corpus as demo_corpus

        root = pathlib.Path(root) if root else out_dir.parent / "demo_corpus"
        corpus_config = demo_corpus.size_config(size, seed)
        manifest = demo_corpus.render_corpus(
            root, corpus_config, num_workers=num_workers, progress=progress
        )
        split_fn = demo_corpus.split_function(manifest)
        extra = {
            "demo_corpus": {
                "root": str(root),
                "size": size,
                "seed": seed,
                "speakers": manifest["speakers"],
                "held_out_sentences": manifest["held_out_sentences"],
            }
        }
    else:
        if root is None:
            raise AutalkError(f"Give the {corpus} corpus folder with --root.")
        split_fn = split_by_speakers(test_speakers)
        if test_speakers:
            extra = {"test_speakers": sorted(test_speakers)}
    refuse_overwriting_inputs([("output folder", out_dir)], [("corpus folder", root)])
    utterances = corpora.read_corpus(corpus, root)
    known = {utterance.speaker for utterance in utterances}
    unknown = sorted(set(test_speakers or ()) - known)
    if unknown:
        raise AutalkError(f"The test speaker(s) {', '.join(unknown)} are not in the corpus.")
    if au_estimator == "default":
        au_estimator = default_au_estimator()
        if au_estimator is None and any(u.au_csv_path is None for u in utterances):
            notes.append(
                "no calibrated AU estimator is installed and some videos have no "
                "OpenFace CSV: their AU labels are masked out."
            )
    elif au_estimator == "none":
        au_estimator = None
    return prepare_module.prepare_corpus(
        utterances,
        out_dir,
        config=config,
        split_fn=split_fn,
        num_workers=num_workers,
        num_shards=num_shards,
        shard_index=shard_index,
        progress=progress,
        au_estimator=au_estimator,
        corpus=corpus,
        manifest_extra=extra,
    )


def add_parser(subparsers):
    """Add `autalk prepare` and its options to `subparsers`."""
    parser = subparsers.add_parser(
        "prepare", help="turn a corpus (demo, GRID, TCD-TIMIT, a folder) into TFRecords"
    )
    parser.add_argument("--corpus", required=True, choices=("demo", "grid", "tcd-timit", "folder"))
    parser.add_argument("--out", required=True, help="output folder for the TFRecords")
    parser.add_argument(
        "--root",
        help="the corpus folder (demo: where it is rendered; default demo_corpus beside --out)",
    )
    parser.add_argument(
        "--size",
        default="default",
        choices=("tiny", "small", "default", "people", "people-tiny"),
        help="demo corpus size (default: about 10 minutes on 2 cores; "
        "people: many real faces and human speech, about 30 minutes)",
    )
    parser.add_argument("--seed", type=int, default=0, help="demo corpus seed")
    parser.add_argument("--workers", type=int, default=2, help="processes (default 2)")
    parser.add_argument(
        "--num-shards", type=int, default=1, help="machines sharing the work (split by speaker)"
    )
    parser.add_argument("--shard-index", type=int, default=0, help="this machine's share (0-based)")
    parser.add_argument(
        "--test-speakers",
        default="",
        help="comma-separated speakers of the test split (real corpora)",
    )
    parser.add_argument(
        "--au-estimator",
        default="default",
        help="AU labels for videos without an OpenFace CSV: default, none, or a JSON path",
    )
    parser.set_defaults(handler=run)


def run(args):
    """Run `autalk prepare` with its parsed options; return the exit status."""
    from keras_autalk.files import refuse_overwriting_inputs
    from keras_autalk.native import import_tensorflow

    # Before TensorFlow loads, so the mistake is told at once.
    refuse_overwriting_inputs([("output folder", args.out)], [("corpus folder", args.root)])
    import_tensorflow()
    from keras_autalk.commands import prepare as preparation

    notes = []
    test_speakers = [name for name in args.test_speakers.split(",") if name]
    manifest = preparation.prepare(
        args.corpus,
        args.out,
        root=args.root,
        size=args.size,
        seed=args.seed,
        num_workers=args.workers,
        num_shards=args.num_shards,
        shard_index=args.shard_index,
        test_speakers=test_speakers,
        au_estimator=args.au_estimator,
        notes=notes,
    )
    for message in notes:
        note(message)
    summary = ", ".join(
        f"{split}: {info['examples']} utterances, {info['frames']} frames"
        for split, info in sorted(manifest.get("splits", {}).items())
    )
    print(f"wrote {args.out} ({summary}; {manifest.get('skipped', 0)} skipped)")
    return EXIT_OK
