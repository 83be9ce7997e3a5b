"""`autalk prepare`: the demo corpus end to end, and one-sentence errors."""

import json

import numpy as np
import pytest

from keras_autalk.datasets import pipeline
from tests.test_cli import assert_one_sentence_error, run


@pytest.mark.slow
def test_prepare_tiny_demo_corpus_end_to_end(capsys, tmp_path):
    out = tmp_path / "prepared"
    status, stdout, err = run(
        capsys,
        "prepare",
        "--corpus",
        "demo",
        "--size",
        "tiny",
        "--root",
        str(tmp_path / "corpus"),
        "--out",
        str(out),
        "--workers",
        "1",
    )
    assert status == 0, err
    assert "test: 5 utterances" in stdout and "train: 4 utterances" in stdout
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["complete"] and manifest["skipped"] == 0
    assert manifest["au_source"] == {"openface": 9}  # the ground-truth CSVs
    assert manifest["splits"]["test"]["speakers"] == ["s1", "s2", "s3"]
    assert manifest["splits"]["train"]["speakers"] == ["s1", "s2"]  # s3's voice is held out
    dataset = pipeline.make_dataset(pipeline.list_shards(out, "train"), batch_size=2, seed=0)
    inputs, targets = next(iter(dataset))
    assert inputs["identity_image"].shape == (2, 128, 128, 3)
    assert inputs["audio_features"].shape == (2, 16, 20, 80)
    assert targets["frames"].shape == (2, 16, 128, 128, 3)
    assert targets["au_intensity"].shape == (2, 16, 5)
    assert float(np.max(targets["au_intensity"])) <= 5.0
    # Run again: everything is already there, nothing is redone.
    shards = {p: p.stat().st_mtime_ns for p in out.rglob("*.tfrecord")}
    status, _, err = run(
        capsys,
        "prepare",
        "--corpus",
        "demo",
        "--size",
        "tiny",
        "--root",
        str(tmp_path / "corpus"),
        "--out",
        str(out),
        "--workers",
        "1",
    )
    assert status == 0, err
    assert {p: p.stat().st_mtime_ns for p in shards} == shards


def test_prepare_bad_input_gives_one_sentence(capsys, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    cases = [
        (["--corpus", "grid", "--root", str(empty)], "No GRID videos were found"),
        (["--corpus", "grid", "--root", str(tmp_path / "missing")], "does not exist"),
        (["--corpus", "folder"], "--root"),
    ]
    for arguments, message in cases:
        status, _, err = run(capsys, "prepare", *arguments, "--out", str(tmp_path / "out"))
        assert_one_sentence_error(status, err)
        assert message in err, err
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_prepare_unknown_test_speaker(capsys, tmp_path):
    from keras_autalk.corpora.demo import corpus as demo_corpus

    root = tmp_path / "corpus"
    demo_corpus.render_corpus(root, demo_corpus.SIZES["tiny"], num_workers=1, progress=False)
    status, _, err = run(
        capsys,
        "prepare",
        "--corpus",
        "grid",
        "--root",
        str(root),
        "--out",
        str(tmp_path / "out"),
        "--test-speakers",
        "s1,s99",
    )
    assert_one_sentence_error(status, err)
    assert "s99" in err
