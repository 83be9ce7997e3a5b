"""The `prepare` task: a corpus on disk in, sharded TFRecords out.

For the demo corpus the corpus is first rendered (or completed, when a
rendering was interrupted) into `root`; then every corpus kind runs the same
path: `corpora.read_corpus` -> `prepare.prepare_corpus`.
"""

import pathlib

from keras_autalk.config import AutalkConfig
from keras_autalk.corpora import readers as corpora
from keras_autalk.errors import AutalkError


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


def prepare(corpus, out_dir, root=None, size="default", seed=0, num_workers=2,
            num_shards=1, shard_index=0, test_speakers=(), au_estimator="default",
            config=AutalkConfig(), progress=True, notes=None):
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

    notes = notes if notes is not None else []
    out_dir = pathlib.Path(out_dir)
    extra = {}
    if corpus == "demo":
        from keras_autalk.corpora.demo import corpus as demo_corpus

        root = pathlib.Path(root) if root else out_dir.parent / "demo_corpus"
        corpus_config = demo_corpus.size_config(size, seed)
        manifest = demo_corpus.render_corpus(root, corpus_config, num_workers=num_workers,
                                             progress=progress)
        split_fn = demo_corpus.split_function(manifest)
        extra = {"demo_corpus": {"root": str(root), "size": size, "seed": seed,
                                 "speakers": manifest["speakers"],
                                 "held_out_sentences": manifest["held_out_sentences"]}}
    else:
        if root is None:
            raise AutalkError(f"Give the {corpus} corpus folder with --root.")
        split_fn = split_by_speakers(test_speakers)
        if test_speakers:
            extra = {"test_speakers": sorted(test_speakers)}
    utterances = corpora.read_corpus(corpus, root)
    known = {utterance.speaker for utterance in utterances}
    unknown = sorted(set(test_speakers or ()) - known)
    if unknown:
        raise AutalkError(f"The test speaker(s) {', '.join(unknown)} are not in the corpus.")
    if au_estimator == "default":
        au_estimator = default_au_estimator()
        if au_estimator is None and any(u.au_csv_path is None for u in utterances):
            notes.append("no calibrated AU estimator is installed and some videos have no "
                         "OpenFace CSV: their AU labels are masked out.")
    elif au_estimator == "none":
        au_estimator = None
    return prepare_module.prepare_corpus(
        utterances, out_dir, config=config, split_fn=split_fn, num_workers=num_workers,
        num_shards=num_shards, shard_index=shard_index, progress=progress,
        au_estimator=au_estimator, corpus=corpus, manifest_extra=extra,
    )
