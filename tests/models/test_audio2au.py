"""Audio2AU: audio windows to per-frame AU intensities."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_autalk.models.audio2au import Audio2AU
from tests.harness import (
    assert_masked_frames_ignored,
    assert_output_shape,
    run_model_saving_test,
    run_serialization_test,
)


@pytest.fixture(autouse=True)
def seeded():
    keras.utils.set_random_seed(0)


def small_audio2au(**overrides):
    arguments = dict(
        action_units=(10, 25, 26), channels=16, dilations=(1, 2), kernel_size=3, num_heads=2
    )
    arguments.update(overrides)
    return Audio2AU(**arguments)


def test_predicts_every_au_for_every_frame(rng):
    audio2au = small_audio2au()
    audio = rng.normal(size=(2, 8, 20, 80)).astype("float32")
    assert_output_shape(audio2au, audio, (2, 8, 3))


def test_intensities_stay_on_the_openface_scale_for_extreme_audio(rng):
    audio2au = small_audio2au()
    audio = rng.normal(size=(2, 8, 20, 80)).astype("float32")
    for scale in (1.0, 1e3, -1e3):
        au_intensity = np.asarray(audio2au(scale * audio))
        assert au_intensity.min() >= 0.0 and au_intensity.max() <= 5.0


def test_frame_sees_future_audio_within_the_receptive_field(rng):
    # Two blocks with dilations 1, 2 and kernel 3: frames t-3 .. t+3.
    audio2au = small_audio2au()
    audio = tf.constant(rng.normal(size=(1, 12, 20, 80)).astype("float32"))
    with tf.GradientTape() as tape:
        tape.watch(audio)
        frame_4 = audio2au(audio)[0, 4]
    gradient = tape.gradient(frame_4, audio)
    reach = np.abs(gradient.numpy()[0]).sum(axis=(1, 2))
    assert reach[7] > 0, "frame 4 must read the audio 3 frames ahead"
    assert reach[1] > 0, "frame 4 must read the audio 3 frames behind"
    np.testing.assert_array_equal(reach[8:], 0.0)
    np.testing.assert_array_equal(reach[:1], 0.0)


@pytest.mark.parametrize("use_attention", [False, True])
def test_padded_frames_do_not_change_real_frames(rng, use_attention):
    audio2au = small_audio2au(use_attention=use_attention)
    audio = rng.normal(size=(1, 8, 20, 80)).astype("float32")
    mask = np.array([[1, 1, 1, 1, 1, 0, 0, 0]], dtype=bool)
    assert_masked_frames_ignored(audio2au, audio, mask, rng)


def test_learns_au_curves_that_follow_the_audio(rng):
    # Toy task: AU25 is the loudness of the frame's window.
    audio2au = small_audio2au(action_units=(25,), channels=8)
    loudness = rng.uniform(0, 1, size=(16, 8)).astype("float32")
    audio = (
        loudness[..., None, None] * np.ones((1, 1, 20, 80))
        + 0.05 * rng.normal(size=(16, 8, 20, 80))
    ).astype("float32")
    target = 5.0 * loudness[..., None]
    audio2au.compile(optimizer=keras.optimizers.Adam(3e-3), loss="mae")
    before = audio2au.evaluate(audio, target, verbose=0)
    audio2au.fit(audio, target, epochs=15, batch_size=8, verbose=0)
    after = audio2au.evaluate(audio, target, verbose=0)
    assert after < 0.5 * before


def test_round_trips_through_config_and_keras_file(tmp_path, rng):
    audio2au = small_audio2au(dropout=0.1)
    audio = rng.normal(size=(2, 8, 20, 80)).astype("float32")
    run_serialization_test(audio2au, expected_arguments=dict(action_units=[10, 25, 26]))
    run_model_saving_test(audio2au, audio, tmp_path)
