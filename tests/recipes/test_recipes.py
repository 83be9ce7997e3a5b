"""`autalk train RECIPE`: the recipes end to end on a tiny prepared demo corpus.

Training runs are a few steps of the `small` preset; what is checked is what a
user relies on: the outputs, the CSV losses, the TensorBoard sample strips,
resuming after a SIGKILL mid-epoch, and the distribution strategies.
"""

import csv
import glob
import json
import os
import runpy
import signal
import socket
import subprocess
import sys
import tempfile
import time

import numpy as np
import pytest

from keras_autalk.native import import_tensorflow
from keras_autalk.training.au_classifier import (
    AU_CLASSIFIER_FILE,
    load_au_classifier,
    train_au_classifier,
)
from keras_autalk.training.callbacks import TRAINING_LOG, ResumableBackupAndRestore
from keras_autalk.training.talker import TALKER_FILE
from tests.test_cli import assert_one_sentence_error, run

tf = import_tensorflow()
import keras  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TALKER_METRICS = (
    "g_loss",
    "d_loss",
    "l1_loss",
    "mouth_l1_loss",
    "adversarial_loss",
    "au_loss",
    "audio2au_loss",
)


@pytest.fixture(scope="session")
def au_classifier_file(prepared, tmp_path_factory):
    """An AU classifier trained for a few steps (for the talker recipes)."""
    out = tmp_path_factory.mktemp("au_stage")
    train_au_classifier(
        prepared,
        out,
        epochs=1,
        steps_per_epoch=2,
        batch_size=16,
        validation_steps=0,
        verbose=0,
        log=lambda *_: None,
    )
    return out / AU_CLASSIFIER_FILE


def read_csv_log(path):
    with open(path) as handle:
        return list(csv.DictReader(handle))


def summaries(folder):
    """{tag: [(step, tensor proto)]} of every event file under `folder`."""
    found = {}
    for path in glob.glob(os.path.join(str(folder), "**", "events.out.tfevents.*"), recursive=True):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                found.setdefault(value.tag, []).append((event.step, value.tensor))
    return found


