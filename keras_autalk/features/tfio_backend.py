"""The tensorflow-io audio backend: decoding and resampling with tfio ops.

It implements `media.audio_backends.AudioBackend` and registers itself
under the name "tfio" when this module is imported (media code imports no
TensorFlow, so the backend lives on the TensorFlow side).
`keras_autalk.features.log_mel` imports it, so every TensorFlow-side path
that computes features decodes with tensorflow-io where its ops load, as
`"auto"` has always chosen.
"""

import functools
import os
import struct

import numpy as np

from keras_autalk.media import audio_backends
from keras_autalk.media.audio_backends import (
    AudioBackend,
    BackendError,
    check_samples,
    fix_length,
    resampled_length,
)
from keras_autalk.native import native_stderr_silenced

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
        return check_samples(samples), rate

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
        return fix_length(resampled[delay:], length)


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


audio_backends.register_backend(TfioBackend(), tfio_status)
