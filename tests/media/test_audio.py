"""Tests for keras_autalk.media.audio and its backends (audio_backends)."""

import math
import os

import librosa
import numpy as np
import pytest
import soundfile
import tensorflow as tf

from keras_autalk.config import AudioConfig
from keras_autalk.media import audio, audio_backends
from keras_autalk.features import log_mel
from keras_autalk.media.ffmpeg import run_ffmpeg
from keras_autalk.errors import AutalkError, InputFileError, MissingDependencyError

CONFIG = AudioConfig()
SILENCE = math.log(CONFIG.log_floor)


def require_tfio():
    ok, reason = audio_backends.tfio_status()
    if not ok:
        if os.environ.get("CI") == "true":
            pytest.fail(f"tensorflow-io must load in CI: {reason}")
        pytest.skip(reason)


def tone(frequency, duration_s, rate, amplitude=0.3):
    t = np.arange(int(round(duration_s * rate))) / rate
    return (amplitude * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


def speech_like(duration_s, rate, seed=0):
    """A gliding harmonic voice with a syllable-rate envelope and a noise floor."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(duration_s * rate))) / rate
    phase = 2 * np.pi * np.cumsum(120 + 40 * np.sin(2 * np.pi * 0.7 * t)) / rate
    voice = sum(np.sin(k * phase) / k for k in range(1, 30))
    envelope = (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)) ** 2
    signal = 0.3 * voice * envelope / np.abs(voice).max() + 0.01 * rng.standard_normal(t.size)
    return signal.astype(np.float32)


def write(path, samples, rate):
    """Write `samples` in the format `path`'s suffix names."""
    options = {".ogg": {"format": "OGG", "subtype": "VORBIS"}, ".mp3": {"format": "MP3"}}
    soundfile.write(str(path), samples, rate, **options.get(path.suffix, {}))
    return path


def resampled_size(duration_s, rate):
    return audio_backends.resampled_length(int(round(duration_s * rate)), rate, CONFIG.sample_rate)


def dominant_frequency(waveform, rate):
    spectrum = np.abs(np.fft.rfft(waveform * np.hanning(waveform.size)))
    return np.fft.rfftfreq(waveform.size, 1 / rate)[np.argmax(spectrum)]


# --- loading ------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["tfio", "soundfile"])
@pytest.mark.parametrize(
    "suffix, rate, channels",
    [(".wav", 8000, 1), (".wav", 44100, 2), (".flac", 22050, 2), (".ogg", 48000, 1),
     (".mp3", 44100, 2), (".mp3", 22050, 1)],
)
def test_load_audio_any_format_rate_and_channels(tmp_path, backend, suffix, rate, channels):
    if backend == "tfio":
        require_tfio()
    left = tone(440, 1.0, rate, amplitude=0.4)
    samples = np.stack([left, 0.5 * left], axis=1) if channels == 2 else left
    path = write(tmp_path / f"tone{suffix}", samples, rate)

    waveform = audio.load_audio(path, CONFIG, backend=backend)

    assert waveform.dtype == np.float32 and waveform.ndim == 1
    assert waveform.size == CONFIG.sample_rate  # 1 s, gapless even for MP3
    assert abs(dominant_frequency(waveform, CONFIG.sample_rate) - 440) < 2
    # Mono is the mean of the channels: 0.4 for mono, (0.4 + 0.2) / 2 for stereo.
    expected_rms = (0.4 if channels == 1 else 0.3) / math.sqrt(2)
    rms = np.sqrt(np.mean(waveform[1000:-1000] ** 2))
    assert rms == pytest.approx(expected_rms, rel=0.05)


def test_audio_track_of_an_m4a_is_read_through_ffmpeg(tmp_path):
    wav = write(tmp_path / "tone.wav", tone(440, 1.0, 44100), 44100)
    m4a = tmp_path / "tone.m4a"
    run_ffmpeg(["-i", str(wav), "-c:a", "aac", "-b:a", "96k", str(m4a)])
    assert audio_backends.decode_with_fallback(m4a, "soundfile").backend == "ffmpeg"

    waveform = audio.load_audio(m4a)

    assert abs(waveform.size - CONFIG.sample_rate) <= 0.01 * CONFIG.sample_rate
    assert abs(dominant_frequency(waveform, CONFIG.sample_rate) - 440) < 2


@pytest.mark.parametrize("subtype", ["PCM_32", "PCM_U8"])
def test_wav_that_tfio_misreads_is_decoded_by_libsndfile(tmp_path, subtype):
    # tfio 0.37 returns 32-bit integer WAV as reinterpreted float bits and
    # 8-bit WAV as raw offset-binary bytes; both must reach libsndfile.
    require_tfio()
    samples = speech_like(0.6, 16000)
    path = tmp_path / f"speech_{subtype}.wav"
    soundfile.write(str(path), samples, 16000, subtype=subtype)

    decoded = audio_backends.decode_with_fallback(path, "tfio")
    waveform = audio.load_audio(path, backend="tfio")

    assert decoded.backend == "soundfile"
    tolerance = 1 / 64 if subtype == "PCM_U8" else 1e-6
    np.testing.assert_allclose(waveform, samples, atol=tolerance)


# --- log-mel spectrogram --------------------------------------------------------


@pytest.mark.parametrize("frequency", [250.0, 1000.0, 4000.0])
def test_tone_lands_in_the_mel_bin_centred_nearest_to_it(frequency):
    centres = librosa.mel_frequencies(
        CONFIG.num_mel_bins + 2, fmin=CONFIG.fmin, fmax=CONFIG.fmax, htk=False
    )[1:-1]

    log_mel = log_mel.log_mel_spectrogram(tone(frequency, 0.5, CONFIG.sample_rate)).numpy()

    assert log_mel.shape == (1 + 8000 // CONFIG.hop_samples, CONFIG.num_mel_bins)
    assert np.argmax(log_mel.mean(axis=0)) == np.argmin(np.abs(centres - frequency))


@pytest.mark.parametrize("num_samples", [1, 399, 16000, 16161])
def test_spectrogram_step_j_is_centred_on_sample_j_times_hop(num_samples):
    waveform = np.zeros(num_samples, np.float32)
    click_step = (num_samples - 1) // CONFIG.hop_samples // 2
    waveform[click_step * CONFIG.hop_samples] = 1.0

    log_mel = log_mel.log_mel_spectrogram(waveform).numpy()

    assert log_mel.shape == (1 + num_samples // CONFIG.hop_samples, CONFIG.num_mel_bins)
    assert np.argmax(log_mel.sum(axis=1)) == click_step


def test_digital_silence_is_the_log_floor_everywhere():
    log_mel = log_mel.log_mel_spectrogram(np.zeros(8000, np.float32)).numpy()
    np.testing.assert_allclose(log_mel, SILENCE, atol=1e-6)


def test_batched_spectrogram_equals_one_by_one():
    batch = np.stack([speech_like(0.7, 16000, seed) for seed in (1, 2)])
    together = log_mel.log_mel_spectrogram(batch).numpy()
    for row, waveform in zip(together, batch):
        np.testing.assert_allclose(row, log_mel.log_mel_spectrogram(waveform).numpy(), atol=1e-5)


# --- per-video-frame features ---------------------------------------------------


@pytest.mark.parametrize("duration_s", [0.5, 1.0, 2.37, 7.3])
@pytest.mark.parametrize("config", [CONFIG, AudioConfig(context_steps=7, num_mel_bins=40)])
def test_features_have_shape_frames_context_bins(duration_s, config):
    waveform = speech_like(duration_s, config.sample_rate)

    features = log_mel.audio_features(waveform, config)

    frames = math.ceil(duration_s * config.fps - 1e-9)
    assert features.shape == (frames, config.context_steps, config.num_mel_bins)
    assert features.dtype == np.float32


@pytest.mark.parametrize(
    "num_samples, frames", [(0, 0), (1, 1), (640, 1), (641, 2), (16000, 25), (16001, 26)]
)
def test_num_video_frames_counts_every_started_frame(num_samples, frames):
    assert audio.num_video_frames(num_samples, CONFIG) == frames
    assert int(audio.num_video_frames(tf.constant(num_samples), CONFIG)) == frames


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
        waveform[begin:begin + burst.size] += burst
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
    log_mel = log_mel.log_mel_spectrogram(waveform)

    features = log_mel.frame_features(log_mel, 30, CONFIG).numpy()

    # Frame 0 is centred on step 2, so its window starts 8 steps before the audio.
    np.testing.assert_allclose(features[0, :8], SILENCE, atol=1e-6)
    assert np.all(features[0, 8:] > SILENCE + 5)
    # 1 s is 25 frames; frames 25..29 lie past the end (but their windows
    # reach back into the audio until frame 27).
    np.testing.assert_allclose(features[28:], SILENCE, atol=1e-6)


def test_tf_function_with_any_length_equals_eager():
    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)])
    def features_from_waveform(waveform):
        log_mel = log_mel.log_mel_spectrogram(waveform, CONFIG)
        num_frames = audio.num_video_frames(tf.size(waveform), CONFIG)
        return log_mel.frame_features(log_mel, num_frames, CONFIG)

    for duration_s in (0.8, 1.37):
        waveform = speech_like(duration_s, CONFIG.sample_rate)
        traced = features_from_waveform(tf.constant(waveform)).numpy()
        np.testing.assert_allclose(traced, log_mel.audio_features(waveform), atol=1e-5)
    assert features_from_waveform.experimental_get_tracing_count() == 1


