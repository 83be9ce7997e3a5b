"""The per-frame log-mel features (TensorFlow ops): time alignment, silence, batching, normalisation."""

import math

import librosa
import numpy as np
import pytest
import tensorflow as tf

from keras_autalk.config import AudioConfig
from keras_autalk.features import log_mel
from keras_autalk.media import audio
from tests.audio_helpers import (
    CONFIG,
    SILENCE,
    require_tfio,
    speech_frames,
    speech_like,
    tone,
    write,
)


@pytest.mark.parametrize("frequency", [250.0, 1000.0, 4000.0])
def test_tone_lands_in_the_mel_bin_centred_nearest_to_it(frequency):
    centres = librosa.mel_frequencies(
        CONFIG.num_mel_bins + 2, fmin=CONFIG.fmin, fmax=CONFIG.fmax, htk=False
    )[1:-1]

    spectrogram = log_mel.log_mel_spectrogram(tone(frequency, 0.5, CONFIG.sample_rate)).numpy()

    assert spectrogram.shape == (1 + 8000 // CONFIG.hop_samples, CONFIG.num_mel_bins)
    assert np.argmax(spectrogram.mean(axis=0)) == np.argmin(np.abs(centres - frequency))


@pytest.mark.parametrize("num_samples", [1, 399, 16000, 16161])
def test_spectrogram_step_j_is_centred_on_sample_j_times_hop(num_samples):
    waveform = np.zeros(num_samples, np.float32)
    click_step = (num_samples - 1) // CONFIG.hop_samples // 2
    waveform[click_step * CONFIG.hop_samples] = 1.0

    spectrogram = log_mel.log_mel_spectrogram(waveform).numpy()

    assert spectrogram.shape == (1 + num_samples // CONFIG.hop_samples, CONFIG.num_mel_bins)
    assert np.argmax(spectrogram.sum(axis=1)) == click_step


def test_digital_silence_is_the_log_floor_everywhere():
    spectrogram = log_mel.log_mel_spectrogram(np.zeros(8000, np.float32)).numpy()
    np.testing.assert_allclose(spectrogram, SILENCE, atol=1e-6)


def test_batched_spectrogram_equals_one_by_one():
    batch = np.stack([speech_like(0.7, 16000, seed) for seed in (1, 2)])
    together = log_mel.log_mel_spectrogram(batch).numpy()
    for row, waveform in zip(together, batch):
        np.testing.assert_allclose(row, log_mel.log_mel_spectrogram(waveform).numpy(), atol=1e-5)


@pytest.mark.parametrize("duration_s", [0.5, 1.0, 2.37, 7.3])
@pytest.mark.parametrize("config", [CONFIG, AudioConfig(context_steps=7, num_mel_bins=40)])
def test_features_have_shape_frames_context_bins(duration_s, config):
    waveform = speech_like(duration_s, config.sample_rate)

    features = log_mel.audio_features(waveform, config)

    frames = math.ceil(duration_s * config.fps - 1e-9)
    assert features.shape == (frames, config.context_steps, config.num_mel_bins)
    assert features.dtype == np.float32


@pytest.mark.parametrize(
    "config", [CONFIG, AudioConfig(context_steps=7), AudioConfig(fps=30.0, context_steps=9)]
)
def test_click_at_a_frame_centre_is_the_middle_step_of_its_window(config):
    waveform = np.zeros(2 * config.sample_rate, np.float32)
    frames = [3, 17, 30]
    for frame in frames:
        waveform[int(round((frame + 0.5) * config.samples_per_frame))] = 1.0

    features = log_mel.audio_features(waveform, config)

    for frame in frames:
        assert np.argmax(features[frame].sum(axis=1)) == config.context_steps // 2


@pytest.mark.parametrize("backend", ["tfio", "soundfile"])
def test_tone_burst_shows_up_in_the_video_frame_that_contains_it(tmp_path, backend):
    if backend == "tfio":
        require_tfio()
    rate = 44100  # through the resampler, whose delay must not shift features
    waveform = 0.001 * np.random.default_rng(3).standard_normal(2 * rate).astype(np.float32)
    # (start, duration): all of frame 21 [0.84, 0.88); 10 ms inside frame 30.
    bursts_s = [(0.84, 0.04), (1.234, 0.01)]
    for start, duration in bursts_s:
        begin = int(round(start * rate))
        burst = tone(1000, duration, rate, amplitude=0.5)
        waveform[begin : begin + burst.size] += burst
    path = write(tmp_path / "bursts.wav", waveform, rate)

    features = log_mel.audio_features(path, CONFIG, backend=backend)

    middle = CONFIG.context_steps // 2
    hop_s = CONFIG.hop_ms / 1000
    for start, duration in bursts_s:
        frame = int(start * CONFIG.fps)
        centre_step = round((frame + 0.5) * CONFIG.steps_per_frame)
        loudest = int(np.argmax(features[frame].sum(axis=1)))
        loudest_time_s = (centre_step + loudest - middle) * hop_s
        assert start - hop_s / 2 <= loudest_time_s <= start + duration + hop_s / 2
    # Of the frames around it, the one the long burst fills is loudest at
    # its centre step.
    centre_energy = features[:, middle].sum(axis=1)
    assert np.argmax(centre_energy[:28]) == 21


def test_windows_outside_the_audio_are_silent():
    waveform = 0.3 * np.random.default_rng(0).standard_normal(16000).astype(np.float32)
    spectrogram = log_mel.log_mel_spectrogram(waveform)

    features = log_mel.frame_features(spectrogram, 30, CONFIG).numpy()

    # Frame 0 is centred on step 2, so its window starts 8 steps before the audio.
    np.testing.assert_allclose(features[0, :8], SILENCE, atol=1e-6)
    assert np.all(features[0, 8:] > SILENCE + 5)
    # 1 s is 25 frames; frames 25..29 lie past the end (but their windows
    # reach back into the audio until frame 27).
    np.testing.assert_allclose(features[28:], SILENCE, atol=1e-6)


def test_tf_function_with_any_length_equals_eager():
    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)])
    def features_from_waveform(waveform):
        spectrogram = log_mel.log_mel_spectrogram(waveform, CONFIG)
        num_frames = log_mel.num_video_frames(tf.size(waveform), CONFIG)
        return log_mel.frame_features(spectrogram, num_frames, CONFIG)

    for duration_s in (0.8, 1.37):
        waveform = speech_like(duration_s, CONFIG.sample_rate)
        traced = features_from_waveform(tf.constant(waveform)).numpy()
        np.testing.assert_allclose(traced, log_mel.audio_features(waveform), atol=1e-5)
    assert features_from_waveform.experimental_get_tracing_count() == 1


