"""Audio decoding and resampling behind one small adapter.

Three backends implement the same two calls, `decode(path)` and
`resample(mono, rate_in, rate_out)`:

- `"tfio"`: tensorflow-io (`tfio.audio.AudioIOTensor` decodes WAV, FLAC,
  Ogg Vorbis and MP3; `tfio.audio.resample`). It needs TensorFlow, so it
  lives in `keras_autalk.features.tfio_backend` and registers itself here
  (`register_backend`) when the TensorFlow-side features are imported; its
  ops load only with the TensorFlow version it was built for, so its status
  tries them once.
- `"soundfile"`: libsndfile through `soundfile` (WAV, FLAC, Ogg, MP3 and
  more) and the soxr resampler (`soxr_hq`, as `librosa.resample` uses it).
- `"ffmpeg"`: the ffmpeg binary of imageio-ffmpeg, for what libsndfile cannot
  read (AAC/M4A, the audio track of a video file); resamples like
  `"soundfile"`.

`"auto"` (the default) is `"tfio"` when it is registered and its ops load,
else `"soundfile"`;
the environment variable `KERAS_AUTALK_AUDIO_BACKEND` overrides it. Whatever
the choice, a file the chosen backend cannot decode is retried with the next
one (tfio -> soundfile -> ffmpeg), so one odd file never stops a run.

What users send is rarely clean: `mix_down` makes one channel without a DC
offset even when the channels cancel each other, and `set_speech_level`
brings speech recorded very quietly or very loudly to the level the model
learnt from.
"""

import collections
import logging
import math
import os

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


def fix_length(samples, length):
    if samples.shape[0] >= length:
        return samples[:length]
    return np.pad(samples, (0, length - samples.shape[0]))


def check_samples(samples):
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
        return check_samples(samples), int(rate)

    def resample(self, mono, rate_in, rate_out):
        # soxr itself, as `librosa.resample(res_type="soxr_hq")` calls it (the
        # same samples), without importing librosa (about a second).
        import soxr

        mono = np.asarray(mono, dtype=np.float32)
        if rate_in == rate_out:
            return mono
        resampled = soxr.resample(mono, rate_in, rate_out, quality="soxr_hq")
        length = resampled_length(mono.size, rate_in, rate_out)
        return fix_length(resampled.astype(np.float32), length)


class FfmpegBackend(SoundfileBackend):
    """ffmpeg decoding (any container and codec it knows), soxr resampling."""

    name = "ffmpeg"

    def decode(self, path):
        from keras_autalk.media.ffmpeg import decode_audio

        try:
            samples, rate = decode_audio(path)
        except AutalkError as error:
            raise BackendError(str(error)) from None
        return check_samples(samples), int(rate)


_BACKENDS = {"soundfile": SoundfileBackend(), "ffmpeg": FfmpegBackend()}
# name -> a function returning `(ok, reason)`: whether a registered backend
# can be used here.
_STATUS = {}


def register_backend(backend, status):
    """Make `backend` (an `AudioBackend`) available under `backend.name`.

    Media code imports no TensorFlow, so the TensorFlow-based "tfio"
    backend lives in `keras_autalk.features.tfio_backend`, which registers
    itself here when imported (every TensorFlow-side feature path imports
    it through `keras_autalk.features.log_mel`).

    Args:
        backend: the `AudioBackend` instance.
        status: a function returning `(ok, reason)`; "auto" picks the
            backend only when `ok`.
    """
    _BACKENDS[backend.name] = backend
    _STATUS[backend.name] = status


def backend_status(name):
    """`(ok, reason)`: whether the backend called `name` can be used here."""
    if name in _STATUS:
        return _STATUS[name]()
    if name in _BACKENDS:
        return True, f"{name} is built in"
    return False, (
        f"the '{name}' backend is not loaded (it registers when "
        f"keras_autalk.features.log_mel is imported)"
    )


def available_backends():
    """Names of the backends usable here, best first."""
    names = ["soundfile", "ffmpeg"]
    if backend_status("tfio")[0]:
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
        return "tfio" if backend_status("tfio")[0] else "soundfile"
    if name not in BACKEND_NAMES:
        raise AutalkError(
            f"The {source} '{name}' is unknown; use 'auto', 'tfio', 'soundfile' or 'ffmpeg'."
        )
    if name == "tfio":
        ok, reason = backend_status("tfio")
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
    blocks = waveform[: count * block] if waveform.size >= block else waveform
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