# --- tfio and the fallback agree ------------------------------------------------


@pytest.mark.parametrize(
    "suffix, rate, channels",
    [(".wav", 44100, 2), (".mp3", 22050, 1), (".ogg", 48000, 2), (".flac", 8000, 1)],
)
def test_tfio_and_fallback_paths_give_the_same_features(tmp_path, suffix, rate, channels):
    require_tfio()
    voice = speech_like(2.0, rate)
    samples = np.stack([voice, 0.7 * voice], axis=1) if channels == 2 else voice
    path = write(tmp_path / f"speech{suffix}", samples, rate)
    assert audio_backends.decode_with_fallback(path, "tfio").backend == "tfio"

    with_tfio = log_mel.audio_features(path, backend="tfio")
    fallback = log_mel.audio_features(path, backend="soundfile")

    # The decoders agree (a 16 kHz WAV gives identical features); the two
    # resamplers do not. Measured on this signal (natural-log mel amplitude;
    # features span -11.5..-0.6): in mel bins whose upper edge is below 85%
    # of the lower Nyquist frequency, at most 0.035 -> tolerance 0.06.
    # Above that tfio's resampler rolls off earlier than soxr's (from ~7 kHz
    # when downsampling to 16 kHz): up to 0.77 in the top two bins, 2.2 in
    # the near-empty bins above 4 kHz of 8 kHz audio. Mean over all bins at
    # most 0.025 -> tolerance 0.035. (From 11.025 kHz the passband
    # difference reaches 0.12: tfio's upsampling filter is narrower.)
    upper_edges = librosa.mel_frequencies(
        CONFIG.num_mel_bins + 2, fmin=CONFIG.fmin, fmax=CONFIG.fmax, htk=False
    )[2:]
    passband = upper_edges < 0.85 * min(rate, CONFIG.sample_rate) / 2
    difference = np.abs(with_tfio - fallback)
    assert with_tfio.shape == fallback.shape
    assert difference[..., passband].max() < 0.06
    assert difference.mean() < 0.035


