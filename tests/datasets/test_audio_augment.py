"""Tests for keras_autalk.datasets.audio_augment (speech augmentation in the tf.data pipeline)."""

import dataclasses
import math

import numpy as np
import pytest
import tensorflow as tf

from keras_autalk.config import AudioConfig
from keras_autalk.datasets import audio_augment
from keras_autalk.datasets.audio_augment import AudioAugmentation
from keras_autalk.features import log_mel

CONFIG = AudioConfig()
RATE = CONFIG.sample_rate
NOTHING = AudioAugmentation(
    speed_probability=0.0,
    reverb_probability=0.0,
    noise_probability=0.0,
    eq_probability=0.0,
    phone_probability=0.0,
    clip_probability=0.0,
    gain_db_range=(0.0, 0.0),
)


def voice(duration_s=2.0, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(duration_s * RATE)) / RATE
    phase = 2 * np.pi * np.cumsum(120 + 40 * np.sin(2 * np.pi * 0.7 * t)) / RATE
    harmonics = sum(np.sin(k * phase) / k for k in range(1, 30))
    envelope = (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)) ** 2
    return (
        0.3 * harmonics * envelope / np.abs(harmonics).max() + 0.001 * rng.standard_normal(t.size)
    ).astype(np.float32)


def peak_frequency(waveform):
    spectrum = np.abs(np.fft.rfft(waveform * np.hanning(len(waveform))))
    return np.argmax(spectrum) * RATE / len(waveform)


@pytest.mark.parametrize("factor", [0.9, 1.0, 1.25])
def test_change_speed_scales_length_and_pitch(factor):
    t = np.arange(RATE) / RATE
    tone = np.sin(2 * np.pi * 440.0 * t).astype(np.float32)
    changed = audio_augment.change_speed(tone, factor).numpy()
    assert len(changed) == math.floor(RATE / factor)
    assert peak_frequency(changed) == pytest.approx(440.0 * factor, abs=2.0)
    if factor == 1.0:
        np.testing.assert_array_equal(changed, tone)


def test_speed_frame_index_follows_the_resampled_time():
    np.testing.assert_array_equal(audio_augment.speed_frame_index(10, 1.0).numpy(), np.arange(10))
    np.testing.assert_array_equal(audio_augment.speed_frame_index(10, 2.0).numpy(), [1, 3, 5, 7, 9])
    slower = audio_augment.speed_frame_index(9, 0.9).numpy()
    assert len(slower) == 10 and slower[0] == 0 and slower[-1] == 8
    assert set(np.diff(slower)) <= {0, 1}  # frames repeat, never skip


def test_convolve_equals_numpy():
    rng = np.random.default_rng(0)
    signal, response = rng.standard_normal(1000), rng.standard_normal(37)
    expected = np.convolve(signal, response)[:1000]
    actual = audio_augment.convolve(
        tf.constant(signal, tf.float32), tf.constant(response, tf.float32)
    ).numpy()
    np.testing.assert_allclose(actual, expected, atol=1e-4)


def test_room_impulse_response_decays_60_db_in_its_rt60():
    response = audio_augment.room_impulse_response(tf.constant([1, 2], tf.int64), 0.3, RATE).numpy()
    assert response[0] == pytest.approx(1.0, abs=1e-6)  # the direct sound
    tail = response[1:] ** 2
    early = tail[int(0.01 * RATE) : int(0.03 * RATE)].mean()
    at_rt60 = tail[int(0.29 * RATE) : int(0.31 * RATE)].mean()
    assert 10 * math.log10(early / at_rt60) == pytest.approx(60 * 0.28 / 0.3, abs=4.0)


