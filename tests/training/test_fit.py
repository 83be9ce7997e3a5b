"""keras_autalk.training.fit: a killed run resumes at the step of its last backup."""

import csv

import numpy as np
import pytest

from keras_autalk.native import import_tensorflow
from keras_autalk.training.callbacks import ResumableBackupAndRestore, make_callbacks
from keras_autalk.training.fit import fit
from keras_autalk.training.strategy import distributed_dataset, make_strategy

tf = import_tensorflow()
import keras  # noqa: E402

STEPS_PER_EPOCH = 4
EPOCHS = 5


def read_csv_log(path):
    with open(path) as handle:
        return list(csv.DictReader(handle))


# --- resumable fit ----------------------------------------------------------


def regression_batches(_context=None):
    """Batch i: 8 inputs drawn from seed i and their linear targets (deterministic)."""

    def batch(index):
        features = tf.random.stateless_normal([8, 4], seed=tf.stack([index, 7]))
        return features, tf.reduce_sum(features * [1.0, -2.0, 0.5, 3.0], axis=1, keepdims=True)

    return tf.data.Dataset.range(1000).map(batch)


class StopAfter(keras.callbacks.Callback):
    """Interrupts fit (as a kill would) when `steps` training steps have run."""

    def __init__(self, steps):
        super().__init__()
        self.steps = steps
        self.done = 0

    def on_train_batch_end(self, batch, logs=None):
        self.done += 1
        if self.done == self.steps:
            raise KeyboardInterrupt("killed")


def run_regression(out_dir, stop_after=None, backup_every=2, seed=0):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(8, activation="tanh"), keras.layers.Dense(1)]
    )
    model.compile(keras.optimizers.Adam(0.01), loss="mse")
    callbacks, backup = make_callbacks(out_dir, backup_every=backup_every)
    if stop_after:
        callbacks.insert(0, StopAfter(stop_after))
    messages = []
    strategy = make_strategy("default")
    history = fit(
        model,
        lambda skip: distributed_dataset(strategy, regression_batches, skip),
        EPOCHS,
        STEPS_PER_EPOCH,
        callbacks,
        verbose=0,
        log=messages.append,
    )
    return model, history, messages


def test_fit_resumes_mid_epoch_where_the_backup_stopped(tmp_path):
    reference, reference_history, _ = run_regression(tmp_path / "reference")
    assert int(reference.optimizer.iterations) == EPOCHS * STEPS_PER_EPOCH

    out = tmp_path / "interrupted"
    with pytest.raises(KeyboardInterrupt):
        # Killed after step 11 of 20 (epoch 3's third step); the last backup
        # was written after step 10, half way through epoch 3.
        run_regression(out, stop_after=11)
    state = ResumableBackupAndRestore.read_state(out / "backup")
    assert (state["epoch"], state["steps_done"], state["global_step"]) == (2, 2, 10)
    assert [row["epoch"] for row in read_csv_log(out / "training_log.csv")] == ["0", "1"]

    # A fresh process would start with other weights; the backup decides.
    resumed, history, messages = run_regression(out, seed=99)
    assert messages == [
        f"Resuming from the backup in {out / 'backup'}: epoch 3/5, step 2/4 (global step 10)."
    ]
    # Epochs 3 (its last 2 steps), 4 and 5 ran; nothing was repeated or lost.
    assert len(history["loss"]) == 3
    assert int(resumed.optimizer.iterations) == EPOCHS * STEPS_PER_EPOCH
    rows = read_csv_log(out / "training_log.csv")
    assert [row["epoch"] for row in rows] == ["0", "1", "2", "3", "4"]
    # Same batches in the same order as the uninterrupted run: same weights.
    for mine, theirs in zip(resumed.get_weights(), reference.get_weights()):
        np.testing.assert_allclose(mine, theirs, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(float(rows[-1]["loss"]), reference_history["loss"][-1], rtol=1e-5)
    # The run is complete: its backup is gone, its checkpoints are there.
    assert not (out / "backup").exists()
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == [
        f"epoch-{epoch:03d}.weights.h5" for epoch in range(1, EPOCHS + 1)
    ]


def test_resuming_without_the_interrupted_steps_differs(tmp_path):
    """The skip matters: replaying the epoch from its start gives other weights."""
    reference, _, _ = run_regression(tmp_path / "reference")
    out = tmp_path / "replayed"
    with pytest.raises(KeyboardInterrupt):
        run_regression(out, stop_after=11)
    state_file = ResumableBackupAndRestore.read_state(out / "backup")
    assert state_file["steps_done"] == 2
    # What keras.callbacks.BackupAndRestore does: restore, replay the epoch.
    folder = out / "backup" / (out / "backup" / "latest").read_text()
    metadata = folder / "training_metadata.json"
    metadata.write_text(metadata.read_text().replace('"steps_done": 2', '"steps_done": 0'))
    replayed, _, _ = run_regression(out)
    assert int(replayed.optimizer.iterations) == EPOCHS * STEPS_PER_EPOCH + 2
    difference = max(
        float(np.max(np.abs(a - b)))
        for a, b in zip(replayed.get_weights(), reference.get_weights())
    )
    assert difference > 1e-4


def test_backup_survives_a_kill_during_its_own_save(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        run_regression(out, stop_after=7)
    backup = out / "backup"
    before = ResumableBackupAndRestore.read_state(backup)
    # A save that died half way: a new state folder without its pointer.
    half_written = backup / "state-000000008-00001"
    half_written.mkdir()
    (half_written / "state.weights.h5").write_bytes(b"\x89HDF partial")
    assert ResumableBackupAndRestore.read_state(backup) == before
    resumed, _, messages = run_regression(out)
    assert "global step 6" in messages[0]
    assert int(resumed.optimizer.iterations) == EPOCHS * STEPS_PER_EPOCH
