"""The tensorflow-io audio backend: its status, its resampler, the files it hands on to libsndfile."""

import librosa
import numpy as np
import pytest
import soundfile

from keras_autalk.errors import MissingDependencyError
from keras_autalk.features import log_mel, tfio_backend
from keras_autalk.media import audio, audio_backends
from tests.audio_helpers import (
    CONFIG,
    require_tfio,
    resampled_size,
    speech_like,
    write,
)


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


def test_tfio_resampler_delay_is_compensated():
    require_tfio()
    click = np.zeros(44100, np.float32)
    click[22050] = 1.0
    for backend in ("tfio", "soundfile"):
        resampled = audio_backends.resample(click, 44100, 16000, backend)
        assert resampled.size == 16000
        assert np.argmax(resampled) == 8000


def test_tfio_status_is_a_flag_and_a_reason():
    ok, reason = tfio_backend.tfio_status()
    assert isinstance(ok, bool) and reason
    assert ("tfio" in audio_backends.available_backends()) == ok


def test_without_tfio_auto_falls_back_and_tfio_is_refused(tmp_path, monkeypatch):
    monkeypatch.delenv(audio_backends.BACKEND_ENV_VAR, raising=False)
    # The registered backend's status, as `register_backend` stored it.
    monkeypatch.setitem(
        audio_backends._STATUS, "tfio", lambda: (False, "tensorflow-io cannot load (test)")
    )
    path = write(tmp_path / "speech.wav", speech_like(0.6, 22050), 22050)

    assert audio_backends.available_backends() == ("soundfile", "ffmpeg")
    assert audio_backends.resolve_backend_name("auto") == "soundfile"
    assert audio.load_audio(path).size == resampled_size(0.6, 22050)
    with pytest.raises(MissingDependencyError, match="tensorflow-io cannot load"):
        audio.load_audio(path, backend="tfio")


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
