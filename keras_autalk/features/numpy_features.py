"""Per-video-frame log-mel features of a waveform, in NumPy (no TensorFlow).

The same features as `keras_autalk.features.log_mel`, step for step, for
inference that must not import TensorFlow: the same padding, periodic Hann
window, FFT, mel filters (`media.audio.mel_filterbank`), log floor, frame
windows and normalisation, so a model trained on the TensorFlow features
reads these as its own (they agree to within 5e-4 in log-mel units; the
FFT runs in float64, the rest in float32). Time alignment and normalisation are
described in `log_mel`'s module docstring.

The normalisation's constants live here, where importing them costs no
TensorFlow; `log_mel` takes them from this module.
"""

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from keras_autalk.config import AudioConfig, ModelConfig
from keras_autalk.media import audio

# The values `ModelConfig.audio_normalization` accepts.
NORMALIZATIONS = ModelConfig.AUDIO_NORMALIZATIONS
# Frames whose level is within 40 dB (amplitude) of the utterance's loudest
# frame count as speech for the normalisation's statistics, so the share of
# pauses in a recording does not move them.
SPEECH_RANGE_NEPERS = math.log(100.0)
# After the normalisation nothing lies more than 60 dB below the speech mean:
# digital silence and a quiet noise floor read the same, whatever the gain.
NORMALIZED_FLOOR = -math.log(1000.0)


def check_normalization(normalization):
    """Raise `ValueError` unless `normalization` is one of `NORMALIZATIONS`."""
    if normalization not in NORMALIZATIONS:
        raise ValueError(
            f"Unknown audio normalization {normalization!r}; choose one of "
            f"{', '.join(NORMALIZATIONS)}."
        )


# Spectrogram steps per FFT call in `log_mel_spectrogram` (about 5 s of audio).
_STEPS_PER_BLOCK = 512


def _periodic_hann_window(length):
    """`tf.signal.hann_window(length)`: `0.5 - 0.5 cos(2 pi k / length)`, float32."""
    return (0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(length) / length)).astype(np.float32)


def log_mel_spectrogram(waveform, config=AudioConfig()):
    """Log-mel magnitude spectrogram of a waveform at `config.sample_rate`.

    `log_mel.log_mel_spectrogram` in NumPy: the waveform is padded with
    `window_samples // 2` zeros at each end, cut into `window_samples` frames
    every `hop_samples`, weighted by a periodic Hann window and zero-padded
    to `fft_length`; the magnitudes go through
    `media.audio.mel_filterbank(config)` and `log(max(x, log_floor))`. Step
    `j` is centred on sample `j * hop`.

    Args:
        waveform: float samples `(..., num_samples)`.
        config: `AudioConfig`.

    Returns:
        float32 `np.ndarray` `(..., 1 + num_samples // hop_samples, num_mel_bins)`.

    Example:
    >>> log_mel_spectrogram(np.zeros(16000, np.float32)).shape
    (101, 80)
    """
    waveform = np.asarray(waveform, dtype=np.float32)
    half_window = config.window_samples // 2
    padding = [(0, 0)] * (waveform.ndim - 1) + [(half_window, half_window)]
    padded = np.pad(waveform, padding)
    # A view: the overlapping frames share the padded waveform's memory.
    windows = sliding_window_view(padded, config.window_samples, axis=-1)
    frames = windows[..., :: config.hop_samples, :]
    window = _periodic_hann_window(config.window_samples)
    filterbank = audio.mel_filterbank(config)
    mel = np.empty(frames.shape[:-1] + filterbank.shape[1:], np.float32)
    # Blocks of steps keep the FFT's buffers in cache (twice as fast as one
    # FFT of the whole clip) and the memory bounded for long recordings.
    for start in range(0, frames.shape[-2], _STEPS_PER_BLOCK):
        block = np.s_[..., start : start + _STEPS_PER_BLOCK, :]
        spectrum = np.fft.rfft(frames[block] * window, n=config.fft_length, axis=-1)
        mel[block] = np.abs(spectrum).astype(np.float32) @ filterbank
    return np.log(np.maximum(mel, np.float32(config.log_floor)))


