"""AudioEncoder, IdentityEncoder and AUEncoder."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_autalk.models.encoders import (
    AudioEncoder,
    AUEncoder,
    IdentityEncoder,
    merge_time,
    split_time,
)
from tests.harness import assert_output_shape, run_model_saving_test, run_serialization_test


@pytest.fixture(autouse=True)
def seeded():
    keras.utils.set_random_seed(0)


def test_merge_and_split_time_are_inverse(rng):
    x = rng.normal(size=(2, 3, 4, 5)).astype("float32")
    merged = merge_time(x)
    assert merged.shape == (6, 4, 5)
    np.testing.assert_array_equal(split_time(merged, x), x)


@pytest.mark.parametrize("frames", [1, 8])
def test_audio_encoder_gives_one_feature_per_frame(rng, frames):
    encoder = AudioEncoder(channels=24)
    audio = rng.normal(size=(2, frames, 20, 80)).astype("float32")
    assert_output_shape(encoder, audio, (2, frames, 24))


def test_audio_encoder_encodes_frames_independently(rng):
    encoder = AudioEncoder(channels=16)
    audio = rng.normal(size=(1, 8, 20, 80)).astype("float32")
    changed = audio.copy()
    changed[0, 3] += 1.0
    difference = np.abs(encoder(changed) - encoder(audio)).max(axis=-1)[0]
    assert difference[3] > 1e-3
    np.testing.assert_array_equal(np.delete(difference, 3), 0.0)


def test_identity_encoder_skips_go_from_high_to_low_resolution(rng):
    encoder = IdentityEncoder(filters=(8, 16, 32), embedding_dim=20)
    image = rng.random((2, 64, 64, 3)).astype("float32")
    assert_output_shape(encoder, image, [(2, 20), [(2, 32, 32, 8), (2, 16, 16, 16), (2, 8, 8, 32)]])


def test_identity_embedding_tells_faces_apart(rng):
    encoder = IdentityEncoder(filters=(8, 16), embedding_dim=16)
    faces = rng.random((2, 32, 32, 3)).astype("float32")
    embedding, _ = encoder(faces)
    assert np.abs(embedding[0] - embedding[1]).max() > 1e-3


def test_au_encoder_maps_each_frame(rng):
    encoder = AUEncoder(channels=12)
    au_intensity = rng.uniform(0, 5, size=(3, 8, 5)).astype("float32")
    features = encoder(au_intensity)
    assert features.shape == (3, 8, 12)
    changed = au_intensity.copy()
    changed[1, 2, 4] = 0.0 if changed[1, 2, 4] > 2.5 else 5.0
    moved = np.abs(encoder(changed) - features).max(axis=-1)
    assert moved[1, 2] > 1e-3
    assert np.count_nonzero(moved) == 1


@pytest.mark.parametrize(
    "make, shape",
    [
        (lambda: AudioEncoder(channels=8), (2, 4, 20, 80)),
        (lambda: IdentityEncoder(filters=(8, 16), embedding_dim=12), (2, 32, 32, 3)),
        (lambda: AUEncoder(channels=8), (2, 4, 5)),
    ],
)
def test_encoders_round_trip_through_config_and_keras_file(make, shape, tmp_path, rng):
    encoder = make()
    run_serialization_test(encoder)
    run_model_saving_test(encoder, rng.random(shape).astype("float32"), tmp_path)


def test_encoders_run_with_unknown_batch_and_time_in_a_graph():
    encoder = AudioEncoder(channels=8)
    encode = tf.function(encoder, input_signature=[tf.TensorSpec((None, None, 20, 80))])
    assert encode(tf.zeros((3, 5, 20, 80))).shape == (3, 5, 8)
