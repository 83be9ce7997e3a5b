"""FlowDecoder, warp_with_flow, the fixed lower-face region, and decoder="flow"."""

import dataclasses

import keras
import numpy as np
import pytest

from keras_autalk.config import FaceConfig
from keras_autalk.media import face, paste
from keras_autalk.media import warp as numpy_warp
from keras_autalk.models import AUTalker, build_networks
from keras_autalk.models.flow_decoder import (
    LOWER_FACE_FEATHER,
    LOWER_FACE_POLYGON,
    FlowDecoder,
    lower_face_region,
    warp_with_flow,
)
from keras_autalk.native import import_tensorflow
from tests.harness import assert_output_shape, run_model_saving_test, run_serialization_test
from tests.models.distributed_helper import FRAMES, IMAGE, tiny_config
from tests.models.test_generator import generate
from tests.models.test_generator import tiny_config as generator_config
from tests.models.test_talker import as_numpy, batch

tf = import_tensorflow()


@pytest.fixture(autouse=True)
def seeded():
    keras.utils.set_random_seed(0)


def with_random_heads(decoder, seed=0):
    """Random flow, mask and content heads, as training gives; they start at zero."""
    rng = np.random.default_rng(seed)
    for head, scale in (
        (decoder.flow_head, 0.3),
        (decoder.mask_head, 0.3),
        (decoder.content_head, 0.1),
    ):
        kernel, bias = head.weights
        kernel.assign(rng.normal(0.0, scale, kernel.shape).astype("float32"))
        bias.assign(np.zeros(bias.shape, "float32"))
    return decoder


def trained_like(inputs):
    decoder = FlowDecoder(filters=(16, 8), image_size=32)
    decoder(inputs)
    return with_random_heads(decoder)


def outside_region(shape):
    """Boolean (..., H, W, C) of the pixels outside the lower-face region."""
    outside = lower_face_region(shape[-2]) == 0.0
    return np.broadcast_to(outside[:, :, None], shape)


# ------------------------------------------------------------------- warping
def test_warp_with_zero_or_whole_pixel_flow_is_exact(rng):
    images = rng.random((2, 9, 7, 3)).astype("float32")
    zero = np.zeros((2, 9, 7, 2), "float32")
    np.testing.assert_array_equal(warp_with_flow(images, zero), images)
    down_left = np.zeros_like(zero)
    down_left[..., 0], down_left[..., 1] = -2.0, 1.0
    warped = np.asarray(warp_with_flow(images, down_left))
    # out[y, x] = in[y + 1, x - 2], edges clamped.
    np.testing.assert_array_equal(warped[:, :-1, 2:], images[:, 1:, :-2])
    np.testing.assert_array_equal(warped[:, -1, 2:], images[:, -1, :-2])
    np.testing.assert_array_equal(warped[:, :-1, 0], images[:, 1:, 0])


def test_warp_interpolates_between_pixels_and_clamps_at_the_border():
    image = np.arange(12, dtype="float32").reshape(1, 3, 4, 1)
    flow = np.zeros((1, 3, 4, 2), "float32")
    flow[..., 0], flow[..., 1] = 0.25, 0.5
    warped = np.asarray(warp_with_flow(image, flow))[0, :, :, 0]
    # image[y, x] = 4y + x: linear, so bilinear sampling is exact inside.
    np.testing.assert_allclose(warped[:2, :3], np.arange(12).reshape(3, 4)[:2, :3] + 2.25)
    np.testing.assert_allclose(warped[2, :3], np.arange(8, 11) + 0.25)  # y clamped at 2
    np.testing.assert_allclose(warped[:2, 3], [3 + 2.0, 7 + 2.0])  # x clamped at 3


def test_numpy_warp_matches_the_keras_warp(rng, grace_hopper):
    image = grace_hopper[100:164, 200:264].astype("float32") / 255.0
    flow = rng.normal(0.0, 4.0, size=(64, 64, 2)).astype("float32")
    expected = np.asarray(warp_with_flow(image[None], flow[None]))[0]
    got = numpy_warp.warp_with_flow(image, flow)
    assert got.dtype == np.float32
    assert np.abs(got - expected).max() < 1e-5
    as_uint8 = numpy_warp.warp_with_flow(grace_hopper[100:164, 200:264], flow)
    assert np.abs(as_uint8 / 255.0 - expected).max() <= 0.5 / 255 + 1e-5


