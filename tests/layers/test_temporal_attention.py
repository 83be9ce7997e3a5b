"""TemporalSelfAttention: shapes, global reach, key padding mask, saving."""

import keras
import numpy as np
import pytest

from keras_autalk.layers import TemporalSelfAttention
from tests.layers.helpers import frame_influence

CHANNELS = 8


def features(rng, frames, batch=2):
    return rng.normal(size=(batch, frames, CHANNELS)).astype("float32")


@pytest.mark.parametrize("frames", [1, 5, 8, 13])
def test_output_keeps_shape(rng, frames):
    attention = TemporalSelfAttention(num_heads=2, key_dim=3)
    outputs = attention(features(rng, frames))
    assert tuple(outputs.shape) == (2, frames, CHANNELS)
    assert attention.compute_output_shape((2, frames, CHANNELS)) == (
        2, frames, CHANNELS)


def test_every_frame_attends_to_past_and_future(rng):
    attention = TemporalSelfAttention(num_heads=2, key_dim=4)
    inputs = features(rng, 12)
    assert np.all(frame_influence(attention, inputs, 0) > 0)
    assert np.all(frame_influence(attention, inputs, 11) > 0)


def test_masked_frames_are_never_attended_to(rng):
    inputs = features(rng, 8)
    mask = np.array([[1] * 8, [1] * 5 + [0] * 3], bool)
    mask[0, 3] = False
    attention = TemporalSelfAttention(num_heads=2, key_dim=4)
    reference = attention(inputs, mask=mask).numpy()

    changed = inputs.copy()
    changed[~mask] = rng.normal(scale=100.0, size=changed[~mask].shape)
    np.testing.assert_allclose(attention(changed, mask=mask)[mask],
                               reference[mask], atol=1e-6)
    changed[~mask] = np.nan
    np.testing.assert_allclose(attention(changed, mask=mask)[mask],
                               reference[mask], atol=1e-6)

    influence = frame_influence(attention, inputs[1:], 0, mask=mask[1:])
    assert np.all(influence[:5] > 0)
    assert np.all(influence[5:] == 0)


def test_masked_frames_act_like_the_sequence_end(rng):
    """A window padded with masked frames gives the short window's outputs."""
    inputs = features(rng, 8)
    mask = np.array([[1] * 5 + [0] * 3] * 2, bool)
    attention = TemporalSelfAttention(num_heads=2, key_dim=4)
    padded = attention(inputs, mask=mask).numpy()[:, :5]
    np.testing.assert_allclose(padded, attention(inputs[:, :5]), atol=1e-5)


def test_fully_masked_window_stays_finite(rng):
    attention = TemporalSelfAttention(num_heads=2, key_dim=4)
    outputs = attention(features(rng, 6), mask=np.zeros((2, 6), bool))
    assert np.all(np.isfinite(outputs))


def test_dropout_only_when_training(rng):
    inputs = features(rng, 8)
    attention = TemporalSelfAttention(num_heads=2, key_dim=4, dropout=0.5)
    plain = TemporalSelfAttention(num_heads=2, key_dim=4)
    attention.build(inputs.shape)
    plain.build(inputs.shape)
    plain.set_weights(attention.get_weights())
    np.testing.assert_allclose(attention(inputs, training=False),
                               plain(inputs), atol=1e-6)
    assert not np.allclose(attention(inputs, training=True), plain(inputs),
                           atol=1e-3)


def test_config_round_trip(rng):
    attention = TemporalSelfAttention(num_heads=3, key_dim=5, dropout=0.25)
    config = attention.get_config()
    assert (config["num_heads"], config["key_dim"], config["dropout"]) == (
        3, 5, 0.25)
    clone = TemporalSelfAttention.from_config(config)
    assert clone.get_config() == config

    inputs = features(rng, 8)
    attention.build(inputs.shape)
    clone.build(inputs.shape)
    clone.set_weights(attention.get_weights())
    np.testing.assert_array_equal(clone(inputs), attention(inputs))


def test_keras_file_round_trip(rng, tmp_path):
    inputs = features(rng, 8)
    mask = np.array([[1] * 8, [1] * 6 + [0] * 2], bool)
    frames_in = keras.Input((None, CHANNELS))
    mask_in = keras.Input((None,), dtype="bool")
    outputs = TemporalSelfAttention(2, 4, dropout=0.1)(frames_in,
                                                       mask=mask_in)
    model = keras.Model([frames_in, mask_in], outputs)
    path = tmp_path / "attention.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_array_equal(loaded([inputs, mask]),
                                  model([inputs, mask]))
