"""Test audio shared by the media and features tests: tones, speech-like noise, files."""

import math
import os

import numpy as np
import pytest
import soundfile

from keras_autalk.config import AudioConfig
from keras_autalk.features import log_mel, tfio_backend
from keras_autalk.media import audio_backends

CONFIG = AudioConfig()


SILENCE = math.log(CONFIG.log_floor)


def require_tfio():
    ok, reason = tfio_backend.tfio_status()
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


# ------------------------------------------------------------ normalisation
def speech_frames(features):
    """Frames whose centre step is within 40 dB of the loudest (the statistics' frames)."""
    level = features[:, CONFIG.context_steps // 2].mean(axis=-1)
    return level >= level.max() - log_mel.SPEECH_RANGE_NEPERS
