"""FrameDecoder, blend() and the whole generator path from build_networks."""

import keras
import numpy as np
import pytest
from keras import ops

from keras_autalk.config import model_config
from keras_autalk.models import build_networks
from keras_autalk.models.generator import FrameDecoder, blend
from tests.harness import assert_output_shape, run_model_saving_test, run_serialization_test


@pytest.fixture(autouse=True)
def seeded():
    keras.utils.set_random_seed(0)


def small_decoder(inputs=None):
    """A FrameDecoder; with `inputs`, built and given a trained-like content head."""
    decoder = FrameDecoder(filters=(16, 8), image_size=32)
    if inputs is not None:
        decoder(inputs)
        with_random_content_head(decoder)
    return decoder


def with_random_content_head(decoder):
    """Random content-head weights, as training gives; they start at zero."""
    kernel, _ = decoder.content_head.weights
    if not np.any(kernel.numpy()):
        kernel.assign(np.random.default_rng(0).normal(0.0, 0.1, kernel.shape).astype("float32"))
    return decoder


def tiny_config(**overrides):
    arguments = dict(
        image_size=32,
        encoder_filters=(8, 16),
        decoder_filters=(16, 8),
        discriminator_filters=(8, 16),
        au_classifier_filters=(8, 16),
        fusion_channels=32,
        fusion_dilations=(1, 2),
        dropout=0.0,
    )
    arguments.update(overrides)
    return model_config("small", **arguments)


def generate(networks, audio_features, identity_image, au_intensity=None):
    """The generator path the GAN runs: audio (+AUs) + identity -> frames."""
    predicted = networks["audio2au"](audio_features)
    if au_intensity is None:
        au_intensity = predicted
    audio = (
        networks["audio_encoder"](audio_features) if networks["audio_encoder"] is not None else None
    )
    au = networks["au_encoder"](au_intensity) if networks["au_encoder"] is not None else None
    embedding, skips = networks["identity_encoder"](identity_image)
    fused = networks["fusion"]([audio, au, embedding])
    decoder_inputs = [fused, skips, identity_image]
    networks["decoder"](decoder_inputs)
    with_random_content_head(networks["decoder"])
    frames, blend_mask = networks["decoder"](decoder_inputs)[:2]
    return frames, blend_mask, predicted


def test_untrained_decoder_returns_the_identity_photo_with_an_open_mask(decoder_inputs):
    # The content is a residual on the photo and its head starts at zero, so
    # training starts from the photo, with the mask half open (not closed).
    decoder = small_decoder()
    frames, blend_mask = decoder(decoder_inputs)
    identity = np.broadcast_to(decoder_inputs[2][:, None], frames.shape)
    np.testing.assert_allclose(frames, identity, atol=1e-6)
    assert 0.3 < float(np.mean(blend_mask)) < 0.7


def test_content_head_gets_a_gradient_at_initialisation(decoder_inputs):
    import tensorflow as tf

    decoder = small_decoder()
    decoder(decoder_inputs)
    target = np.asarray(decoder_inputs[2])[:, None] * 0.5
    with tf.GradientTape() as tape:
        frames, _ = decoder(decoder_inputs)
        loss = tf.reduce_mean(tf.abs(frames - target))
    kernel_gradient = tape.gradient(loss, decoder.content_head.weights[0])
    assert float(tf.reduce_max(tf.abs(kernel_gradient))) > 1e-4


def test_blend_keeps_identity_where_the_mask_is_zero(rng):
    content = rng.random((1, 3, 8, 8, 3)).astype("float32")
    identity_image = rng.random((1, 8, 8, 3)).astype("float32")
    mask = np.zeros((1, 3, 8, 8, 1), "float32")
    mask[..., 4:, :, :] = 1.0
    frames = np.asarray(blend(content, mask, identity_image))
    np.testing.assert_array_equal(
        frames[:, :, :4], np.broadcast_to(identity_image[:, None, :4], frames[:, :, :4].shape)
    )
    np.testing.assert_array_equal(frames[:, :, 4:], content[:, :, 4:])


def test_decoder_frames_and_mask_have_the_video_shape_and_range(decoder_inputs):
    decoder = small_decoder()
    frames, blend_mask = assert_output_shape(
        decoder, decoder_inputs, [(2, 4, 32, 32, 3), (2, 4, 32, 32, 1)]
    )
    for values in (frames, blend_mask):
        values = np.asarray(values)
        assert values.min() >= 0.0 and values.max() <= 1.0


def test_decoder_output_is_the_masked_blend_of_content_and_identity(decoder_inputs):
    decoder = small_decoder()
    frames, blend_mask = decoder(decoder_inputs)
    content, same_mask = decoder.decode(decoder_inputs)
    identity = decoder_inputs[2][:, None]
    np.testing.assert_allclose(frames, same_mask * content + (1 - same_mask) * identity, atol=1e-6)
    np.testing.assert_array_equal(blend_mask, same_mask)


