"""keras_autalk.training.fit: strategies, callbacks, resumable fit, evaluation helpers."""

import csv
import glob
import os

import numpy as np
import pytest

from keras_autalk.training import fit as training
from keras_autalk.errors import AutalkError
from keras_autalk.native import import_tensorflow

tf = import_tensorflow()
import keras  # noqa: E402

STEPS_PER_EPOCH = 4
EPOCHS = 5


def read_csv_log(path):
    with open(path) as handle:
        return list(csv.DictReader(handle))


def event_values(folder):
    """(tag, step, tensor proto) of every summary value under `folder`."""
    values = []
    for path in sorted(glob.glob(os.path.join(folder, "**", "events.out.tfevents.*"),
                                 recursive=True)):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                values.append((value.tag, event.step, value.tensor))
    return values


# --- strategies ---------------------------------------------------------


def test_default_strategy_has_one_replica():
    strategy = training.make_strategy("default")
    assert strategy.num_replicas_in_sync == 1
    assert training.is_chief(strategy)


def test_unknown_strategy_is_one_sentence():
    with pytest.raises(AutalkError, match="Unknown strategy 'tpu'; choose one of default"):
        training.make_strategy("tpu")


def test_precision_and_xla_resolve_auto_to_off_on_cpu():
    assert training.precision_and_xla("auto", "auto") == (False, False)
    assert training.precision_and_xla("off", "on") == (False, True)
    assert keras.mixed_precision.global_policy().name == "float32"
    with pytest.raises(AutalkError, match="must be auto, on or off"):
        training.precision_and_xla("maybe", "auto")


# --- datasets -------------------------------------------------------------


def indexed_batches(_context=None):
    """Batch i holds the number i: shows which batches a run consumed."""
    return tf.data.Dataset.range(6).map(lambda i: tf.fill([2], i))


def test_distributed_dataset_repeats_and_skips_consumed_batches():
    strategy = training.make_strategy("default")
    dataset = training.distributed_dataset(strategy, indexed_batches, skip_batches=4)
    seen = [int(batch[0]) for batch in dataset.take(5)]
    assert seen == [4, 5, 0, 1, 2]


def test_au_classifier_batches_flatten_windows_into_frames():
    batch, window, size, units = 2, 3, 8, 5
    rng = np.random.default_rng(0)
    targets = {
        "frames": rng.uniform(size=(batch, window, size, size, 3)).astype("float32"),
        "au_intensity": rng.uniform(0, 5, (batch, window, units)).astype("float32"),
        "au_mask": np.array([[1, 0, 1], [1, 1, 1]], "float32"),
        "face_mask": np.array([[1, 1, 1], [1, 1, 0]], "float32"),
    }
    dataset = tf.data.Dataset.from_tensors(({"unused": np.zeros(1)}, targets))
    crops, labels, weight = next(iter(training.au_classifier_batches(dataset)))
    assert crops.shape == (6, size, size, 3)
    np.testing.assert_array_equal(crops[4], targets["frames"][1, 1])
    np.testing.assert_array_equal(labels[5], targets["au_intensity"][1, 2])
    np.testing.assert_array_equal(weight, [1, 0, 1, 1, 1, 0])


def test_jitter_face_crops_mirrors_zooms_and_shifts_reproducibly(rng):
    crops = rng.uniform(size=(16, 12, 12, 3)).astype("float32")
    seed = tf.constant([3, 4], tf.int64)
    mirrored_or_not = training.jitter_face_crops(crops, seed, max_scale=0.0, max_shift=0.0)
    flipped = [np.allclose(out, crop[:, ::-1], atol=1e-5) for out, crop
               in zip(mirrored_or_not.numpy(), crops)]
    kept = [np.allclose(out, crop, atol=1e-5) for out, crop
            in zip(mirrored_or_not.numpy(), crops)]
    assert all(f != k for f, k in zip(flipped, kept))  # each crop: mirrored or unchanged
    assert 3 <= sum(flipped) <= 13
    jittered = training.jitter_face_crops(crops, seed)
    np.testing.assert_array_equal(jittered, training.jitter_face_crops(crops, seed))
    assert not np.allclose(jittered, training.jitter_face_crops(crops, seed + 1))
    # A pure shift by up to 4 pixels moves content, it does not invent it.
    shifted = training.jitter_face_crops(crops, seed, max_scale=0.0).numpy()
    assert shifted.shape == crops.shape
    assert crops.min() - 1e-6 <= shifted.min() and shifted.max() <= crops.max() + 1e-6


# --- evaluation -----------------------------------------------------------


def test_pearson_matches_numpy_and_flags_constant_columns(rng):
    target = rng.normal(size=(200, 3))
    prediction = target * [1.0, -2.0, 0.0] + rng.normal(scale=0.5, size=(200, 3))
    prediction[:, 2] = 1.5  # a constant reading has no correlation
    result = training.pearson(prediction, target)
    for column in range(2):
        expected = np.corrcoef(prediction[:, column], target[:, column])[0, 1]
        assert result[column] == pytest.approx(expected, abs=1e-12)
    assert result[0] > 0.8 and result[1] < -0.9
    assert np.isnan(result[2])