def test_tfio_resampler_delay_is_compensated():
    require_tfio()
    click = np.zeros(44100, np.float32)
    click[22050] = 1.0
    for backend in ("tfio", "soundfile"):
        resampled = audio_backends.resample(click, 44100, 16000, backend)
        assert resampled.size == 16000
        assert np.argmax(resampled) == 8000


# --- backend selection ----------------------------------------------------------


def test_tfio_status_is_a_flag_and_a_reason():
    ok, reason = audio_backends.tfio_status()
    assert isinstance(ok, bool) and reason
    assert ("tfio" in audio_backends.available_backends()) == ok


def test_environment_variable_overrides_auto(monkeypatch):
    monkeypatch.setenv(audio_backends.BACKEND_ENV_VAR, "soundfile")
    assert audio_backends.resolve_backend_name("auto") == "soundfile"
    assert audio_backends.resolve_backend_name("ffmpeg") == "ffmpeg"  # the argument wins
    monkeypatch.setenv(audio_backends.BACKEND_ENV_VAR, "pyaudio")
    with pytest.raises(AutalkError, match="KERAS_AUTALK_AUDIO_BACKEND 'pyaudio' is unknown"):
        audio_backends.resolve_backend_name("auto")


def test_without_tfio_auto_falls_back_and_tfio_is_refused(tmp_path, monkeypatch):
    monkeypatch.delenv(audio_backends.BACKEND_ENV_VAR, raising=False)
    monkeypatch.setattr(
        audio_backends, "tfio_status", lambda: (False, "tensorflow-io cannot load (test)")
    )
    path = write(tmp_path / "speech.wav", speech_like(0.6, 22050), 22050)

    assert audio_backends.available_backends() == ("soundfile", "ffmpeg")
    assert audio_backends.resolve_backend_name("auto") == "soundfile"
    assert audio.load_audio(path).size == resampled_size(0.6, 22050)
    with pytest.raises(MissingDependencyError, match="tensorflow-io cannot load"):
        audio.load_audio(path, backend="tfio")


