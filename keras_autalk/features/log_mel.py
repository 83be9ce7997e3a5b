"""Per-video-frame log-mel features of a waveform, as TensorFlow ops.

`log_mel_spectrogram`, `frame_features` and `normalize_features` are
TensorFlow ops end to end, so the same code runs eagerly and inside a
`tf.function` / SavedModel signature that takes a raw waveform. Reading
the audio (any file, any rate) is `keras_autalk.media.audio`.

Time alignment (all from `AudioConfig`):

- Spectrogram step `j` is centred on sample `j * hop_samples` (the
  waveform is padded with `window_samples // 2` zeros at each end: the audio
  counts as silent before its start and after its end), so a waveform of `n`
  samples gives `1 + n // hop_samples` steps.
- Video frame `i` covers `[i / fps, (i + 1) / fps)` seconds; its centre
  `(i + 0.5) / fps` s falls on step `round((i + 0.5) * steps_per_frame)`
  (step `4 i + 2` at 25 fps and a 10 ms hop).
- Frame `i`'s feature window holds `context_steps` steps, with the centre
  step at index `context_steps // 2`; steps before the start or past the end
  of the audio read as silence, `log(log_floor)`.

`features.numpy_features` computes the same features in NumPy, for
inference without TensorFlow.

Normalisation (`ModelConfig.audio_normalization`): "none" feeds the log-mel
windows as they are; "utterance" subtracts, per mel bin, the mean over the
utterance's speech frames (`normalize_features`), so a recording's gain and
its microphone's or room's frequency response (both additive in the log
domain) do not reach the model.
"""

import os

import numpy as np

from keras_autalk.config import AudioConfig
from keras_autalk.features import tfio_backend  # noqa: F401  (registers the "tfio" audio backend)
from keras_autalk.features.numpy_features import (  # noqa: F401  (shared; `log_mel.X` still works)
    NORMALIZATIONS,
    NORMALIZED_FLOOR,
    SPEECH_RANGE_NEPERS,
    check_normalization,
)
from keras_autalk.media import audio
from keras_autalk.native import import_tensorflow

tf = import_tensorflow()


def log_mel_spectrogram(waveform, config=AudioConfig(), magnitude_gain=None):
    """Log-mel magnitude spectrogram of a waveform at `config.sample_rate`.

    Periodic Hann window of `window_samples`, hop `hop_samples`, FFT of
    `fft_length`; magnitudes go through `media.audio.mel_filterbank(config)` and
    `log(max(x, log_floor))`. Step `j` is centred on sample `j * hop`.
    TensorFlow ops only: works on a `tf.Tensor` inside `tf.function`.

    Args:
        waveform: float samples `(..., num_samples)` (NumPy or tensor).
        config: `AudioConfig`.
        magnitude_gain: optional `(fft_length // 2 + 1,)` factors applied to
            the STFT magnitudes before the mel filters: a linear filter
            (equaliser, band limit) without filtering the waveform.

    Returns:
        float32 `tf.Tensor` `(..., 1 + num_samples // hop_samples, num_mel_bins)`.

    Example:
    ```python
    log_mel = log_mel_spectrogram(np.zeros(16000, np.float32))   # (101, 80)
    ```
    """
    waveform = tf.convert_to_tensor(waveform, dtype=tf.float32)
    half_window = config.window_samples // 2
    paddings = [[0, 0]] * (waveform.shape.rank - 1) + [[half_window, half_window]]
    padded = tf.pad(waveform, paddings)
    spectrum = tf.signal.stft(
        padded,
        frame_length=config.window_samples,
        frame_step=config.hop_samples,
        fft_length=config.fft_length,
        window_fn=tf.signal.hann_window,  # periodic by default
        pad_end=False,
    )
    magnitude = tf.abs(spectrum)
    if magnitude_gain is not None:
        magnitude = magnitude * tf.convert_to_tensor(magnitude_gain, tf.float32)
    mel = tf.tensordot(magnitude, tf.constant(audio.mel_filterbank(config)), axes=1)
    return tf.math.log(tf.maximum(mel, config.log_floor))