# --- SampleFramesCallback -------------------------------------------------


def frames_model(frames, size):
    """A tiny renderer: {"noisy_frames"} -> {"frames"} (and a blend mask)."""
    noisy = keras.Input((frames, size, size, 3), name="noisy_frames")
    rendered = keras.layers.Conv3D(3, 1, activation="sigmoid", name="render")(noisy)
    mask = keras.layers.Conv3D(1, 1, activation="sigmoid", name="mask")(noisy)
    return keras.Model({"noisy_frames": noisy}, {"frames": rendered, "blend_mask": mask})


@pytest.mark.filterwarnings("ignore:Gradients do not exist")
def test_sample_frames_callback_writes_real_and_generated_strips(tmp_path, rng):
    examples, frames, size = 3, 4, 8
    real = rng.uniform(size=(examples, frames, size, size, 3)).astype("float32")
    inputs = {"noisy_frames": real + rng.normal(scale=0.1, size=real.shape).astype("float32")}
    keras.utils.set_random_seed(0)
    model = frames_model(frames, size)
    model.compile("adam", loss={"frames": "mse", "blend_mask": None})
    callback = training.SampleFramesCallback(inputs, {"frames": real}, tmp_path, max_examples=2)
    model.fit(inputs, {"frames": real}, epochs=2, batch_size=3, verbose=0, callbacks=[callback])

    images = [v for v in event_values(tmp_path / "samples") if v[0].startswith("samples/")]
    assert sorted((tag, step) for tag, step, _ in images) == [
        ("samples/example_0", 1), ("samples/example_0", 2),
        ("samples/example_1", 1), ("samples/example_1", 2)]
    # (tf.summary.image quantises to 8 bits by truncation: within 1/255.)
    # The last strip of example 1: real frames on top, the model's frames
    # below, the blend mask last; frames side by side.
    tensor = [t for tag, step, t in images if tag == "samples/example_1" and step == 2][0]
    width, height, png = tf.make_ndarray(tensor)
    strip = tf.image.decode_png(png).numpy() / 255.0
    assert (int(height), int(width)) == (3 * size, frames * size) == strip.shape[:2]
    outputs = model(inputs, training=False)
    top, middle, bottom = strip[:size], strip[size:2 * size], strip[2 * size:]
    for index in range(frames):
        columns = slice(index * size, (index + 1) * size)
        np.testing.assert_allclose(top[:, columns], real[1, index], atol=1.01 / 255)
        np.testing.assert_allclose(middle[:, columns], outputs["frames"][1, index], atol=1.01 / 255)
        np.testing.assert_allclose(bottom[:, columns, 0], outputs["blend_mask"][1, index, ..., 0],
                                   atol=1.01 / 255)


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
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="tanh"),
                              keras.layers.Dense(1)])
    model.compile(keras.optimizers.Adam(0.01), loss="mse")
    callbacks, backup = training.make_callbacks(out_dir, backup_every=backup_every)
    if stop_after:
        callbacks.insert(0, StopAfter(stop_after))
    messages = []
    strategy = training.make_strategy("default")
    history = training.fit(
        model, lambda skip: training.distributed_dataset(strategy, regression_batches, skip),
        EPOCHS, STEPS_PER_EPOCH, callbacks, verbose=0, log=messages.append)
    return model, history, messages


