"""FusionNetwork: the TCSA fusion of audio, AU and identity features."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_autalk.models.fusion import FusionNetwork
from tests.harness import (
    assert_masked_frames_ignored,
    assert_output_shape,
    run_model_saving_test,
    run_serialization_test,
)


@pytest.fixture(autouse=True)
def seeded():
    keras.utils.set_random_seed(0)


@pytest.fixture()
def streams(rng):
    audio = rng.normal(size=(2, 8, 12)).astype("float32")
    au = rng.normal(size=(2, 8, 6)).astype("float32")
    identity = rng.normal(size=(2, 10)).astype("float32")
    return audio, au, identity


def small_fusion(fusion="tcsa", **overrides):
    arguments = dict(
        channels=16, dilations=(1, 2), kernel_size=3, num_heads=2, dropout=0.0, fusion=fusion
    )
    arguments.update(overrides)
    return FusionNetwork(**arguments)


@pytest.mark.parametrize("drive", ["audio+au", "audio", "au"])
def test_every_drive_fuses_to_one_feature_per_frame(streams, drive):
    audio, au, identity = streams
    inputs = [
        audio if "audio" in drive else None,
        au if drive in ("audio+au", "au") else None,
        identity,
    ]
    assert_output_shape(small_fusion(), inputs, (2, 8, 16))


def test_audio_drive_builds_without_any_au_weights(streams):
    audio, au, identity = streams
    audio_only, both = small_fusion(), small_fusion()
    audio_only([audio, None, identity])
    both([audio, au, identity])
    # Only the input projection differs: 6 AU channels x 16 weights.
    assert both.count_params() - audio_only.count_params() == 6 * 16


def test_no_driving_stream_is_refused(streams):
    with pytest.raises(ValueError, match="neither"):
        small_fusion()([None, None, streams[2]])


def test_conv_ablation_has_no_attention_and_differs(streams):
    tcsa, conv = small_fusion("tcsa"), small_fusion("conv")
    fused_tcsa, fused_conv = tcsa(list(streams)), conv(list(streams))
    assert conv.count_params() < tcsa.count_params()
    assert not any("attention" in w.path for w in conv.weights)
    assert any("attention" in w.path for w in tcsa.weights)
    assert np.abs(fused_tcsa - fused_conv).max() > 1e-3


def test_unknown_fusion_is_refused():
    with pytest.raises(ValueError, match="fusion"):
        FusionNetwork(16, fusion="lstm")


def test_identity_reaches_every_frame(streams):
    audio, au, identity = streams
    fusion = small_fusion("conv")
    other = identity[::-1].copy()
    moved = np.abs(fusion([audio, au, identity]) - fusion([audio, au, other]))
    assert (moved.max(axis=-1) > 1e-4).all()


@pytest.mark.parametrize("fusion_type", ["tcsa", "conv"])
def test_fused_frame_reads_future_audio(streams, fusion_type):
    audio, au, identity = streams
    fusion = small_fusion(fusion_type)
    audio = tf.constant(audio)
    with tf.GradientTape() as tape:
        tape.watch(audio)
        frame_2 = fusion([audio, au, identity])[:, 2]
    reach = np.abs(tape.gradient(frame_2, audio).numpy()).sum(axis=(0, 2))
    assert reach[5] > 0  # three frames ahead, inside the receptive field
    if fusion_type == "conv":
        np.testing.assert_array_equal(reach[6:], 0.0)
    else:
        assert reach[7] > 0  # attention sees the whole window


def test_padded_frames_do_not_change_real_frames(streams, rng):
    audio, au, identity = streams
    fusion = small_fusion()
    mask = np.ones((2, 8), dtype=bool)
    mask[:, 6:] = False
    # The padded audio and AU frames both change.
    assert_masked_frames_ignored(fusion, [audio, au, identity], mask, rng, atol=1e-5)


@pytest.mark.parametrize("drive", ["audio+au", "audio"])
def test_round_trips_through_config_and_keras_file(streams, drive, tmp_path):
    audio, au, identity = streams
    inputs = [audio, au if drive == "audio+au" else None, identity]
    fusion = small_fusion(dropout=0.1)
    run_serialization_test(fusion)
    run_model_saving_test(fusion, inputs, tmp_path)