def test_warp_runs_under_xla_with_the_same_result(rng):
    images = rng.random((3, 16, 16, 3)).astype("float32")
    flow = rng.normal(0.0, 3.0, size=(3, 16, 16, 2)).astype("float32")
    compiled = tf.function(warp_with_flow, jit_compile=True)
    np.testing.assert_allclose(compiled(images, flow), warp_with_flow(images, flow), atol=1e-6)


# -------------------------------------------------------- lower-face region
def test_region_is_the_paste_back_region_of_the_template():
    config = FaceConfig()
    template = face.template_points(config) / config.crop_size
    np.testing.assert_allclose(LOWER_FACE_POLYGON, paste.lower_face_polygon(template), atol=2e-6)
    interocular = np.linalg.norm(
        template[face.RIGHT_EYE].mean(axis=0) - template[face.LEFT_EYE].mean(axis=0)
    )
    assert LOWER_FACE_FEATHER == pytest.approx(paste.MASK_FEATHER_IOD * interocular, abs=1e-6)
    # The same soft mask FacePaster uses, up to how the distance is measured
    # (to the polygon's edge here, in whole pixels to the nearest pixel
    # outside there: up to a pixel apart on a 9-pixel ramp; measured 0.13).
    region = lower_face_region(config.crop_size)
    pasted = paste.lower_face_mask((config.crop_size,) * 2, face.template_points(config))
    np.testing.assert_array_equal(region > 0, pasted > 0)
    assert np.abs(region - pasted).max() < 0.2
    assert np.abs(region - pasted).mean() < 0.01
    rows = np.nonzero(region.max(axis=1))[0]
    assert 0.5 < rows[0] / config.crop_size and rows[-1] / config.crop_size < 0.86


# ------------------------------------------------------------------ decoder
def test_flow_decoder_outputs_have_the_video_shape_and_range(decoder_inputs):
    decoder = trained_like(decoder_inputs)
    frames, blend_mask, called_flow = assert_output_shape(
        decoder, decoder_inputs, [(2, 4, 32, 32, 3), (2, 4, 32, 32, 1), (2, 4, 32, 32, 2)]
    )
    flow, mask, mouth_content = decoder.motion(decoder_inputs)
    np.testing.assert_array_equal(np.asarray(called_flow), np.asarray(flow))
    assert (flow.shape, mask.shape, mouth_content.shape) == (
        (2, 4, 32, 32, 2),
        (2, 4, 32, 32, 1),
        (2, 4, 32, 32, 3),
    )
    for values in (frames, blend_mask, mask, mouth_content):
        values = np.asarray(values)
        assert values.min() >= 0.0 and values.max() <= 1.0
    assert np.abs(flow).max() <= 0.1 * 32


def test_untrained_flow_decoder_returns_the_identity_photo(decoder_inputs):
    decoder = FlowDecoder(filters=(16, 8), image_size=32)
    frames, blend_mask, _ = decoder(decoder_inputs)
    identity = np.broadcast_to(decoder_inputs[2][:, None], frames.shape)
    assert np.abs(np.asarray(frames) - identity).max() < 1e-6
    flow, _, _ = decoder.motion(decoder_inputs)
    np.testing.assert_array_equal(flow, 0.0)
    assert float(np.max(blend_mask)) < 0.05  # closed: the flow moves the mouth first


def test_pixels_outside_the_lower_face_are_the_photo_exactly(decoder_inputs):
    decoder = trained_like(decoder_inputs)
    frames, blend_mask = (np.asarray(value) for value in decoder(decoder_inputs)[:2])
    identity = np.broadcast_to(decoder_inputs[2][:, None], frames.shape)
    outside = outside_region(frames.shape)
    np.testing.assert_array_equal(frames[outside], identity[outside])
    np.testing.assert_array_equal(blend_mask[outside[..., :1]], 0.0)
    flow, _, _ = decoder.motion(decoder_inputs)
    np.testing.assert_array_equal(np.asarray(flow)[outside[..., :2]], 0.0)
    # Inside, the random heads do move the face (the check can fail).
    assert np.abs(frames - identity)[~outside].max() > 0.05
    assert np.abs(np.asarray(flow)).max() > 0.5


def test_frames_are_the_warped_photo_with_the_mouth_filled_in(decoder_inputs):
    decoder = trained_like(decoder_inputs)
    frames, blend_mask, _ = decoder(decoder_inputs)
    flow, mask, mouth_content = (np.asarray(value) for value in decoder.motion(decoder_inputs))
    np.testing.assert_array_equal(blend_mask, mask)
    photo = decoder_inputs[2]
    for clip in range(2):
        for frame in range(4):
            warped = numpy_warp.warp_with_flow(photo[clip], flow[clip, frame])
            expected = (
                mask[clip, frame] * mouth_content[clip, frame] + (1 - mask[clip, frame]) * warped
            )
            np.testing.assert_allclose(frames[clip, frame], expected, atol=1e-5)


