"""Audio decoding and resampling behind one small adapter.

Three backends implement the same two calls, `decode(path)` and
`resample(mono, rate_in, rate_out)`:

- `"tfio"`: tensorflow-io (`tfio.audio.AudioIOTensor` decodes WAV, FLAC,
  Ogg Vorbis and MP3; `tfio.audio.resample`). Its ops load only with the
  TensorFlow version it was built for, so `tfio_status()` tries them once.
- `"soundfile"`: libsndfile through `soundfile` (WAV, FLAC, Ogg, MP3 and
  more) and the soxr resampler through `librosa.resample(res_type="soxr_hq")`.
- `"ffmpeg"`: the ffmpeg binary of imageio-ffmpeg, for what libsndfile cannot
  read (AAC/M4A, the audio track of a video file); resamples like
  `"soundfile"`.

`"auto"` (the default) is `"tfio"` when its ops load, else `"soundfile"`;
the environment variable `KERAS_AUTALK_AUDIO_BACKEND` overrides it. Whatever
the choice, a file the chosen backend cannot decode is retried with the next
one (tfio -> soundfile -> ffmpeg), so one odd file never stops a run.

What users send is rarely clean: `mix_down` makes one channel without a DC
offset even when the channels cancel each other, and `set_speech_level`
brings speech recorded very quietly or very loudly to the level the model
learnt from.
"""

import collections
import functools
import logging
import math
import os
import struct

import numpy as np

from keras_autalk.errors import AutalkError, InputFileError, MissingDependencyError
from keras_autalk.native import native_stderr_silenced

logger = logging.getLogger(__name__)

BACKEND_ENV_VAR = "KERAS_AUTALK_AUDIO_BACKEND"
BACKEND_NAMES = ("tfio", "soundfile", "ffmpeg")

# Per-file fallbacks, tried in order after the chosen backend.
_DECODE_CHAINS = {
    "tfio": ("tfio", "soundfile", "ffmpeg"),
    "soundfile": ("soundfile", "ffmpeg"),
    "ffmpeg": ("ffmpeg",),
}

DecodedAudio = collections.namedtuple("DecodedAudio", "samples sample_rate backend")
DecodedAudio.__doc__ = """Decoded samples `(num_samples, channels)` float32,
their rate in Hz, and the name of the backend that decoded them."""


class BackendError(Exception):
    """One backend could not decode one file (internal; triggers a fallback)."""


class EmptyAudioError(BackendError):
    """The file decoded to zero samples."""


