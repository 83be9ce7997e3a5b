"""Reading speech: any format, rate and channel count to a mono waveform; bad audio refused in a sentence."""

import math

import numpy as np
import pytest

from keras_autalk.config import AudioConfig
from keras_autalk.errors import AutalkError, InputFileError
from keras_autalk.features import log_mel
from keras_autalk.media import audio, audio_backends
from keras_autalk.media.ffmpeg import run_ffmpeg
from tests.audio_helpers import (
    CONFIG,
    dominant_frequency,
    make_bad_input,
    require_tfio,
    speech_like,
    tone,
    write,
)


@pytest.mark.parametrize("backend", ["tfio", "soundfile"])
@pytest.mark.parametrize(
    "suffix, rate, channels",
    [
        (".wav", 8000, 1),
        (".wav", 44100, 2),
        (".flac", 22050, 2),
        (".ogg", 48000, 1),
        (".mp3", 44100, 2),
        (".mp3", 22050, 1),
    ],
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


@pytest.mark.parametrize(
    "num_samples, frames", [(0, 0), (1, 1), (640, 1), (641, 2), (16000, 25), (16001, 26)]
)
def test_num_video_frames_counts_every_started_frame(num_samples, frames):
    assert audio.num_video_frames(num_samples, CONFIG) == frames


def test_environment_variable_overrides_auto(monkeypatch):
    monkeypatch.setenv(audio_backends.BACKEND_ENV_VAR, "soundfile")
    assert audio_backends.resolve_backend_name("auto") == "soundfile"
    assert audio_backends.resolve_backend_name("ffmpeg") == "ffmpeg"  # the argument wins
    monkeypatch.setenv(audio_backends.BACKEND_ENV_VAR, "pyaudio")
    with pytest.raises(AutalkError, match="KERAS_AUTALK_AUDIO_BACKEND 'pyaudio' is unknown"):
        audio_backends.resolve_backend_name("auto")


@pytest.mark.parametrize("backend", ["auto", "soundfile"])
@pytest.mark.parametrize(
    "kind, words",
    [
        ("missing", "does not exist"),
        ("directory", "is a directory"),
        ("empty", "is empty"),
        ("random_bytes", "corrupt or not in a readable audio format"),
        ("text_as_mp3", "corrupt or not in a readable audio format"),
        ("truncated_wav", "corrupt or not in a readable audio format"),
        ("no_samples", "contains no audio samples"),
    ],
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


@pytest.mark.parametrize(
    "config",
    [
        AudioConfig(),
        AudioConfig(num_mel_bins=40),
        AudioConfig(sample_rate=22050, fft_length=1024, fmax=None),
    ],
)
def test_mel_filterbank_is_librosas_slaney_filters(config):
    # Built in NumPy so that inference need not import librosa (about 1 s).
    import librosa

    expected = librosa.filters.mel(
        sr=config.sample_rate,
        n_fft=config.fft_length,
        n_mels=config.num_mel_bins,
        fmin=config.fmin,
        fmax=config.fmax,
        htk=False,
        norm="slaney",
    ).T
    built = audio.mel_filterbank(config)
    assert built.shape == (config.fft_length // 2 + 1, config.num_mel_bins)
    np.testing.assert_allclose(built, expected, rtol=0, atol=1e-7)