def test_flow_head_gets_a_gradient_at_initialisation(decoder_inputs):
    decoder = FlowDecoder(filters=(16, 8), image_size=32)
    decoder(decoder_inputs)
    # The photo moved up by a pixel: only a flow explains it.
    target = np.roll(decoder_inputs[2], -1, axis=1)[:, None]
    with tf.GradientTape() as tape:
        frames, _, _ = decoder(decoder_inputs)
        loss = tf.reduce_mean(tf.abs(frames - target))
    gradients = tape.gradient(loss, [decoder.flow_head.weights[0], decoder.content_head.weights[0]])
    assert all(float(tf.reduce_max(tf.abs(g))) > 1e-5 for g in gradients)


def test_flow_decoder_runs_under_xla_with_the_same_frames(decoder_inputs):
    decoder = trained_like(decoder_inputs)
    compiled = tf.function(lambda inputs: decoder(inputs), jit_compile=True)
    for expected, got in zip(decoder(decoder_inputs), compiled(decoder_inputs)):
        np.testing.assert_allclose(got, expected, atol=1e-5)


def test_flow_decoder_round_trips_through_config_and_keras_file(decoder_inputs, tmp_path):
    decoder = trained_like(decoder_inputs)
    run_serialization_test(
        decoder, expected_arguments=dict(filters=[16, 8], image_size=32, max_flow=0.1)
    )
    run_model_saving_test(decoder, decoder_inputs, tmp_path)


def test_flow_decoder_refuses_a_non_positive_max_flow():
    with pytest.raises(ValueError, match="max_flow must be positive, got 0"):
        FlowDecoder(filters=(16, 8), image_size=32, max_flow=0)


# --------------------------------------------------- decoder="flow" models
def test_generator_path_with_the_flow_decoder_renders_a_clip(rng):
    networks = build_networks(generator_config(decoder="flow"))
    assert isinstance(networks["decoder"], FlowDecoder)
    audio = rng.normal(size=(1, 4, 20, 80)).astype("float32")
    photo = rng.random((1, 32, 32, 3)).astype("float32")
    frames, blend_mask, _ = generate(networks, audio, photo)
    assert frames.shape == (1, 4, 32, 32, 3) and blend_mask.shape == (1, 4, 32, 32, 1)


def flow_talker():
    model = AUTalker(dataclasses.replace(tiny_config(), decoder="flow"))
    model(batch()[0])
    with_random_heads(model.decoder)
    return model


def test_talker_with_the_flow_decoder_keeps_the_photo_outside_the_lower_face():
    model = flow_talker()
    inputs = batch()[0]
    outputs = as_numpy(model(inputs))
    assert outputs["frames"].shape == (2, FRAMES, IMAGE, IMAGE, 3)
    assert outputs["blend_mask"].shape == (2, FRAMES, IMAGE, IMAGE, 1)
    identity = np.broadcast_to(inputs["identity_image"][:, None], outputs["frames"].shape)
    outside = outside_region(outputs["frames"].shape)
    np.testing.assert_array_equal(outputs["frames"][outside], identity[outside])
    assert np.abs(outputs["frames"] - identity).max() > 0.05


def test_talker_with_the_flow_decoder_round_trips_through_a_keras_file(tmp_path):
    loaded = run_model_saving_test(flow_talker(), batch()[0], tmp_path)
    assert loaded.model_config.decoder == "flow"
    assert isinstance(loaded.decoder, FlowDecoder)


def test_a_training_step_moves_the_flow_head():
    model = flow_talker()
    for head in (model.decoder.flow_head, model.decoder.mask_head, model.decoder.content_head):
        head.weights[0].assign(np.zeros(head.weights[0].shape, "float32"))
    model.compile(keras.optimizers.Adam(1e-3), keras.optimizers.Adam(1e-3))
    before = model.decoder.flow_head.weights[0].numpy()
    inputs, targets = batch()
    history = model.fit(inputs, targets, batch_size=2, epochs=1, verbose=0)
    assert np.isfinite(history.history["g_loss"][0])
    assert np.abs(model.decoder.flow_head.weights[0].numpy() - before).max() > 1e-5