def resampled_length(num_samples, rate_in, rate_out):
    """Samples after resampling: `ceil(num_samples * rate_out / rate_in)`.

    Every backend returns exactly this many (librosa's rule), so the paths
    agree on length and therefore on the number of video frames.
    """
    return -(-int(num_samples) * int(rate_out) // int(rate_in))


def _fix_length(samples, length):
    if samples.shape[0] >= length:
        return samples[:length]
    return np.pad(samples, (0, length - samples.shape[0]))


def _check_samples(samples):
    """Raise `BackendError` unless `samples` is a usable `(n, channels)` array."""
    if samples.ndim != 2 or samples.shape[1] < 1:
        raise BackendError(f"decoded to an array of shape {samples.shape}")
    if samples.shape[0] == 0:
        raise EmptyAudioError("decoded to zero samples")
    if not np.all(np.isfinite(samples)):
        raise BackendError("decoded to non-finite samples")
    return samples


class AudioBackend:
    """The adapter: decode a file, resample a mono waveform."""

    name = None

    def decode(self, path):
        """Return `(samples, sample_rate)`: float32 `(num_samples, channels)`
        in [-1, 1] (floating-point files may exceed it) and the rate in Hz.

        Raises:
            BackendError: this backend cannot decode `path`.
        """
        raise NotImplementedError

    def resample(self, mono, rate_in, rate_out):
        """Return the 1-D float32 `mono` at `rate_out`, of length
        `resampled_length(len(mono), rate_in, rate_out)`."""
        raise NotImplementedError


class SoundfileBackend(AudioBackend):
    """libsndfile decoding, soxr (high quality) resampling."""

    name = "soundfile"

    def decode(self, path):
        import soundfile

        try:
            with native_stderr_silenced():  # libmpg123 warns on odd MP3 tags
                samples, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
        except soundfile.LibsndfileError as error:
            raise BackendError(error.error_string) from None
        except (RuntimeError, TypeError, ValueError, OSError) as error:
            raise BackendError(str(error).splitlines()[0]) from None
        return _check_samples(samples), int(rate)

    def resample(self, mono, rate_in, rate_out):
        import librosa

        mono = np.asarray(mono, dtype=np.float32)
        if rate_in == rate_out:
            return mono
        resampled = librosa.resample(
            mono, orig_sr=rate_in, target_sr=rate_out, res_type="soxr_hq", fix=False
        )
        length = resampled_length(mono.size, rate_in, rate_out)
        return _fix_length(resampled.astype(np.float32), length)


class FfmpegBackend(SoundfileBackend):
    """ffmpeg decoding (any container and codec it knows), soxr resampling."""

    name = "ffmpeg"

    def decode(self, path):
        from keras_autalk.data.ffmpeg import decode_audio

        try:
            samples, rate = decode_audio(path)
        except AutalkError as error:
            raise BackendError(str(error)) from None
        return _check_samples(samples), int(rate)


_WAVE_FORMAT_PCM = 1
_WAVE_FORMAT_EXTENSIBLE = 0xFFFE


def _is_32bit_integer_wav(path):
    """True for a WAV file of 32-bit integer PCM samples.

    tensorflow-io 0.37 returns those bits reinterpreted as float32 (garbage,
    often NaN), so the tfio backend hands such files on to libsndfile.
    """
    with open(path, "rb") as handle:
        header = handle.read(12)
        if len(header) < 12 or header[:4] != b"RIFF" or header[8:12] != b"WAVE":
            return False
        while True:
            chunk = handle.read(8)
            if len(chunk) < 8:
                return False
            chunk_id, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if chunk_id == b"fmt ":
                fmt = handle.read(min(size, 40))
                if len(fmt) < 16:
                    return False
                tag = struct.unpack("<H", fmt[:2])[0]
                bits = struct.unpack("<H", fmt[14:16])[0]
                if tag == _WAVE_FORMAT_EXTENSIBLE and len(fmt) >= 26:
                    # The sub-format GUID starts with the real format tag.
                    tag = struct.unpack("<H", fmt[24:26])[0]
                return tag == _WAVE_FORMAT_PCM and bits == 32
            handle.seek(size + (size & 1), os.SEEK_CUR)


class TfioBackend(AudioBackend):
    """tensorflow-io decoding and resampling."""

    name = "tfio"

    def decode(self, path):
        import tensorflow as tf
        import tensorflow_io as tfio

        try:
            if _is_32bit_integer_wav(path):
                raise BackendError("tensorflow-io misreads 32-bit integer WAV samples")
            with native_stderr_silenced():  # tfio logs rejected files from C++
                audio = tfio.audio.AudioIOTensor(str(path))
                samples = audio.to_tensor().numpy()
                rate = int(audio.rate.numpy())
        except (tf.errors.OpError, RuntimeError, TypeError, ValueError, OSError) as error:
            message = getattr(error, "message", None) or str(error)
            raise BackendError(message.strip().splitlines()[-1]) from None
        # tfio returns the file's integer type; 24-bit samples come
        # left-aligned in int32. Its 8-bit output is offset-binary for WAV
        # but not for FLAC, so 8-bit files go to libsndfile instead.
        if samples.dtype == np.int16:
            samples = samples.astype(np.float32) / 32768.0
        elif samples.dtype == np.int32:
            samples = (samples.astype(np.float64) / 2147483648.0).astype(np.float32)
        elif samples.dtype in (np.float32, np.float64):
            samples = samples.astype(np.float32)
        else:
            raise BackendError(f"tensorflow-io returned {samples.dtype} samples")
        return _check_samples(samples), rate

    def resample(self, mono, rate_in, rate_out):
        import tensorflow as tf
        import tensorflow_io as tfio

        mono = np.asarray(mono, dtype=np.float32)
        if rate_in == rate_out:
            return mono
        # tfio.audio.resample is a streaming resampler: its output lags by
        # the filter's delay and the last `delay` samples never come out.
        # Feed zeros to flush the tail, then drop the lag.
        delay = _tfio_resample_delay(int(rate_in), int(rate_out))
        flush = resampled_length(delay + 2, rate_out, rate_in)
        padded = np.concatenate([mono, np.zeros(flush, np.float32)])
        resampled = tfio.audio.resample(
            tf.constant(padded[:, None]), rate_in=int(rate_in), rate_out=int(rate_out)
        ).numpy()[:, 0]
        length = resampled_length(mono.size, rate_in, rate_out)
        return _fix_length(resampled[delay:], length)


@functools.lru_cache(maxsize=None)
def _tfio_resample_delay(rate_in, rate_out):
    """Output samples by which `tfio.audio.resample` lags, measured once.

    An impulse at time 0 comes out peaked at the lag (32 samples from 22.05,
    44.1 or 48 kHz to 16 kHz; 64 from 8 kHz), rounded to a whole sample.
    """
    import tensorflow as tf
    import tensorflow_io as tfio

    impulse = np.zeros((max(int(rate_in), 1024), 1), np.float32)
    impulse[0, 0] = 1.0
    response = tfio.audio.resample(
        tf.constant(impulse), rate_in=rate_in, rate_out=rate_out
    ).numpy()[:, 0]
    return int(np.argmax(response))


@functools.lru_cache(maxsize=1)
def tfio_status():
    """Whether tensorflow-io's ops load here, tried once per process.

    Returns:
        `(ok, reason)`: `ok` is True when the tfio backend can be used;
        `reason` says which version loaded or why it cannot.

    Example:
    ```python
    ok, reason = tfio_status()   # (True, "tensorflow-io 0.37.1 ops load")
    ```
    """
    try:
        import tensorflow as tf
        import tensorflow_io as tfio

        # Importing is lazy; the shared library loads on the first op (and
        # logs CPU-feature notes from C++).
        with native_stderr_silenced():
            tfio.audio.resample(tf.zeros([160, 1]), rate_in=16000, rate_out=8000).numpy()
    # Any failure means "unusable here": ImportError, NotImplementedError,
    # tf.errors.NotFoundError (undefined symbols), OSError, ...
    except Exception as error:  # noqa: BLE001
        lines = str(error).strip().splitlines()
        reason = lines[-1] if lines else ""
        return False, f"tensorflow-io cannot load ({type(error).__name__}: {reason})"
    return True, f"tensorflow-io {tfio.__version__} ops load"


_BACKENDS = {"tfio": TfioBackend(), "soundfile": SoundfileBackend(), "ffmpeg": FfmpegBackend()}


def available_backends():
    """Names of the backends usable here, best first."""
    names = ["soundfile", "ffmpeg"]
    if tfio_status()[0]:
        names.insert(0, "tfio")
    return tuple(names)


def resolve_backend_name(backend="auto"):
    """Turn `backend` ("auto", "tfio", "soundfile", "ffmpeg") into a backend name.

    "auto" (or None) defers to `KERAS_AUTALK_AUDIO_BACKEND` when it is set,
    else picks "tfio" if its ops load and "soundfile" otherwise.

    Raises:
        AutalkError: an unknown name.
        MissingDependencyError: "tfio" asked for where its ops cannot load.
    """
    source = "audio backend"
    name = "auto" if backend is None else str(backend).strip().lower()
    if name == "auto" and os.environ.get(BACKEND_ENV_VAR, "").strip():
        name = os.environ[BACKEND_ENV_VAR].strip().lower()
        source = f"{BACKEND_ENV_VAR}"
    if name == "auto":
        return "tfio" if tfio_status()[0] else "soundfile"
    if name not in BACKEND_NAMES:
        raise AutalkError(
            f"The {source} '{name}' is unknown; use 'auto', 'tfio', 'soundfile' or 'ffmpeg'."
        )
    if name == "tfio":
        ok, reason = tfio_status()
        if not ok:
            raise MissingDependencyError(
                f"The 'tfio' audio backend was asked for but {reason}; "
                f"set {BACKEND_ENV_VAR}=soundfile to use libsndfile instead."
            )
    return name


def get_backend(name):
    """The backend object called `name` (see `BACKEND_NAMES`)."""
    return _BACKENDS[name]


def decode_with_fallback(path, backend="auto"):
    """Decode `path` with `backend`, falling back per file on failure.

    Args:
        path: an audio file (or a video file with an audio track).
        backend: "auto", "tfio", "soundfile" or "ffmpeg".

    Returns:
        `DecodedAudio(samples, sample_rate, backend)`.

    Raises:
        InputFileError: no backend could decode the file, or it holds no
            samples.
    """
    reasons = {}
    empty = False
    for name in _DECODE_CHAINS[resolve_backend_name(backend)]:
        try:
            samples, rate = _BACKENDS[name].decode(path)
        except BackendError as error:
            empty = empty or isinstance(error, EmptyAudioError)
            reasons[name] = str(error)
            logger.debug("The %s backend could not decode '%s': %s", name, path, error)
            continue
        if reasons:
            logger.info("Decoded '%s' with %s (%s)", path, name, reasons)
        return DecodedAudio(samples, rate, name)
    if empty:
        raise InputFileError(f"The audio file '{path}' contains no audio samples.")
    # libsndfile's reasons are the most specific ("Error in WAV file. No
    # 'data' chunk marker."); ffmpeg's and tfio's repeat the path. For an
    # MPEG stream it cannot parse libsndfile says the file does not exist,
    # which would mislead.
    reason = reasons.get("soundfile", "")
    detail = "" if not reason or "does not exist" in reason else f" ({reason.rstrip('.')})"
    raise InputFileError(
        f"The audio file '{path}' is corrupt or not in a readable audio format{detail}."
    )


# Levels are measured over blocks of 20 ms; those within 40 dB of the loudest
# one count as speech for the level.
LEVEL_BLOCK_S = 0.02
_LEVEL_RANGE_DB = 40.0
# A mix-down keeping less than this share of the loudest channel's energy has
# cancelled the speech.
_CANCELLED_ENERGY = 0.1


def mix_down(samples):
    """One channel to analyse from decoded `(num_samples, channels)` samples.

    Each channel's mean (a DC offset) is removed, then the channels are
    averaged. Where averaging cancels the speech (channels in opposite
    phase: a miswired microphone, a "wide stereo" effect; the average keeps
    less than a tenth of the loudest channel's energy) the loudest channel
    is used alone. A silent channel only halves the average, which
    `set_speech_level` undoes.

    Args:
        samples: `(num_samples, channels)` (or 1-D) float samples.

    Returns:
        1-D float32 samples.

    Example:
    >>> left = np.array([0.6, -0.4, 0.6, -0.4], np.float32)
    >>> mix_down(np.stack([left, -left], axis=1)).round(2).tolist()
    [0.5, -0.5, 0.5, -0.5]
    """
    samples = np.asarray(samples, np.float32)
    if samples.ndim == 1:
        samples = samples[:, None]
    centred = samples - samples.mean(axis=0, dtype=np.float64).astype(np.float32)
    mono = centred.mean(axis=1, dtype=np.float32)
    energy = np.sum(np.square(centred), axis=0, dtype=np.float64)
    if np.sum(np.square(mono), dtype=np.float64) < _CANCELLED_ENERGY * energy.max():
        mono = centred[:, int(np.argmax(energy))]
    return np.ascontiguousarray(mono, dtype=np.float32)


def block_power(waveform, sample_rate, block_s=LEVEL_BLOCK_S):
    """The mean power of each whole 20 ms block of `waveform` (one block if it is shorter).

    Example:
    >>> block_power(np.full(800, 0.5), 16000).tolist()
    [0.25, 0.25]
    """
    waveform = np.asarray(waveform, np.float64).ravel()
    block = max(1, int(round(block_s * sample_rate)))
    count = max(1, waveform.size // block)
    blocks = waveform[:count * block] if waveform.size >= block else waveform
    return np.mean(np.square(blocks.reshape(count, -1)), axis=1)


def speech_level_dbfs(waveform, sample_rate):
    """The active speech level of `waveform` in dB full scale (-inf for silence).

    The RMS over the 20 ms blocks within 40 dB of the loudest block, so
    pauses and silence before and after the speech do not lower it.

    Example:
    >>> tone = 0.1 * np.sin(np.arange(16000) / 5.0)
    >>> round(speech_level_dbfs(np.concatenate([tone, np.zeros(32000)]), 16000), 1)
    -23.0
    """
    power = block_power(waveform, sample_rate)
    loudest = float(power.max(initial=0.0))
    if loudest <= 0.0:
        return -math.inf
    active = power[power >= loudest * 10.0 ** (-_LEVEL_RANGE_DB / 10.0)]
    return 10.0 * math.log10(float(np.mean(active)))


def set_speech_level(waveform, sample_rate, level_dbfs):
    """`waveform` scaled so that its `speech_level_dbfs` is `level_dbfs`.

    Silence is returned unchanged. Samples may leave [-1, 1]; the result is
    for analysis (features), not for playing.

    Example:
    ```python
    waveform = set_speech_level(quiet_waveform, 16000, -20.0)   # at -20 dBFS
    ```
    """
    waveform = np.asarray(waveform, np.float32)
    level = speech_level_dbfs(waveform, sample_rate)
    if not math.isfinite(level):
        return waveform
    return (waveform * np.float32(10.0 ** ((level_dbfs - level) / 20.0))).astype(np.float32)


def resample(mono, rate_in, rate_out, backend="auto"):
    """Resample the 1-D waveform `mono` from `rate_in` to `rate_out` Hz.

    Returns `resampled_length(len(mono), rate_in, rate_out)` float32 samples.
    """
    return _BACKENDS[resolve_backend_name(backend)].resample(mono, rate_in, rate_out)