def autalk_process(*arguments, env=None):
    """`python -m keras_autalk ...` as a child process (stdout+stderr piped)."""
    environment = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="3", **(env or {}))
    return subprocess.Popen(
        [sys.executable, "-m", "keras_autalk", *arguments],
        cwd=REPO,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish(process, timeout=300):
    output, _ = process.communicate(timeout=timeout)
    assert process.returncode == 0, output
    return output


# --- bad input ---------------------------------------------------------------


def test_unknown_recipe_is_one_sentence(capsys):
    status, _, err = run(capsys, "train", "talker_lrs3", "--out", "x")
    assert_one_sentence_error(status, err)
    assert "No recipe 'talker_lrs3'; the recipes are: au_classifier_demo" in err


def test_missing_prepared_folder_is_one_sentence(capsys, tmp_path):
    status, _, err = run(
        capsys,
        "train",
        "talker_demo",
        "--prepared",
        str(tmp_path / "none"),
        "--out",
        str(tmp_path / "run"),
        "--au-classifier",
        "x.keras",
    )
    assert_one_sentence_error(status, err)
    assert "No prepared shards were found" in err
    status, _, err = run(
        capsys,
        "train",
        "au_classifier_demo",
        "--prepared",
        str(tmp_path / "none"),
        "--out",
        str(tmp_path / "run"),
    )
    assert_one_sentence_error(status, err)


def test_every_recipe_has_the_shared_options(capsys):
    for name in ("au_classifier_demo", "talker_demo", "talker_grid", "talker_tcd_timit"):
        recipe = runpy.run_path(os.path.join(REPO, "recipes", f"{name}.py"))
        with pytest.raises(SystemExit) as stopped:
            recipe["main"](["--help"])
        assert stopped.value.code == 0
        usage = capsys.readouterr().out
        for option in (
            "--prepared",
            "--out",
            "--epochs",
            "--steps-per-epoch",
            "--preset",
            "--strategy",
        ):
            assert option in usage, (name, option)


# --- the AU classifier recipe ------------------------------------------------------


@pytest.mark.slow
def test_au_classifier_recipe_writes_model_evaluation_and_logs(capsys, prepared, tmp_path):
    out = tmp_path / "au"
    status, stdout, err = run(
        capsys,
        "train",
        "au_classifier_demo",
        "--prepared",
        str(prepared),
        "--out",
        str(out),
        "--epochs",
        "2",
        "--steps-per-epoch",
        "3",
        "--batch-size",
        "16",
        "--validation-steps",
        "1",
        "--verbose",
        "0",
    )
    assert status == 0, err
    assert "| AU26 |" in stdout
    rows = read_csv_log(out / TRAINING_LOG)
    assert [row["epoch"] for row in rows] == ["0", "1"]
    for row in rows:
        for column in ("loss", "mae", "val_loss", "val_mae"):
            assert np.isfinite(float(row[column])), (column, row)
    report = json.loads((out / "au_classifier_eval.json").read_text())
    assert report["frames"] == 256  # the test split's 5 utterances in windows of 16
    assert {key for key in report if key.startswith("AU")} == {
        "AU10",
        "AU14",
        "AU20",
        "AU25",
        "AU26",
    }
    assert sorted(report["by_speaker"]) == ["s1", "s2", "s3"]  # s3: the held-out voice
    assert sum(values["frames"] for values in report["by_speaker"].values()) == 256
    classifier = load_au_classifier(out / AU_CLASSIFIER_FILE)
    assert classifier(np.zeros((3, 128, 128, 3), "float32")).shape == (3, 5)
    assert not classifier.trainable
    scalars = summaries(out / "logs")
    assert len(scalars["epoch_loss"]) == 4  # train and validation, 2 epochs each
    assert not (out / "backup").exists()  # finished runs leave no backup


@pytest.mark.slow
def test_au_classifier_resumes_after_sigkill_mid_epoch(prepared, tmp_path):
    arguments = [
        "train",
        "au_classifier_demo",
        "--prepared",
        str(prepared),
        "--epochs",
        "3",
        "--steps-per-epoch",
        "6",
        "--backup-every",
        "2",
        "--batch-size",
        "16",
        "--validation-steps",
        "0",
        "--dropout",
        "0",
        "--seed",
        "3",
        "--verbose",
        "2",
    ]
    reference = autalk_process(*arguments, "--out", str(tmp_path / "reference"))
    finish(reference)

    out = tmp_path / "killed"
    backup = out / "backup"
    process = autalk_process(*arguments, "--out", str(out))
    deadline = time.monotonic() + 240
    state = None
    # Kill as soon as a backup half way through epoch 2 appears.
    while process.poll() is None and time.monotonic() < deadline:
        state = ResumableBackupAndRestore.read_state(backup)
        if state and state["epoch"] == 1 and state["steps_done"] > 0:
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.02)
    process.communicate(timeout=60)
    assert process.returncode == -signal.SIGKILL, "training ended before it could be killed"
    state = ResumableBackupAndRestore.read_state(backup)
    assert state["epoch"] == 1 and 0 < state["steps_done"] < 6
    assert state["global_step"] == 6 + state["steps_done"]
    assert not (out / AU_CLASSIFIER_FILE).exists()

    output = finish(autalk_process(*arguments, "--out", str(out)))
    assert (
        f"Resuming from the backup in {backup}: epoch 2/3, step {state['steps_done']}/6 "
        f"(global step {state['global_step']})"
    ) in output
    rows = read_csv_log(out / TRAINING_LOG)
    assert [row["epoch"] for row in rows] == ["0", "1", "2"]
    resumed = keras.saving.load_model(out / AU_CLASSIFIER_FILE)
    uninterrupted = keras.saving.load_model(tmp_path / "reference" / AU_CLASSIFIER_FILE)
    # Every step ran exactly once, on the same batches: the same model.
    assert int(resumed.optimizer.iterations) == int(uninterrupted.optimizer.iterations) == 18
    for mine, theirs in zip(resumed.get_weights(), uninterrupted.get_weights()):
        np.testing.assert_allclose(mine, theirs, rtol=1e-5, atol=1e-6)
    reference_rows = read_csv_log(tmp_path / "reference" / TRAINING_LOG)
    assert float(rows[-1]["loss"]) == pytest.approx(float(reference_rows[-1]["loss"]), rel=1e-5)
    assert not backup.exists()


# --- the talker recipes -----------------------------------------------------------


