"""SyncExpert: mouth-crop windows and audio windows to unit embeddings."""

import keras
import numpy as np
import pytest

from keras_autalk.models import SyncExpert
from keras_autalk.models.sync_expert import sliding_windows
from tests.harness import assert_output_shape, run_model_saving_test, run_serialization_test

SMALL = dict(video_filters=(8, 16), audio_filters=(8, 16), embedding_dim=16, image_size=32)


@pytest.fixture(autouse=True)
def seeded():
    keras.utils.set_random_seed(0)


def example(rng, batch=3, window=5, size=32, context=20, bins=80):
    return {
        "mouth_frames": rng.random((batch, window, size, size, 3)).astype("float32"),
        "audio_features": rng.normal(-6.0, 2.0, (batch, window, context, bins)).astype("float32"),
    }


def test_embeddings_have_the_configured_size_and_unit_length(rng):
    expert = SyncExpert(**SMALL)
    video, audio = assert_output_shape(expert, example(rng), [(3, 16), (3, 16)])
    np.testing.assert_allclose(np.linalg.norm(video, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(audio, axis=1), 1.0, atol=1e-5)


def test_face_crops_and_precut_mouth_regions_give_the_same_embedding(rng):
    expert = SyncExpert(**SMALL)
    inputs = example(rng)
    assert expert.mouth_region_shape == (16, 32)  # lower half of a 32x32 crop
    cut = dict(inputs, mouth_frames=inputs["mouth_frames"][:, :, 16:, :, :])
    np.testing.assert_allclose(expert(inputs)[0], expert(cut)[0], atol=1e-6)
    # The upper half of the face does not matter.
    changed = inputs["mouth_frames"].copy()
    changed[:, :, :16] = 0.0
    np.testing.assert_allclose(
        expert(dict(inputs, mouth_frames=changed))[0], expert(inputs)[0], atol=1e-6
    )


def test_mouth_images_are_grey_and_averaged_down():
    expert = SyncExpert(**SMALL)
    faces = np.zeros((2, 32, 32, 3), "float32")
    faces[:, 16:, :, 0] = 1.0  # red lower half
    faces[1, 16:18, 0:2] = [0.0, 1.0, 0.0]  # one green 2x2 block
    mouths = np.asarray(expert.mouth_images(faces))
    assert mouths.shape == (2, 8, 16) == (2,) + expert.mouth_shape
    np.testing.assert_allclose(mouths[0], 0.299, atol=1e-6)
    assert mouths[1, 0, 0] == pytest.approx(0.587, abs=1e-6)
    np.testing.assert_allclose(mouths[1].ravel()[1:], 0.299, atol=1e-6)


def test_other_frame_sizes_are_refused(rng):
    expert = SyncExpert(**SMALL)
    with pytest.raises(ValueError, match="32x32 face crops or 16x32 mouth regions"):
        expert.mouth_images(np.zeros((1, 5, 24, 24, 3), "float32"))


def test_video_embedding_ignores_brightness_and_contrast(rng):
    expert = SyncExpert(**SMALL)
    inputs = example(rng)
    darker = dict(inputs, mouth_frames=0.5 * inputs["mouth_frames"] + 0.1)
    np.testing.assert_allclose(expert(darker)[0], expert(inputs)[0], atol=2e-3)


def test_embeddings_depend_on_the_input(rng):
    expert = SyncExpert(**SMALL)
    first, second = example(rng), example(rng)
    video_a, audio_a = expert(first)
    video_b, audio_b = expert(second)
    assert np.abs(np.asarray(video_a) - np.asarray(video_b)).max() > 1e-3
    assert np.abs(np.asarray(audio_a) - np.asarray(audio_b)).max() > 1e-3


def test_keras_file_round_trip(tmp_path, rng):
    expert = SyncExpert(window=3, mouth_box=(0.5, 1.0, 0.25, 0.75), **SMALL)
    loaded = run_model_saving_test(expert, example(rng, window=3), tmp_path, atol=1e-6)
    assert loaded.mouth_region_shape == (16, 16)


def test_config_round_trip_and_bad_sizes():
    run_serialization_test(SyncExpert(**SMALL))
    with pytest.raises(ValueError, match="does not divide"):
        SyncExpert(image_size=30, downscale=2, video_filters=(8,), audio_filters=(8,))
    with pytest.raises(ValueError, match="mouth_box"):
        SyncExpert(mouth_box=(0.8, 0.5, 0.0, 1.0), **SMALL)
    with pytest.raises(ValueError, match="window"):
        SyncExpert(window=0, **SMALL)


def test_sliding_windows_stack_consecutive_steps():
    sequence = np.arange(12, dtype="float32").reshape(2, 6)
    runs = np.asarray(sliding_windows(sequence, 3, axis=-1))
    assert runs.shape == (2, 4, 3)
    np.testing.assert_array_equal(runs[0, 1], [1, 2, 3])
    np.testing.assert_array_equal(runs[1, 3], [9, 10, 11])
    images = np.arange(2 * 6 * 2, dtype="float32").reshape(2, 6, 2)
    stacked = np.asarray(sliding_windows(images, 2, axis=2))
    assert stacked.shape == (2, 5, 2, 2)
    np.testing.assert_array_equal(stacked[1, 4], images[1, 4:6])
