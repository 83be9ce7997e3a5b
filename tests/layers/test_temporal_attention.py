"""TemporalSelfAttention: shapes, global reach, key padding mask, saving."""

import numpy as np
import pytest

from keras_autalk.layers import TemporalSelfAttention
from tests.harness import (
    assert_masked_frames_ignored,
    assert_output_shape,
    assert_padding_acts_like_sequence_end,
    masked_sequence_model,
    run_layer_test,
    run_model_saving_test,
)
from tests.layers.helpers import frame_influence

CHANNELS = 8


def features(rng, frames, batch=2):
    return rng.normal(size=(batch, frames, CHANNELS)).astype("float32")


@pytest.mark.parametrize("frames", [1, 5, 8, 13])
def test_output_keeps_shape(rng, frames):
    attention = TemporalSelfAttention(num_heads=2, key_dim=3)
    assert_output_shape(attention, features(rng, frames), (2, frames, CHANNELS))


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
    assert_masked_frames_ignored(attention, inputs, mask, rng)

    influence = frame_influence(attention, inputs[1:], 0, mask=mask[1:])
    assert np.all(influence[:5] > 0)
    assert np.all(influence[5:] == 0)


def test_masked_frames_act_like_the_sequence_end(rng):
    """A window padded with masked frames gives the short window's outputs."""
    attention = TemporalSelfAttention(num_heads=2, key_dim=4)
    assert_padding_acts_like_sequence_end(attention, features(rng, 8), 5)


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
    np.testing.assert_allclose(attention(inputs, training=False), plain(inputs), atol=1e-6)
    assert not np.allclose(attention(inputs, training=True), plain(inputs), atol=1e-3)


def test_config_round_trip(rng):
    run_layer_test(
        TemporalSelfAttention,
        dict(num_heads=3, key_dim=5, dropout=0.25),
        features(rng, 8),
        (2, 8, CHANNELS),
    )


def test_keras_file_round_trip(rng, tmp_path):
    inputs = features(rng, 8)
    mask = np.array([[1] * 8, [1] * 6 + [0] * 2], bool)
    model = masked_sequence_model(CHANNELS, TemporalSelfAttention(2, 4, dropout=0.1))
    run_model_saving_test(model, [inputs, mask], tmp_path)