# --- bad input ------------------------------------------------------------------


def make_bad_input(kind, tmp_path):
    if kind == "missing":
        return tmp_path / "nowhere.wav"
    if kind == "directory":
        folder = tmp_path / "folder.wav"
        folder.mkdir()
        return folder
    if kind == "empty":
        path = tmp_path / "empty.wav"
        path.write_bytes(b"")
        return path
    if kind == "random_bytes":
        path = tmp_path / "noise.wav"
        path.write_bytes(np.random.default_rng(0).bytes(4096))
        return path
    if kind == "text_as_mp3":
        path = tmp_path / "notes.mp3"
        path.write_text("these are not the sounds you are looking for\n" * 50)
        return path
    if kind == "truncated_wav":
        path = write(tmp_path / "truncated.wav", speech_like(1.0, 16000), 16000)
        path.write_bytes(path.read_bytes()[:30])
        return path
    if kind == "no_samples":
        return write(tmp_path / "no_samples.wav", np.zeros(0, np.float32), 16000)
    raise ValueError(kind)


@pytest.mark.parametrize("backend", ["auto", "soundfile"])
@pytest.mark.parametrize(
    "kind, words",
    [("missing", "does not exist"), ("directory", "is a directory"), ("empty", "is empty"),
     ("random_bytes", "corrupt or not in a readable audio format"),
     ("text_as_mp3", "corrupt or not in a readable audio format"),
     ("truncated_wav", "corrupt or not in a readable audio format"),
     ("no_samples", "contains no audio samples")],
)
def test_bad_audio_file_is_one_clear_sentence(tmp_path, backend, kind, words):
    path = make_bad_input(kind, tmp_path)
    before = sorted(tmp_path.rglob("*"))

    with pytest.raises(InputFileError) as raised:
        log_mel.audio_features(path, backend=backend)

    message = str(raised.value)
    assert words in message and f"'{path}'" in message
    assert "\n" not in message and message.endswith(".")
    assert sorted(tmp_path.rglob("*")) == before  # nothing written, nothing left


def test_a_tenth_of_a_second_is_too_short(tmp_path):
    path = write(tmp_path / "short.wav", speech_like(0.1, 44100), 44100)
    with pytest.raises(InputFileError) as raised:
        audio.load_speech(path)
    assert str(raised.value) == (
        f"The audio file '{path}' is 0.10 s long; at least 0.50 s of speech is needed."
    )
    assert audio.load_audio(path).size == 1600  # load_audio itself does not judge


@pytest.mark.parametrize("amplitude", [0.0, 1e-4])
def test_silence_is_refused(tmp_path, amplitude):
    samples = amplitude * np.random.default_rng(0).standard_normal(16000).astype(np.float32)
    path = write(tmp_path / "silence.flac", samples, 16000)
    expected = r"is silent: its loudest sample is at .* dBFS, below the -60 dBFS"
    with pytest.raises(InputFileError, match=expected):
        log_mel.audio_features(path)


# ------------------------------------------------------------ normalisation
def speech_frames(features):
    """Frames whose centre step is within 40 dB of the loudest (the statistics' frames)."""
    level = features[:, CONFIG.context_steps // 2].mean(axis=-1)
    return level >= level.max() - log_mel.SPEECH_RANGE_NEPERS


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
    assert before > 1.0          # the raw features move by about ln(3.16) and more
    assert after < 0.15 * before


def test_utterance_statistics_ignore_pauses():
    waveform = speech_like(2.0, CONFIG.sample_rate)
    padded = np.concatenate([waveform, np.zeros(3 * CONFIG.sample_rate, np.float32)])
    alone = log_mel.audio_features(waveform, normalization="utterance")
    with_pause = log_mel.audio_features(padded, normalization="utterance")
    # Every frame of the speech sees the same values, the pause added or not.
    np.testing.assert_allclose(with_pause[:len(alone) - 3], alone[:-3], atol=1e-5)


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
    gain[bins // 2:] = 0.1   # -20 dB above 4 kHz
    plain = log_mel.log_mel_spectrogram(waveform).numpy()
    filtered = log_mel.log_mel_spectrogram(waveform, magnitude_gain=gain).numpy()
    np.testing.assert_allclose(filtered[:, :20], plain[:, :20], atol=1e-5)  # low bins unchanged
    loud = plain[:, -10:] > SILENCE + 3
    np.testing.assert_allclose((plain - filtered)[:, -10:][loud], math.log(10.0), atol=1e-3)
