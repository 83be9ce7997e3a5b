"""keras_autalk.training.au_classifier: its batches, crop jitter, Pearson r, loading it."""

import numpy as np
import pytest

from keras_autalk.errors import AutalkError
from keras_autalk.native import import_tensorflow
from keras_autalk.training.au_classifier import (
    au_classifier_batches,
    jitter_face_crops,
    load_au_classifier,
)

tf = import_tensorflow()
import keras  # noqa: E402

# --- datasets -------------------------------------------------------------


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
    crops, labels, weight = next(iter(au_classifier_batches(dataset)))
    assert crops.shape == (6, size, size, 3)
    np.testing.assert_array_equal(crops[4], targets["frames"][1, 1])
    np.testing.assert_array_equal(labels[5], targets["au_intensity"][1, 2])
    np.testing.assert_array_equal(weight, [1, 0, 1, 1, 1, 0])


def test_jitter_face_crops_mirrors_zooms_and_shifts_reproducibly(rng):
    crops = rng.uniform(size=(16, 12, 12, 3)).astype("float32")
    seed = tf.constant([3, 4], tf.int64)
    mirrored_or_not = jitter_face_crops(crops, seed, max_scale=0.0, max_shift=0.0)
    flipped = [
        np.allclose(out, crop[:, ::-1], atol=1e-5)
        for out, crop in zip(mirrored_or_not.numpy(), crops)
    ]
    kept = [np.allclose(out, crop, atol=1e-5) for out, crop in zip(mirrored_or_not.numpy(), crops)]
    assert all(f != k for f, k in zip(flipped, kept))  # each crop: mirrored or unchanged
    assert 3 <= sum(flipped) <= 13
    jittered = jitter_face_crops(crops, seed)
    np.testing.assert_array_equal(jittered, jitter_face_crops(crops, seed))
    assert not np.allclose(jittered, jitter_face_crops(crops, seed + 1))
    # A pure shift by up to 4 pixels moves content, it does not invent it.
    shifted = jitter_face_crops(crops, seed, max_scale=0.0).numpy()
    assert shifted.shape == crops.shape
    assert crops.min() - 1e-6 <= shifted.min() and shifted.max() <= crops.max() + 1e-6


# --- evaluation -----------------------------------------------------------


# --- loading --------------------------------------------------------------


def test_load_au_classifier_refuses_other_files(tmp_path):
    junk = tmp_path / "junk.keras"
    junk.write_bytes(b"not a zip")
    with pytest.raises(AutalkError, match="is not a keras-autalk AU classifier"):
        load_au_classifier(junk)
    other = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    other.save(tmp_path / "other.keras")
    with pytest.raises(AutalkError, match="holds a Sequential, not an AU classifier"):
        load_au_classifier(tmp_path / "other.keras")
    with pytest.raises(AutalkError, match="does not exist"):
        load_au_classifier(tmp_path / "missing.keras")