def frame_features(log_mel, num_frames, config=AudioConfig()):
    """Cut a window of spectrogram steps around every video frame's centre.

    Args:
        log_mel: `(..., steps, num_mel_bins)` from `log_mel_spectrogram`.
        num_frames: video frames wanted (int or scalar int tensor); frames
            past the end of the audio get silent windows.
        config: `AudioConfig` (`fps`, `hop_ms`, `context_steps`, `log_floor`).

    Returns:
        float32 `tf.Tensor` `(..., num_frames, context_steps, num_mel_bins)`;
        index `context_steps // 2` of each window is the step centred on the
        frame's centre. TensorFlow ops only, as `log_mel_spectrogram`.

    Example:
    ```python
    features = frame_features(log_mel_spectrogram(waveform), 25)  # (25, 20, 80)
    ```
    """
    log_mel = tf.convert_to_tensor(log_mel, dtype=tf.float32)
    num_steps = tf.shape(log_mel)[-2]
    frame_index = tf.cast(tf.range(num_frames), tf.float32)
    centre_step = tf.cast(tf.floor((frame_index + 0.5) * config.steps_per_frame + 0.5), tf.int32)
    offsets = tf.range(config.context_steps) - config.context_steps // 2
    step_index = centre_step[:, None] + offsets[None, :]
    # One silent row on each side; every index outside the audio maps to it.
    silent_shape = tf.concat([tf.shape(log_mel)[:-2], [1], tf.shape(log_mel)[-1:]], axis=0)
    # The same op as in `log_mel_spectrogram`, so padding equals real silence.
    silent = tf.fill(silent_shape, tf.math.log(tf.constant(config.log_floor, tf.float32)))
    padded = tf.concat([silent, log_mel, silent], axis=-2)
    step_index = tf.clip_by_value(step_index + 1, 0, num_steps + 1)
    return tf.gather(padded, step_index, axis=-2)


def normalize_features(audio_features, normalization="utterance", config=AudioConfig()):
    """Per-utterance normalisation of `frame_features` output.

    "utterance": the frames' centre steps (one log-mel step per video frame)
    whose mean level is within 40 dB of the loudest frame are the speech;
    their per-bin mean is subtracted from every step of every window, and
    values more than 60 dB below it are raised to that floor. The
    statistics come from the features alone, so prepared records, a whole
    recording in `generate` and a SavedModel signature all normalise the
    same way. TensorFlow ops only.

    Args:
        audio_features: `(..., T, context_steps, num_mel_bins)`; the leading
            axes are separate utterances.
        normalization: "utterance", or "none" (returned unchanged).
        config: `AudioConfig` (`context_steps`).

    Returns:
        float32 `tf.Tensor`, the shape of `audio_features`.

    Example:
    ```python
    features = normalize_features(audio_features("speech.wav"))
    ```
    """
    check_normalization(normalization)
    audio_features = tf.convert_to_tensor(audio_features, tf.float32)
    if normalization == "none":
        return audio_features
    centre = audio_features[..., config.context_steps // 2, :]  # (..., T, bins)
    level = tf.reduce_mean(centre, axis=-1, keepdims=True)  # (..., T, 1)
    loudest = tf.reduce_max(level, axis=-2, keepdims=True)
    speech = tf.cast(level >= loudest - SPEECH_RANGE_NEPERS, tf.float32)
    mean = tf.reduce_sum(centre * speech, axis=-2) / tf.maximum(
        tf.reduce_sum(speech, axis=-2), 1.0
    )  # (..., bins)
    return tf.maximum(audio_features - mean[..., None, None, :], NORMALIZED_FLOOR)


def num_video_frames(num_samples, config=AudioConfig()):
    """`media.audio.num_video_frames` for an int or a scalar tensor (in a graph)."""
    if isinstance(num_samples, (tf.Tensor, tf.Variable)):
        frames = tf.cast(num_samples, tf.float64) * config.fps / config.sample_rate
        return tf.cast(tf.math.ceil(frames - 1e-9), tf.int32)
    return audio.num_video_frames(num_samples, config)


def audio_features(
    path_or_waveform, config=AudioConfig(), backend="auto", num_frames=None, normalization="none"
):
    """Per-video-frame log-mel windows of an audio file or a waveform.

    Args:
        path_or_waveform: a file path (read with `media.audio.load_speech`, so too short
            or silent audio is refused) or a 1-D waveform already at
            `config.sample_rate` (used as is).
        config: `AudioConfig`.
        backend: audio backend for a path (see `media.audio.load_audio`).
        num_frames: video frames wanted; default `num_video_frames(...)`.
        normalization: "none" or "utterance" (`normalize_features`; a
            model's `ModelConfig.audio_normalization` says which it takes).

    Returns:
        float32 `np.ndarray` `(num_frames, context_steps, num_mel_bins)`.

    Example:
    ```python
    features = audio_features("speech.wav")   # 3 s -> (75, 20, 80)
    ```
    """
    if isinstance(path_or_waveform, (str, os.PathLike)):
        waveform = audio.load_speech(path_or_waveform, config, backend)
    else:
        waveform = np.asarray(path_or_waveform, dtype=np.float32)
        if waveform.ndim != 1:
            raise ValueError(f"Expected a 1-D waveform, got shape {waveform.shape}.")
    if num_frames is None:
        num_frames = num_video_frames(waveform.shape[0], config)
    log_mel = log_mel_spectrogram(waveform, config)
    features = frame_features(log_mel, num_frames, config)
    return normalize_features(features, normalization, config).numpy()
