"""Speech in: any audio file read as a mono waveform at the model's rate.

`load_audio` reads WAV, FLAC, Ogg, MP3 (and, through ffmpeg, the audio of
M4A or video files) at any rate and channel count, and returns a mono
waveform at `AudioConfig.sample_rate`; `load_speech` also refuses audio too
short or too quiet to drive a face. `mel_filterbank` is the mel matrix the
features use. NumPy only: the per-video-frame log-mel features, which run
as TensorFlow ops (also inside SavedModel signatures), are in
`keras_autalk.features.log_mel`.
"""

import math

import numpy as np

from keras_autalk.config import AudioConfig
from keras_autalk.errors import InputFileError
from keras_autalk.files import check_input_file
from keras_autalk.media import audio_backends


def load_audio(path, config=AudioConfig(), backend="auto"):
    """Read an audio file as a mono float32 waveform at `config.sample_rate`.

    Channels are averaged (as recorded: `generate` reads user speech through
    `audio_backends.mix_down`, which also removes a DC offset and survives
    channels that cancel); the waveform is resampled with the backend's
    resampler (soxr quality either way).

    Args:
        path: WAV, FLAC, Ogg Vorbis/Opus, MP3, or anything ffmpeg reads.
        config: `AudioConfig` giving the target sample rate.
        backend: "auto", "tfio", "soundfile" or "ffmpeg" (see
            `audio_backends`); a file the backend cannot decode is retried
            with the next one.

    Returns:
        A 1-D float32 `np.ndarray`.

    Raises:
        InputFileError: missing, a directory, empty, corrupt, or not audio.

    Example:
    ```python
    waveform = load_audio("speech.mp3")   # 16 kHz mono
    ```
    """
    path = check_input_file(path, "audio file")
    name = audio_backends.resolve_backend_name(backend)
    decoded = audio_backends.decode_with_fallback(path, name)
    mono = decoded.samples.mean(axis=1, dtype=np.float32)
    waveform = audio_backends.resample(mono, decoded.sample_rate, config.sample_rate, name)
    return np.ascontiguousarray(waveform, dtype=np.float32)


def peak_dbfs(waveform):
    """The loudest sample of `waveform` in dB full scale (-inf for zeros)."""
    peak = float(np.max(np.abs(waveform), initial=0.0))
    return 20.0 * math.log10(peak) if peak > 0 else -math.inf


def check_speech(waveform, config=AudioConfig(), name="The audio"):
    """Raise `InputFileError` if `waveform` is too short or silent for speech.

    Args:
        waveform: 1-D samples at `config.sample_rate`.
        config: `AudioConfig` with `min_duration_s` and `silence_dbfs`.
        name: how the message names the audio ("The audio file 'a.wav'").
    """
    duration = len(waveform) / config.sample_rate
    if duration < config.min_duration_s:
        raise InputFileError(
            f"{name} is {duration:.2f} s long; at least "
            f"{config.min_duration_s:.2f} s of speech is needed."
        )
    level = peak_dbfs(waveform)
    if level < config.silence_dbfs:
        raise InputFileError(
            f"{name} is silent: its loudest sample is at {level:.1f} dBFS, "
            f"below the {config.silence_dbfs:.0f} dBFS that speech needs."
        )


def load_speech(path, config=AudioConfig(), backend="auto"):
    """`load_audio`, refusing audio too short or too quiet to drive a face.

    Raises:
        InputFileError: as `load_audio`, or shorter than
            `config.min_duration_s`, or peak below `config.silence_dbfs`.

    Example:
    ```python
    waveform = load_speech("speech.wav")
    ```
    """
    waveform = load_audio(path, config, backend)
    check_speech(waveform, config, name=f"The audio file '{path}'")
    return waveform


_MEL_FILTERBANKS = {}


def mel_filterbank(config=AudioConfig()):
    """The `(fft_length // 2 + 1, num_mel_bins)` float32 mel matrix.

    librosa's Slaney-style filters (`librosa.filters.mel` with `htk=False`,
    `norm="slaney"`: area-normalised), computed here in NumPy, because
    importing librosa takes about a second; built once per setting and
    shared by every backend and by `tf.function`s.
    """
    key = (config.sample_rate, config.fft_length, config.num_mel_bins, config.fmin, config.fmax)
    if key not in _MEL_FILTERBANKS:
        _MEL_FILTERBANKS[key] = np.ascontiguousarray(_slaney_filters(*key).T, dtype=np.float32)
    return _MEL_FILTERBANKS[key]


# The Slaney mel scale: linear below 1 kHz, logarithmic above.
_MEL_LINEAR_HZ_PER_MEL = 200.0 / 3.0
_MEL_BREAK_HZ = 1000.0
_MEL_LOG_STEP = math.log(6.4) / 27.0


def _hz_to_mel(hz):
    hz = np.asarray(hz, np.float64)
    linear = hz / _MEL_LINEAR_HZ_PER_MEL
    break_mel = _MEL_BREAK_HZ / _MEL_LINEAR_HZ_PER_MEL
    logarithmic = break_mel + np.log(np.maximum(hz, _MEL_BREAK_HZ) / _MEL_BREAK_HZ) / _MEL_LOG_STEP
    return np.where(hz >= _MEL_BREAK_HZ, logarithmic, linear)


def _mel_to_hz(mel):
    mel = np.asarray(mel, np.float64)
    break_mel = _MEL_BREAK_HZ / _MEL_LINEAR_HZ_PER_MEL
    logarithmic = _MEL_BREAK_HZ * np.exp(_MEL_LOG_STEP * (mel - break_mel))
    return np.where(mel >= break_mel, logarithmic, _MEL_LINEAR_HZ_PER_MEL * mel)


def _slaney_filters(sample_rate, fft_length, num_mel_bins, fmin, fmax):
    """`(num_mel_bins, fft_length // 2 + 1)` triangles, as `librosa.filters.mel` makes them."""
    fmax = sample_rate / 2.0 if fmax is None else fmax
    fft_hz = np.linspace(0.0, sample_rate / 2.0, 1 + fft_length // 2)
    edges_hz = _mel_to_hz(np.linspace(_hz_to_mel(fmin), _hz_to_mel(fmax), num_mel_bins + 2))
    widths = np.diff(edges_hz)
    ramps = edges_hz[:, None] - fft_hz[None, :]
    rising = -ramps[:-2] / widths[:-1, None]
    falling = ramps[2:] / widths[1:, None]
    filters = np.maximum(0.0, np.minimum(rising, falling)).astype(np.float32)
    filters *= (2.0 / (edges_hz[2:] - edges_hz[:-2]))[:, None].astype(np.float32)
    return filters


def num_video_frames(num_samples, config=AudioConfig()):
    """Video frames for `num_samples` of audio: `ceil(duration * fps)`.

    Every started frame period gets a frame, so the video never ends before
    the audio (it is at most one frame longer). 1 s at 25 fps -> 25 frames;
    1 s plus one sample -> 26. `features.log_mel.num_video_frames` is the
    same count for a scalar tensor inside a graph.

    Example:
    >>> num_video_frames(16001)
    26
    """
    return int(math.ceil(int(num_samples) * config.fps / config.sample_rate - 1e-9))