def frame_features(log_mel, num_frames, config=AudioConfig()):
    """Cut a window of spectrogram steps around every video frame's centre.

    `log_mel.frame_features` in NumPy.

    Args:
        log_mel: `(..., steps, num_mel_bins)` from `log_mel_spectrogram`.
        num_frames: video frames wanted; frames past the end of the audio get
            silent windows.
        config: `AudioConfig` (`fps`, `hop_ms`, `context_steps`, `log_floor`).

    Returns:
        float32 `np.ndarray` `(..., num_frames, context_steps, num_mel_bins)`;
        index `context_steps // 2` of each window is the step centred on the
        frame's centre.

    Example:
    >>> frame_features(log_mel_spectrogram(np.zeros(16000, np.float32)), 25).shape
    (25, 20, 80)
    """
    log_mel = np.asarray(log_mel, dtype=np.float32)
    num_steps = log_mel.shape[-2]
    # float32, as the TensorFlow op computes it, so both pick the same steps.
    frame_index = np.arange(num_frames, dtype=np.float32)
    centre_step = np.floor(
        (frame_index + np.float32(0.5)) * np.float32(config.steps_per_frame) + np.float32(0.5)
    ).astype(np.int64)
    offsets = np.arange(config.context_steps) - config.context_steps // 2
    step_index = centre_step[:, None] + offsets[None, :]
    # One silent row on each side; every index outside the audio maps to it.
    # `log(log_floor)` as in `log_mel_spectrogram`, so padding equals real silence.
    silent = np.full(
        log_mel.shape[:-2] + (1, log_mel.shape[-1]),
        np.log(np.float32(config.log_floor)),
        dtype=np.float32,
    )
    padded = np.concatenate([silent, log_mel, silent], axis=-2)
    step_index = np.clip(step_index + 1, 0, num_steps + 1)
    return np.take(padded, step_index, axis=-2)


def normalize_features(audio_features, normalization="utterance", config=AudioConfig()):
    """Per-utterance normalisation of `frame_features` output.

    `log_mel.normalize_features` in NumPy: with "utterance", the per-bin mean
    of the speech frames' centre steps (those within 40 dB of the loudest
    frame) is subtracted from every step of every window, and values more
    than 60 dB below it are raised to `NORMALIZED_FLOOR`.

    Args:
        audio_features: `(..., T, context_steps, num_mel_bins)`; the leading
            axes are separate utterances.
        normalization: "utterance", or "none" (returned unchanged, as float32).
        config: `AudioConfig` (`context_steps`).

    Returns:
        float32 `np.ndarray`, the shape of `audio_features`.

    Example:
    >>> silence = audio_features(np.zeros(16000, np.float32))
    >>> bool(np.abs(normalize_features(silence)).max() < 1e-5)   # silence is its own mean
    True
    """
    check_normalization(normalization)
    audio_features = np.asarray(audio_features, dtype=np.float32)
    if normalization == "none":
        return audio_features
    centre = audio_features[..., config.context_steps // 2, :]  # (..., T, bins)
    level = centre.mean(axis=-1, keepdims=True)  # (..., T, 1)
    loudest = level.max(axis=-2, keepdims=True, initial=-np.inf)
    speech = (level >= loudest - np.float32(SPEECH_RANGE_NEPERS)).astype(np.float32)
    mean = (centre * speech).sum(axis=-2) / np.maximum(
        speech.sum(axis=-2), np.float32(1.0)
    )  # (..., bins)
    return np.maximum(audio_features - mean[..., None, None, :], np.float32(NORMALIZED_FLOOR))


def audio_features(waveform, config=AudioConfig(), num_frames=None, normalization="none"):
    """Per-video-frame log-mel windows of a waveform, without TensorFlow.

    `log_mel.audio_features` for a waveform (reading files is
    `media.audio.load_speech`'s job).

    Args:
        waveform: 1-D float samples already at `config.sample_rate`.
        config: `AudioConfig`.
        num_frames: video frames wanted; default
            `media.audio.num_video_frames(len(waveform), config)`.
        normalization: "none" or "utterance" (`normalize_features`; a
            model's `ModelConfig.audio_normalization` says which it takes).

    Returns:
        float32 `np.ndarray` `(num_frames, context_steps, num_mel_bins)`.

    Example:
    >>> audio_features(np.zeros(48000, np.float32)).shape   # 3 s
    (75, 20, 80)
    """
    waveform = np.asarray(waveform, dtype=np.float32)
    if waveform.ndim != 1:
        raise ValueError(f"Expected a 1-D waveform, got shape {waveform.shape}.")
    if num_frames is None:
        num_frames = audio.num_video_frames(waveform.shape[0], config)
    log_mel = log_mel_spectrogram(waveform, config)
    features = frame_features(log_mel, num_frames, config)
    return normalize_features(features, normalization, config)