@pytest.mark.parametrize("mask_bias, expected", [(-1e4, "identity"), (1e4, "content")])
def test_forced_mask_returns_identity_or_content(decoder_inputs, mask_bias, expected):
    decoder = small_decoder()
    decoder(decoder_inputs)
    kernel, bias = decoder.mask_head.weights
    kernel.assign(ops.zeros_like(kernel))
    bias.assign(ops.full_like(bias, mask_bias))
    frames, blend_mask = decoder(decoder_inputs)
    content, _ = decoder.decode(decoder_inputs)
    if expected == "identity":
        np.testing.assert_array_equal(blend_mask, 0.0)
        np.testing.assert_array_equal(
            frames, np.broadcast_to(decoder_inputs[2][:, None], frames.shape)
        )
    else:
        np.testing.assert_array_equal(blend_mask, 1.0)
        np.testing.assert_array_equal(frames, content)


def test_each_frame_follows_its_own_fused_feature(decoder_inputs, rng):
    decoder = small_decoder(decoder_inputs)
    content, _ = decoder.decode(decoder_inputs)
    changed = [decoder_inputs[0].copy()] + decoder_inputs[1:]
    changed[0][:, 1] = rng.normal(size=(2, 24))
    moved = np.abs(decoder.decode(changed)[0] - content).max(axis=(2, 3, 4))
    assert (moved[:, 1] > 1e-4).all()
    np.testing.assert_array_equal(np.delete(moved, 1, axis=1), 0.0)


def test_identity_skips_shape_the_content(decoder_inputs):
    decoder = small_decoder(decoder_inputs)
    content, _ = decoder.decode(decoder_inputs)
    fused, skips, image = decoder_inputs
    for index in range(len(skips)):
        changed = list(skips)
        changed[index] = skips[index] + 1.0
        assert np.abs(decoder.decode([fused, changed, image])[0] - content).max() > 1e-4


def test_decoder_refuses_a_skip_count_that_does_not_match(decoder_inputs):
    fused, skips, image = decoder_inputs
    with pytest.raises(ValueError, match="skips"):
        FrameDecoder(filters=(16, 8, 8), image_size=32)([fused, skips, image])


def test_decoder_round_trips_through_config_and_keras_file(decoder_inputs, tmp_path):
    decoder = small_decoder()
    run_serialization_test(decoder, expected_arguments=dict(filters=[16, 8], image_size=32))
    run_model_saving_test(decoder, decoder_inputs, tmp_path)


@pytest.mark.parametrize("image_size", [32, 64])
def test_generator_path_renders_a_clip_from_audio_and_a_photo(rng, image_size):
    networks = build_networks(tiny_config(image_size=image_size))
    audio = rng.normal(size=(2, 8, 20, 80)).astype("float32")
    photo = rng.random((2, image_size, image_size, 3)).astype("float32")
    frames, blend_mask, au_intensity = generate(networks, audio, photo)
    assert frames.shape == (2, 8, image_size, image_size, 3)
    assert blend_mask.shape == (2, 8, image_size, image_size, 1)
    assert au_intensity.shape == (2, 8, 5)
    assert 0.0 <= np.min(frames) and np.max(frames) <= 1.0
    assert 0.0 <= np.min(au_intensity) and np.max(au_intensity) <= 5.0


@pytest.mark.parametrize("drive, absent", [("audio", "au_encoder"), ("au", "audio_encoder")])
def test_drive_ablations_build_without_the_unused_branch(rng, drive, absent):
    networks = build_networks(tiny_config(drive=drive).to_dict())
    assert networks[absent] is None
    audio = rng.normal(size=(1, 8, 20, 80)).astype("float32")
    photo = rng.random((1, 32, 32, 3)).astype("float32")
    au_intensity = rng.uniform(0, 5, size=(1, 8, 5)).astype("float32")
    frames, _, _ = generate(networks, audio, photo, au_intensity)
    assert frames.shape == (1, 8, 32, 32, 3)
    # The driving AU curves matter exactly when the drive reads them.
    other, _, _ = generate(networks, audio, photo, 5.0 - au_intensity)
    moved = np.abs(np.asarray(other) - np.asarray(frames)).max()
    assert (moved > 0) == (drive == "au")


def test_fusion_switch_reaches_the_built_network():
    tcsa = build_networks(tiny_config(fusion="tcsa"))["fusion"]
    conv = build_networks(tiny_config(fusion="conv"))["fusion"]
    assert (tcsa.fusion, conv.fusion) == ("tcsa", "conv")
    shapes = [(1, 8, 64), (1, 8, 32), (1, 64)]
    tcsa.build(shapes)
    conv.build(shapes)
    assert conv.count_params() < tcsa.count_params()


def test_small_preset_is_far_smaller_than_paper():
    def generator_parameters(preset):
        networks = build_networks(model_config(preset))
        generate(
            networks, np.zeros((1, 2, 20, 80), "float32"), np.zeros((1, 128, 128, 3), "float32")
        )
        return sum(
            network.count_params()
            for name, network in networks.items()
            if network is not None and name not in ("discriminator", "au_classifier")
        )

    small, paper = generator_parameters("small"), generator_parameters("paper")
    assert small < 5_000_000 and 8 * small < paper