def test_utterance_normalisation_removes_gain_and_a_smooth_filter():
    waveform = speech_like(3.0, CONFIG.sample_rate)
    # A smooth filter (pre-emphasis, +9.5 dB at 8 kHz against 0 Hz) and 10 dB less gain.
    filtered = 0.316 * np.append(waveform[:1], waveform[1:] - 0.5 * waveform[:-1])
    raw = log_mel.audio_features(waveform)
    raw_changed = log_mel.audio_features(filtered.astype(np.float32))
    normalised = log_mel.audio_features(waveform, normalization="utterance")
    changed = log_mel.audio_features(filtered.astype(np.float32), normalization="utterance")
    speech = speech_frames(raw)
    before = np.abs(raw_changed - raw)[speech].mean()
    after = np.abs(changed - normalised)[speech].mean()
    assert before > 1.0  # the raw features move by about ln(3.16) and more
    assert after < 0.15 * before


def test_utterance_statistics_ignore_pauses():
    waveform = speech_like(2.0, CONFIG.sample_rate)
    padded = np.concatenate([waveform, np.zeros(3 * CONFIG.sample_rate, np.float32)])
    alone = log_mel.audio_features(waveform, normalization="utterance")
    with_pause = log_mel.audio_features(padded, normalization="utterance")
    # Every frame of the speech sees the same values, the pause added or not.
    np.testing.assert_allclose(with_pause[: len(alone) - 3], alone[:-3], atol=1e-5)


def test_normalised_speech_frames_have_zero_mean_per_bin():
    features = log_mel.audio_features(speech_like(2.0, CONFIG.sample_rate))
    normalised = log_mel.normalize_features(features).numpy()
    speech = speech_frames(features)
    centre = normalised[speech, CONFIG.context_steps // 2]
    # Zero mean (up to the floor, which only raises values far below it).
    assert np.abs(centre.mean(axis=0)).max() < 0.05
    assert normalised.min() >= log_mel.NORMALIZED_FLOOR - 1e-6


def test_normalisation_none_is_the_identity_and_unknown_is_refused():
    features = log_mel.audio_features(speech_like(1.0, CONFIG.sample_rate))
    np.testing.assert_array_equal(log_mel.normalize_features(features, "none").numpy(), features)
    batched = log_mel.normalize_features(np.stack([features, features + 2.0])).numpy()
    np.testing.assert_allclose(batched[0], batched[1], atol=1e-5)  # each utterance on its own
    with pytest.raises(ValueError, match="Unknown audio normalization 'cmvn'"):
        log_mel.normalize_features(features, "cmvn")


def test_magnitude_gain_scales_the_mel_bins_it_covers():
    waveform = speech_like(1.0, CONFIG.sample_rate)
    bins = CONFIG.fft_length // 2 + 1
    gain = np.ones(bins, np.float32)
    gain[bins // 2 :] = 0.1  # -20 dB above 4 kHz
    plain = log_mel.log_mel_spectrogram(waveform).numpy()
    filtered = log_mel.log_mel_spectrogram(waveform, magnitude_gain=gain).numpy()
    np.testing.assert_allclose(filtered[:, :20], plain[:, :20], atol=1e-5)  # low bins unchanged
    loud = plain[:, -10:] > SILENCE + 3
    np.testing.assert_allclose((plain - filtered)[:, -10:][loud], math.log(10.0), atol=1e-3)


@pytest.mark.parametrize(
    "num_samples, frames", [(0, 0), (1, 1), (640, 1), (641, 2), (16000, 25), (16001, 26)]
)
def test_num_video_frames_in_a_graph_counts_as_media_does(num_samples, frames):
    assert int(log_mel.num_video_frames(tf.constant(num_samples), CONFIG)) == frames
    assert log_mel.num_video_frames(num_samples, CONFIG) == audio.num_video_frames(num_samples)
