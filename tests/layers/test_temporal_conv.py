"""TemporalConv: shapes, exact arithmetic, non-causal reach, masking, saving."""

import numpy as np
import pytest

from keras_autalk.layers import TemporalConv
from tests.harness import (
    assert_masked_frames_ignored,
    assert_output_shape,
    assert_padding_acts_like_sequence_end,
    masked_sequence_model,
    run_layer_test,
    run_model_saving_test,
)
from tests.layers.helpers import frame_influence

CHANNELS = 4


def features(rng, frames, channels=CHANNELS, batch=2):
    return rng.normal(size=(batch, frames, channels)).astype("float32")


@pytest.mark.parametrize("frames", [1, 5, 8, 13])
@pytest.mark.parametrize("kernel_size,dilation_rate", [(3, 1), (3, 4), (5, 2)])
def test_output_keeps_frames(rng, frames, kernel_size, dilation_rate):
    conv = TemporalConv(7, kernel_size, dilation_rate)
    assert_output_shape(conv, features(rng, frames), (2, frames, 7))


def test_matches_zero_padded_dilated_correlation(rng):
    inputs = features(rng, 9)
    conv = TemporalConv(3, kernel_size=3, dilation_rate=2)
    conv.build(inputs.shape)
    kernel = rng.normal(size=(3, CHANNELS, 3)).astype("float32")
    bias = rng.normal(size=(3,)).astype("float32")
    conv.set_weights([kernel, bias])

    padded = np.pad(inputs, ((0, 0), (2, 2), (0, 0)))
    expected = (
        np.stack(
            [sum(padded[:, t + 2 * tap] @ kernel[tap] for tap in range(3)) for t in range(9)],
            axis=1,
        )
        + bias
    )
    np.testing.assert_allclose(conv(inputs), expected, rtol=1e-5, atol=1e-5)


def test_activation_is_applied(rng):
    inputs = features(rng, 8)
    linear = TemporalConv(5)
    relu = TemporalConv(5, activation="relu")
    relu.build(inputs.shape)
    linear.build(inputs.shape)
    relu.set_weights(linear.get_weights())
    np.testing.assert_allclose(relu(inputs), np.maximum(linear(inputs), 0), atol=1e-6)


@pytest.mark.parametrize("kernel_size,dilation_rate", [(3, 1), (3, 3), (5, 2)])
def test_sees_past_and_future_exactly_within_reach(rng, kernel_size, dilation_rate):
    frames, frame = 21, 10
    conv = TemporalConv(6, kernel_size, dilation_rate)
    influence = frame_influence(conv, features(rng, frames), frame)

    reach = (kernel_size - 1) * dilation_rate // 2
    taps = frame + dilation_rate * np.arange(-(kernel_size // 2), kernel_size // 2 + 1)
    assert np.flatnonzero(influence).tolist() == taps.tolist()
    # Non-causal: the frame `reach` ahead counts, nothing beyond it does.
    assert influence[frame + reach] > 0
    assert influence[frame + reach + 1 :].sum() == 0
    assert influence[: frame - reach].sum() == 0


def test_even_kernel_puts_the_extra_tap_in_the_future(rng):
    conv = TemporalConv(3, kernel_size=4, dilation_rate=1)
    assert conv.padding == (1, 2)
    influence = frame_influence(conv, features(rng, 12), 6)
    assert np.flatnonzero(influence).tolist() == [5, 6, 7, 8]


def test_masked_frames_do_not_influence_any_output(rng):
    inputs = features(rng, 8)
    mask = np.array([[1] * 8, [1] * 5 + [0] * 3], bool)
    mask[0, 2] = False  # a hole inside the window, not only end padding
    conv = TemporalConv(6, kernel_size=3, dilation_rate=2)
    # Noise, then even NaN, in a padded frame stays out of every output.
    assert_masked_frames_ignored(conv, inputs, mask, rng, only_real_frames=False)


def test_masked_frames_act_like_the_sequence_end(rng):
    """A window padded with masked frames gives the short window's outputs."""
    conv = TemporalConv(6, kernel_size=3, dilation_rate=2)
    assert_padding_acts_like_sequence_end(conv, features(rng, 8), 5, atol=1e-6)


def test_config_round_trip(rng):
    run_layer_test(
        TemporalConv,
        dict(filters=6, kernel_size=5, dilation_rate=2, activation="gelu", name="conv"),
        features(rng, 8),
        (2, 8, 6),
    )


def test_keras_file_round_trip(rng, tmp_path):
    inputs = features(rng, 8)
    mask = np.array([[1] * 8, [1] * 6 + [0] * 2], bool)
    model = masked_sequence_model(CHANNELS, TemporalConv(6, 3, 2, activation="gelu"))
    run_model_saving_test(model, [inputs, mask], tmp_path)
