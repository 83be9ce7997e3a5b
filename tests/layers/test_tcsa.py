"""TCSABlock / TCSAStack: shapes, receptive field, non-causality, masking,
dropout, XLA, config and `.keras` round trips."""

import numpy as np
import pytest
import tensorflow as tf

from keras_autalk.layers import TCSABlock, TCSAStack, receptive_field
from tests.harness import (
    assert_masked_frames_ignored,
    assert_output_shape,
    assert_padding_acts_like_sequence_end,
    masked_sequence_model,
    run_layer_test,
    run_model_saving_test,
)
from tests.layers.helpers import frame_influence

INPUT_CHANNELS = 12
CHANNELS = 16


def features(rng, frames, channels=INPUT_CHANNELS, batch=2):
    return rng.normal(size=(batch, frames, channels)).astype("float32")


@pytest.mark.parametrize(
    "kernel_size,dilations,expected",
    [(3, (1, 2, 4, 8), 31), (3, (1, 2), 7), (3, 1, 3), (5, (1, 2), 13), (3, (), 1)],
)
def test_receptive_field(kernel_size, dilations, expected):
    assert receptive_field(kernel_size, dilations) == expected


def test_stack_reports_its_receptive_field():
    assert TCSAStack(8, dilations=(1, 2, 4), kernel_size=3).receptive_field == 15


@pytest.mark.parametrize("frames", [1, 5, 8, 13])
@pytest.mark.parametrize("use_attention", [True, False])
@pytest.mark.parametrize("input_channels", [INPUT_CHANNELS, CHANNELS])
def test_output_shape(rng, frames, use_attention, input_channels):
    stack = TCSAStack(CHANNELS, dilations=(1, 2), num_heads=4, use_attention=use_attention)
    assert_output_shape(stack, features(rng, frames, input_channels), (2, frames, CHANNELS))
    # The input projection exists only when the channels differ.
    assert (stack.blocks[0].projection is None) == (input_channels == CHANNELS)


@pytest.mark.parametrize("kernel_size,dilations", [(3, (1, 2, 4)), (3, (1, 2, 4, 8)), (5, (1, 3))])
def test_conv_stack_sees_exactly_its_receptive_field(rng, kernel_size, dilations):
    half = receptive_field(kernel_size, dilations) // 2
    frames = 2 * half + 9
    frame = half + 4
    stack = TCSAStack(CHANNELS, dilations, kernel_size, use_attention=False)
    influence = frame_influence(stack, features(rng, frames), frame)

    seen = np.flatnonzero(influence)
    assert len(seen) == receptive_field(kernel_size, dilations)
    assert (seen.min(), seen.max()) == (frame - half, frame + half)
    # Non-causal: the last future frame inside the field counts ...
    assert influence[frame + half] > 0
    # ... and nothing beyond the field, either side.
    assert influence[frame + half + 1 :].sum() == 0
    assert influence[: frame - half].sum() == 0


def test_attention_reaches_beyond_the_receptive_field(rng):
    stack = TCSAStack(CHANNELS, dilations=(1,), kernel_size=3)
    influence = frame_influence(stack, features(rng, 16), 0)
    assert np.all(influence > 0)  # frame 0 depends on frame 15


@pytest.mark.parametrize("use_attention", [True, False])
def test_masked_frames_do_not_influence_real_frames(rng, use_attention):
    inputs = features(rng, 8)
    mask = np.array([[1] * 8, [1] * 5 + [0] * 3], bool)
    mask[0, 2] = False  # a hole, not only end padding
    stack = TCSAStack(CHANNELS, dilations=(1, 2), num_heads=4, use_attention=use_attention)
    assert_masked_frames_ignored(stack, inputs, mask, rng)

    influence = frame_influence(stack, inputs[1:], 4, mask=mask[1:])
    assert np.all(influence[5:] == 0)