def test_fit_resumes_mid_epoch_where_the_backup_stopped(tmp_path):
    reference, reference_history, _ = run_regression(tmp_path / "reference")
    assert int(reference.optimizer.iterations) == EPOCHS * STEPS_PER_EPOCH

    out = tmp_path / "interrupted"
    with pytest.raises(KeyboardInterrupt):
        # Killed after step 11 of 20 (epoch 3's third step); the last backup
        # was written after step 10, half way through epoch 3.
        run_regression(out, stop_after=11)
    state = training.ResumableBackupAndRestore.read_state(out / "backup")
    assert (state["epoch"], state["steps_done"], state["global_step"]) == (2, 2, 10)
    assert [row["epoch"] for row in read_csv_log(out / "training_log.csv")] == ["0", "1"]

    # A fresh process would start with other weights; the backup decides.
    resumed, history, messages = run_regression(out, seed=99)
    assert messages == [f"Resuming from the backup in {out / 'backup'}: epoch 3/5, "
                        "step 2/4 (global step 10)."]
    # Epochs 3 (its last 2 steps), 4 and 5 ran; nothing was repeated or lost.
    assert len(history["loss"]) == 3
    assert int(resumed.optimizer.iterations) == EPOCHS * STEPS_PER_EPOCH
    rows = read_csv_log(out / "training_log.csv")
    assert [row["epoch"] for row in rows] == ["0", "1", "2", "3", "4"]
    # Same batches in the same order as the uninterrupted run: same weights.
    for mine, theirs in zip(resumed.get_weights(), reference.get_weights()):
        np.testing.assert_allclose(mine, theirs, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(float(rows[-1]["loss"]), reference_history["loss"][-1],
                               rtol=1e-5)
    # The run is complete: its backup is gone, its checkpoints are there.
    assert not (out / "backup").exists()
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == [
        f"epoch-{epoch:03d}.weights.h5" for epoch in range(1, EPOCHS + 1)]


def test_resuming_without_the_interrupted_steps_differs(tmp_path):
    """The skip matters: replaying the epoch from its start gives other weights."""
    reference, _, _ = run_regression(tmp_path / "reference")
    out = tmp_path / "replayed"
    with pytest.raises(KeyboardInterrupt):
        run_regression(out, stop_after=11)
    state_file = training.ResumableBackupAndRestore.read_state(out / "backup")
    assert state_file["steps_done"] == 2
    # What keras.callbacks.BackupAndRestore does: restore, replay the epoch.
    folder = out / "backup" / (out / "backup" / "latest").read_text()
    metadata = folder / "training_metadata.json"
    metadata.write_text(metadata.read_text().replace('"steps_done": 2', '"steps_done": 0'))
    replayed, _, _ = run_regression(out)
    assert int(replayed.optimizer.iterations) == EPOCHS * STEPS_PER_EPOCH + 2
    difference = max(float(np.max(np.abs(a - b)))
                     for a, b in zip(replayed.get_weights(), reference.get_weights()))
    assert difference > 1e-4


def test_backup_survives_a_kill_during_its_own_save(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        run_regression(out, stop_after=7)
    backup = out / "backup"
    before = training.ResumableBackupAndRestore.read_state(backup)
    # A save that died half way: a new state folder without its pointer.
    half_written = backup / "state-000000008-00001"
    half_written.mkdir()
    (half_written / "state.weights.h5").write_bytes(b"\x89HDF partial")
    assert training.ResumableBackupAndRestore.read_state(backup) == before
    resumed, _, messages = run_regression(out)
    assert "global step 6" in messages[0]
    assert int(resumed.optimizer.iterations) == EPOCHS * STEPS_PER_EPOCH


# --- recipes lookup ---------------------------------------------------------


def test_find_recipe_by_name_path_and_dashes(tmp_path):
    assert training.find_recipe("talker_demo").name == "talker_demo.py"
    assert training.find_recipe("talker-tcd-timit").name == "talker_tcd_timit.py"
    script = tmp_path / "mine.py"
    script.write_text("def main(argv):\n    return 0\n")
    assert training.find_recipe(str(script)) == script
    with pytest.raises(AutalkError, match="No recipe 'talker_lrs3'; the recipes are: "
                                          "au_classifier_demo, sync_expert_demo, talker_demo, talker_grid"):
        training.find_recipe("talker_lrs3")
    with pytest.raises(AutalkError, match="does not exist"):
        training.find_recipe(str(tmp_path / "missing.py"))


def test_load_au_classifier_refuses_other_files(tmp_path):
    junk = tmp_path / "junk.keras"
    junk.write_bytes(b"not a zip")
    with pytest.raises(AutalkError, match="is not a keras-autalk AU classifier"):
        training.load_au_classifier(junk)
    other = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    other.save(tmp_path / "other.keras")
    with pytest.raises(AutalkError, match="holds a Sequential, not an AU classifier"):
        training.load_au_classifier(tmp_path / "other.keras")
    with pytest.raises(AutalkError, match="does not exist"):
        training.load_au_classifier(tmp_path / "missing.keras")


def test_initial_weights_load_into_the_same_model_and_refuse_others(tmp_path):
    from tests.models.test_talker import make_model

    trained = make_model()
    path = tmp_path / "epoch-001.weights.h5"
    trained.save_weights(path)
    keras.utils.set_random_seed(99)
    fresh = make_model()
    fresh.decoder.content_head.weights[0].assign(
        np.zeros(fresh.decoder.content_head.weights[0].shape, "float32"))
    training._load_initial_weights(fresh, path)
    for mine, theirs in zip(fresh.weights, trained.weights):
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy())
    not_weights = tmp_path / "model.keras"
    not_weights.write_text("x")
    with pytest.raises(AutalkError, match="not a Keras weights file"):
        training._load_initial_weights(fresh, not_weights)
    other = tmp_path / "other.weights.h5"
    small = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    small.save_weights(other)
    with pytest.raises(AutalkError, match="do not fit this model"):
        training._load_initial_weights(fresh, other)


def test_loss_weight_options_parse_or_refuse_in_one_sentence():
    assert training.parse_loss_weights(["mouth_l1=30", "adversarial=0.1"]) == {
        "mouth_l1": 30.0, "adversarial": 0.1}
    for bad, message in (["teeth=1", "Unknown loss"], ["l1=x", "needs a number"],
                         ["l1=-1", "cannot be negative"]):
        with pytest.raises(AutalkError, match=message):
            training.parse_loss_weights([bad])
