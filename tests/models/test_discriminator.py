"""FrameDiscriminator: patch realism logits conditioned on the identity."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_autalk.models.discriminator import FrameDiscriminator
from tests.harness import assert_output_shape, run_model_saving_test, run_serialization_test


@pytest.fixture(autouse=True)
def seeded():
    keras.utils.set_random_seed(0)


@pytest.fixture()
def frames_and_identity(rng):
    frames = rng.random((3, 32, 32, 3)).astype("float32")
    identity = rng.random((3, 32, 32, 3)).astype("float32")
    return frames, identity


@pytest.mark.parametrize("filters, patches", [((8, 16), 8), ((8, 16, 32), 4)])
def test_one_logit_per_patch(frames_and_identity, filters, patches):
    discriminator = FrameDiscriminator(filters)
    assert_output_shape(discriminator, list(frames_and_identity), (3, patches, patches, 1))


def test_judgement_depends_on_the_identity_it_is_conditioned_on(frames_and_identity):
    frames, identity = frames_and_identity
    discriminator = FrameDiscriminator((8, 16))
    first = discriminator([frames, identity])
    second = discriminator([frames, identity[::-1]])
    assert np.abs(first[0] - second[0]).max() > 1e-4


def test_gradient_reaches_the_generated_frames(frames_and_identity):
    frames, identity = frames_and_identity
    discriminator = FrameDiscriminator((8, 16))
    frames = tf.constant(frames)
    with tf.GradientTape() as tape:
        tape.watch(frames)
        score = tf.reduce_mean(discriminator([frames, identity]))
    assert np.abs(tape.gradient(score, frames).numpy()).sum() > 0


def test_samples_are_judged_independently(frames_and_identity):
    frames, identity = frames_and_identity
    discriminator = FrameDiscriminator((8, 16))
    batch = discriminator([frames, identity])
    single = discriminator([frames[1:2], identity[1:2]])
    np.testing.assert_allclose(batch[1:2], single, atol=1e-5)


def test_round_trips_through_config_and_keras_file(frames_and_identity, tmp_path):
    discriminator = FrameDiscriminator((8, 16))
    run_serialization_test(discriminator, expected_arguments=dict(filters=[8, 16]))
    run_model_saving_test(discriminator, list(frames_and_identity), tmp_path)