@pytest.mark.parametrize("use_attention", [True, False])
def test_masked_frames_act_like_the_sequence_end(rng, use_attention):
    """A window padded with masked frames gives the short window's outputs."""
    stack = TCSAStack(CHANNELS, dilations=(1, 2), num_heads=4, use_attention=use_attention)
    assert_padding_acts_like_sequence_end(stack, features(rng, 8), 5)


def test_block_output_is_layer_normalised(rng):
    outputs = TCSABlock(CHANNELS, num_heads=4)(features(rng, 8)).numpy()
    np.testing.assert_allclose(outputs.mean(axis=-1), 0.0, atol=1e-5)
    np.testing.assert_allclose(outputs.std(axis=-1), 1.0, atol=1e-2)


def test_conv_ablation_drops_only_the_attention():
    with_attention = TCSABlock(CHANNELS, num_heads=4, name="block")
    without = TCSABlock(CHANNELS, num_heads=4, use_attention=False, name="block")
    with_attention.build((None, None, CHANNELS))
    without.build((None, None, CHANNELS))
    attention_weights = {w.path for w in with_attention.weights} - {w.path for w in without.weights}
    assert attention_weights and all("attention" in path for path in attention_weights)
    assert with_attention.count_params() - without.count_params() == (
        # q, k, v kernels + biases, output kernel + bias, one LayerNorm.
        3 * (CHANNELS * CHANNELS + CHANNELS) + CHANNELS * CHANNELS + CHANNELS + 2 * CHANNELS
    )


def test_dropout_only_when_training(rng):
    inputs = features(rng, 8)
    stack = TCSAStack(CHANNELS, dilations=(1, 2), num_heads=4, dropout=0.3)
    plain = TCSAStack(CHANNELS, dilations=(1, 2), num_heads=4)
    stack.build(inputs.shape)
    plain.build(inputs.shape)
    plain.set_weights(stack.get_weights())
    np.testing.assert_allclose(stack(inputs, training=False), plain(inputs), atol=1e-6)
    assert not np.allclose(stack(inputs, training=True), plain(inputs), atol=1e-3)


def test_xla_compiled_call_matches(rng):
    inputs = features(rng, 8)
    mask = np.array([[1] * 8, [1] * 6 + [0] * 2], bool)
    stack = TCSAStack(CHANNELS, dilations=(1, 2), num_heads=4)
    eager = stack(inputs, mask=mask)
    compiled = tf.function(lambda x, m: stack(x, mask=m), jit_compile=True)
    np.testing.assert_allclose(compiled(inputs, mask), eager, atol=1e-5)


def test_config_is_the_constructor_arguments(rng):
    inputs = features(rng, 8)
    run_layer_test(
        TCSAStack,
        dict(
            channels=CHANNELS,
            dilations=(1, 2, 4),
            kernel_size=5,
            num_heads=2,
            dropout=0.1,
            use_attention=False,
            name="fusion",
        ),
        inputs,
        (2, 8, CHANNELS),
    )
    run_layer_test(
        TCSABlock,
        dict(
            channels=CHANNELS,
            kernel_size=3,
            dilation_rate=2,
            num_heads=4,
            dropout=0.2,
            use_attention=True,
            feedforward_channels=24,
        ),
        inputs,
        (2, 8, CHANNELS),
    )


@pytest.mark.parametrize("use_attention", [True, False])
def test_keras_file_round_trip(rng, tmp_path, use_attention):
    inputs = features(rng, 8)
    mask = np.array([[1] * 8, [1] * 6 + [0] * 2], bool)
    stack = TCSAStack(
        CHANNELS, dilations=(1, 2), num_heads=4, dropout=0.1, use_attention=use_attention
    )
    block = TCSABlock(CHANNELS, dilation_rate=4, num_heads=4, use_attention=use_attention)
    model = masked_sequence_model(INPUT_CHANNELS, stack, block)
    run_model_saving_test(model, [inputs, mask], tmp_path)