@pytest.mark.slow
def test_talker_recipe_logs_losses_and_sample_strips(
    capsys, prepared, au_classifier_file, tmp_path
):
    out = tmp_path / "talker"
    status, _, err = run(
        capsys,
        "train",
        "talker_demo",
        "--prepared",
        str(prepared),
        "--out",
        str(out),
        "--au-classifier",
        str(au_classifier_file),
        "--epochs",
        "2",
        "--steps-per-epoch",
        "1",
        "--batch-size",
        "2",
        "--validation-steps",
        "1",
        "--verbose",
        "0",
    )
    assert status == 0, err
    rows = read_csv_log(out / TRAINING_LOG)
    assert len(rows) == 2
    for name in TALKER_METRICS:
        for row in rows:
            assert np.isfinite(float(row[name])) and np.isfinite(float(row["val_" + name]))
    assert float(rows[0]["au_loss"]) > 0  # the frozen classifier reads the generated frames
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == [
        "epoch-001.weights.h5",
        "epoch-002.weights.h5",
    ]

    # TensorBoard: per example one strip, real frames over generated ones
    # over the blend mask, 8 frames wide, after each epoch.
    strips = summaries(out / "logs" / "samples")
    assert sorted(strips) == ["samples/example_0", "samples/example_1"]
    assert [step for step, _ in strips["samples/example_0"]] == [1, 2]
    width, height, png = tf.make_ndarray(strips["samples/example_0"][-1][1])
    image = tf.image.decode_png(png).numpy() / 255.0
    assert image.shape == (3 * 128, 8 * 128, 3) and (int(height), int(width)) == (384, 1024)
    from keras_autalk.datasets import pipeline

    _, targets = next(
        iter(
            pipeline.make_dataset(
                pipeline.list_shards(prepared, "test"), batch_size=2, training=False
            )
        )
    )
    real = np.concatenate(list(np.asarray(targets["frames"][0, :8])), axis=1)
    np.testing.assert_allclose(image[:128], real, atol=1.01 / 255)
    assert np.abs(image[128:256] - image[:128]).mean() > 0.005  # generated, not copied

    talker = keras.saving.load_model(out / TALKER_FILE)
    outputs = talker(
        {
            "identity_image": np.zeros((1, 128, 128, 3), "float32"),
            "audio_features": np.zeros((1, 16, 20, 80), "float32"),
        }
    )
    assert outputs["frames"].shape == (1, 16, 128, 128, 3)


@pytest.mark.slow
def test_talker_recipe_mirrored_on_two_logical_cpus_trains_the_au_classifier_first(
    prepared, tmp_path
):
    out = tmp_path / "mirrored"
    output = finish(
        autalk_process(
            "train",
            "talker_demo",
            "--prepared",
            str(prepared),
            "--out",
            str(out),
            "--strategy",
            "mirrored",
            "--logical-cpus",
            "2",
            "--au-epochs",
            "1",
            "--au-steps-per-epoch",
            "1",
            "--epochs",
            "1",
            "--steps-per-epoch",
            "2",
            "--batch-size",
            "2",
            "--validation-steps",
            "0",
            "--verbose",
            "0",
        )
    )
    assert output.index("Stage 1: the AU classifier") < output.index("Stage 2: the talker")
    assert output.count("2 replica(s)") == 2  # both stages ran on both devices
    assert (out / "au_classifier" / AU_CLASSIFIER_FILE).is_file()
    assert "AU classifier on)" in output
    row = read_csv_log(out / TRAINING_LOG)[0]
    assert all(np.isfinite(float(row[name])) for name in TALKER_METRICS)
    assert (out / TALKER_FILE).is_file()


def free_port():
    with socket.socket() as probe:
        probe.bind(("localhost", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
def test_talker_recipe_multi_worker_on_localhost(prepared, au_classifier_file, tmp_path):
    """Two worker processes (TF_CONFIG); the chief alone writes the outputs."""
    cluster = {"worker": [f"localhost:{free_port()}", f"localhost:{free_port()}"]}
    out = tmp_path / "multi"
    workers = [
        autalk_process(
            "train",
            "talker_demo",
            "--prepared",
            str(prepared),
            "--out",
            str(out),
            "--au-classifier",
            str(au_classifier_file),
            "--strategy",
            "multi-worker",
            "--epochs",
            "2",
            "--steps-per-epoch",
            "1",
            "--backup-every",
            "1",
            "--batch-size",
            "2",
            "--validation-steps",
            "0",
            "--verbose",
            "0",
            env={
                "TF_CONFIG": json.dumps(
                    {"cluster": cluster, "task": {"type": "worker", "index": index}}
                )
            },
        )
        for index in range(2)
    ]
    outputs = [finish(worker, timeout=400) for worker in workers]
    assert all("2 replica(s)" in output for output in outputs)
    rows = read_csv_log(out / TRAINING_LOG)
    assert [row["epoch"] for row in rows] == ["0", "1"]
    assert all(np.isfinite(float(rows[-1][name])) for name in TALKER_METRICS)
    assert (out / TALKER_FILE).is_file()
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == [
        "epoch-001.weights.h5",
        "epoch-002.weights.h5",
    ]
    assert not (out / "backup").exists()
    # The other worker's checkpoints and backups went to scratch folders, now removed.
    assert not glob.glob(os.path.join(tempfile.gettempdir(), "autalk-worker1-*"))


def test_au_classifier_refuses_multi_worker_in_one_sentence(capsys, tmp_path):
    status, _, err = run(
        capsys,
        "train",
        "au_classifier_demo",
        "--strategy",
        "multi-worker",
        "--out",
        str(tmp_path / "run"),
    )
    assert_one_sentence_error(status, err)
    assert "--au-classifier" in err