@pytest.mark.parametrize("snr_db", [5.0, 20.0])
def test_noise_is_added_at_the_asked_snr_of_the_speech_blocks(snr_db):
    speech = voice()
    noisy = audio_augment.add_noise(
        tf.constant(speech), tf.constant([3, 4], tf.int64), snr_db
    ).numpy()
    noise = noisy - speech
    blocks = np.sort(np.mean(speech[: len(speech) // 320 * 320].reshape(-1, 320) ** 2, axis=1))
    speech_power = blocks[::-1][: len(blocks) * 3 // 10].mean()
    measured = 10 * math.log10(speech_power / np.mean(noise**2))
    assert measured == pytest.approx(snr_db, abs=0.5)


def test_phone_band_cuts_above_the_cutoff_and_below_300_hz():
    gain = audio_augment.phone_band_gain(tf.constant([0, 1], tf.int64)).numpy()
    frequency = np.linspace(0, RATE / 2, len(gain))
    assert np.all(gain[frequency > 4000] < 0.01)
    assert np.all(gain[frequency < 300] < 0.01)
    assert np.all(gain[(frequency > 350) & (frequency < 3300)] == 1.0)


def test_augmentation_is_seeded_bounded_and_off_when_asked():
    speech = voice()
    seed = tf.constant([7, 8], tf.int64)
    first = audio_augment.augment_waveform(speech, seed)
    again = audio_augment.augment_waveform(speech, seed)
    other = audio_augment.augment_waveform(speech, tf.constant([7, 9], tf.int64))
    np.testing.assert_array_equal(first[0].numpy(), again[0].numpy())
    assert not np.array_equal(first[0].numpy()[:1000], other[0].numpy()[:1000])
    assert np.abs(first[0].numpy()).max() <= 1.0
    waveform, speed, gain = audio_augment.augment_waveform(speech, seed, NOTHING)
    np.testing.assert_allclose(waveform.numpy(), speech, atol=1e-6)
    assert float(speed) == 1.0 and np.all(gain.numpy() == 1.0)


def test_draws_cover_every_change_at_about_its_probability():
    settings = AudioAugmentation()
    speech = voice(1.0)
    speeds, gains = [], []
    for index in range(40):
        _, speed, gain = audio_augment.augment_waveform(
            speech, tf.constant([index, 0], tf.int64), settings
        )
        speeds.append(float(speed))
        gains.append(gain.numpy())
    changed_speed = np.mean([speed != 1.0 for speed in speeds])
    assert 0.25 < changed_speed < 0.75  # probability 0.5
    assert all(0.9 <= speed <= 1.1 for speed in speeds)
    equalised = np.mean([not np.all(gain == 1.0) for gain in gains])
    assert 0.3 < equalised < 0.9  # EQ 0.5, or phone band 0.2


def record_from(waveform, num_frames):
    features = log_mel.frame_features(log_mel.log_mel_spectrogram(waveform), num_frames)
    index = tf.range(num_frames)
    return {
        "num_frames": tf.constant(num_frames),
        "waveform": tf.constant(waveform),
        "audio_features": features,
        "frames": tf.strings.as_string(index),
        "au_intensity": tf.cast(index, tf.float32)[:, None] * tf.ones([1, 5]),
        "au_mask": tf.ones([num_frames]),
        "face_mask": tf.ones([num_frames]),
        "landmarks": tf.zeros([num_frames, 68, 2]),
    }


def test_augment_record_keeps_the_prepared_features_when_nothing_changes():
    speech = voice()
    record = record_from(speech, 50)
    same = audio_augment.augment_record(record, tf.constant([1, 1], tf.int64), NOTHING)
    np.testing.assert_allclose(
        same["audio_features"].numpy(), record["audio_features"].numpy(), atol=1e-4
    )
    normalised = audio_augment.augment_record(
        record, tf.constant([1, 1], tf.int64), NOTHING, normalization="utterance"
    )
    np.testing.assert_allclose(
        normalised["audio_features"].numpy(),
        log_mel.normalize_features(record["audio_features"]).numpy(),
        atol=1e-4,
    )


def test_speed_change_moves_the_targets_with_the_audio():
    faster = dataclasses.replace(NOTHING, speed_probability=1.0, speed_range=(1.25, 1.25))
    record = record_from(voice(), 50)
    changed = audio_augment.augment_record(record, tf.constant([1, 1], tf.int64), faster)
    assert int(changed["num_frames"]) == 40
    assert changed["audio_features"].shape[0] == 40
    source = [int(frame) for frame in changed["frames"].numpy()]
    assert source == [int((index + 0.5) * 1.25) for index in range(40)]
    np.testing.assert_array_equal(changed["au_intensity"].numpy()[:, 0], source)
    # The features of output frame j are those of the source audio around frame source[j].
    expected = log_mel.frame_features(
        log_mel.log_mel_spectrogram(audio_augment.change_speed(voice(), 1.25)), 40
    ).numpy()
    np.testing.assert_allclose(changed["audio_features"].numpy(), expected, atol=1e-4)
