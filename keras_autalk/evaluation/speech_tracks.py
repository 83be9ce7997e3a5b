"""Real-speech benchmark tracks: real recordings joined with pauses, in recording conditions.

`build_track` joins recordings, each cut to its sound (`speech_bounds`),
with seeded pauses of 0.4-0.8 s that hold the room's own background; the
speech/pause label of every sample is known by construction.
`apply_condition` turns a track into a phone-like, noisy or reverberant
version of itself (`CONDITIONS`), with the same labels.
"""

import dataclasses
import math
import pathlib

import numpy as np

from keras_autalk.config import AudioConfig
from keras_autalk.errors import AutalkError

# Recordings are read with the "auto" audio backend: tensorflow-io where its
# ops load, which needs its backend registered.
from keras_autalk.features import tfio_backend  # noqa: F401,E402

# A recording is trimmed to where its 20 ms blocks are within 40 dB of its
# loudest block; what is left counts as speech.
TRIM_DB = 40.0


# ... and at least this far above its noise floor (the 10th-percentile block).
FLOOR_MARGIN_DB = 15.0


TRACK_LEVEL_DBFS = -20.0


# Shortest and longest pause between two recordings of a track, seconds.
PAUSE_RANGE_S = (0.4, 0.8)


@dataclasses.dataclass
class Track:
    """A benchmark track: speech joined with pauses.

    Attributes:
        waveform: float32 mono samples at `sample_rate`.
        sample_rate: Hz.
        speech: bool per sample, True where a recording speaks.
        recordings: the recordings used, in order.
    """

    waveform: np.ndarray
    sample_rate: int
    speech: np.ndarray
    recordings: list

    @property
    def duration(self):
        return len(self.waveform) / self.sample_rate


def speech_bounds(waveform, sample_rate, trim_db=TRIM_DB, floor_margin_db=FLOOR_MARGIN_DB):
    """First and last sample `(start, end)` of the sound in a recording, in whole 20 ms blocks.

    A block is sound when its level is within `trim_db` of the loudest block
    and at least `floor_margin_db` above the recording's noise floor (its
    10th-percentile block), so a noisy room's background is not taken for
    speech.

    Example:
    >>> tone = np.sin(np.arange(3200) / 5.0)
    >>> speech_bounds(np.concatenate([np.zeros(1600), tone, np.zeros(800)]), 16000)
    (1600, 4800)
    """
    from keras_autalk.media import audio_backends

    block = max(1, int(round(audio_backends.LEVEL_BLOCK_S * sample_rate)))
    level = 10.0 * np.log10(audio_backends.block_power(waveform, sample_rate) + 1e-12)
    threshold = max(level.max() - trim_db, np.percentile(level, 10) + floor_margin_db)
    loud = np.flatnonzero(level >= min(threshold, level.max()))
    return int(loud[0] * block), int((loud[-1] + 1) * block)


def trim_recording(waveform, sample_rate, trim_db=TRIM_DB):
    """`waveform` without its leading and trailing silence or background (`speech_bounds`).

    Example:
    >>> tone = np.sin(np.arange(3200) / 5.0)
    >>> len(trim_recording(np.concatenate([np.zeros(1600), tone, np.zeros(800)]), 16000))
    3200
    """
    start, end = speech_bounds(waveform, sample_rate, trim_db)
    return waveform[start:end]


def _track_gain(speech):
    """The gain that sets `speech` to `TRACK_LEVEL_DBFS` RMS (0 for digital silence)."""
    rms = math.sqrt(float(np.mean(np.square(speech, dtype=np.float64)))) if len(speech) else 0.0
    return 10 ** (TRACK_LEVEL_DBFS / 20) / rms if rms > 0 else 0.0


def build_track(
    recordings, seed, duration_s=15.0, pause_range_s=PAUSE_RANGE_S, config=AudioConfig()
):
    """Join real recordings, in a seeded random order, with pauses into one track.

    Each recording is read at `config.sample_rate`, cut to its sound
    (`speech_bounds`) and set to -20 dBFS RMS; the track starts and ends
    with a pause, and every pause lasts a seeded random 0.4-0.8 s. A pause
    holds the background of the recording before it (what was cut off,
    at the same gain, repeated as needed; the opening pause that of the
    first recording), so pauses sound like the room they were recorded in
    rather than digital silence. Recordings are added until the track is
    at least `duration_s` long (cycling through them if needed).

    Args:
        recordings: audio file paths (e.g. `klettres.list_recordings`).
        seed: the order and the pauses.
        duration_s: the shortest track.
        pause_range_s: shortest and longest pause.
        config: `AudioConfig` (sample rate).

    Returns:
        A `Track`.

    Example:
    ```python
    track = build_track(klettres.list_recordings(fetch_klettres(), "en"), seed=0)
    ```
    """
    from keras_autalk.media import audio

    recordings = [pathlib.Path(path) for path in recordings]
    if not recordings:
        raise AutalkError("A track needs at least one recording.")
    rng = np.random.default_rng(seed)
    order = list(rng.permutation(len(recordings)))
    rate = config.sample_rate
    pieces, labels, used = [], [], []

    def pause(background):
        samples = int(round(rng.uniform(*pause_range_s) * rate))
        if len(background) >= 160:
            sound = np.resize(background, samples).astype(np.float32)
        else:
            sound = np.zeros(samples, np.float32)
        pieces.append(sound)
        labels.append(np.zeros(samples, bool))

    total, position = 0, 0
    while total < duration_s * rate:
        path = recordings[order[position % len(order)]]
        position += 1
        if position > 100 * len(order):
            raise AutalkError("The recordings hold no sound to build a track from.")
        waveform = audio.load_audio(path, config)
        start, end = speech_bounds(waveform, rate)
        gain = _track_gain(waveform[start:end])
        if gain == 0:
            continue
        background = np.clip(np.concatenate([waveform[:start], waveform[end:]]) * gain, -1.0, 1.0)
        if not pieces:
            pause(background)  # the opening pause sounds like the first recording's room
        speech = np.clip(waveform[start:end] * gain, -1.0, 1.0)
        pieces.append(speech.astype(np.float32))
        labels.append(np.ones(len(speech), bool))
        used.append(path)
        pause(background)
        total = sum(len(piece) for piece in pieces)
    return Track(np.concatenate(pieces), rate, np.concatenate(labels), used)


# ------------------------------------------------------------------ recording conditions
# The conditions `apply_condition` knows, in table order; "clean" is the track as built.
CONDITIONS = ("clean", "phone", "noisy", "reverb")


# What each does, for the tables and the JSON.
CONDITION_DESCRIPTIONS = {
    "clean": "the track as built",
    "phone": "8 kHz phone audio: resampled to 8 kHz and back, 300 Hz high-pass",
    "noisy": "pink-ish noise at 10 dB SNR to the speech",
    "reverb": "a synthetic room, RT60 0.5 s",
}


PHONE_SAMPLE_RATE = 8000


PHONE_HIGHPASS_HZ = 300.0


NOISY_SNR_DB = 10.0
REVERB_RT60_S = 0.5


def check_conditions(conditions):
    """`conditions` as a tuple of known, distinct names (`CONDITIONS`).

    Raises:
        AutalkError: none, an unknown one or one given twice, in one sentence.

    Example:
    >>> check_conditions(["clean", "reverb"])
    ('clean', 'reverb')
    """
    if isinstance(conditions, str):
        conditions = (conditions,)
    conditions = tuple(str(name) for name in conditions)
    if not conditions:
        raise AutalkError("The benchmark needs at least one condition.")
    for name in conditions:
        if name not in CONDITIONS:
            raise AutalkError(
                f"The condition '{name}' is unknown; the conditions are "
                + ", ".join(CONDITIONS[:-1])
                + f" and {CONDITIONS[-1]}."
            )
    repeated = [name for name in CONDITIONS if conditions.count(name) > 1]
    if repeated:
        raise AutalkError(f"The condition '{repeated[0]}' is given twice.")
    return conditions


def _within_full_scale(waveform):
    """`waveform` scaled down, when needed, so that its peak is at most 1 (no clipping)."""
    peak = float(np.max(np.abs(waveform), initial=0.0))
    return (waveform / peak if peak > 1.0 else waveform).astype(np.float32)


def apply_condition(track, name, seed):
    """The waveform of `track` as if recorded in condition `name`, float32 `(n,)`.

    The speech labels (`track.speech`) stay those of the track: the
    condition changes the sound, not where the speech is. The output has
    the track's length and sample rate and lies within [-1, 1] (scaled
    down, never clipped, where the condition raised its peak past 1).

    | condition | what it does |
    | --- | --- |
    | `clean` | the track's own samples |
    | `phone` | 8 kHz phone audio: resampled to 8 kHz and back, then a 300 Hz high-pass |
    | `noisy` | pink-ish noise at 10 dB SNR to the speech |
    | `reverb` | convolution with a synthetic room of RT60 0.5 s |

    phone: `audio_backends.resample` both ways (nothing above 4 kHz is
    left), then a 4th-order Butterworth high-pass run forwards and
    backwards (no delay). noisy: `audio_augment.pink_noise`, its power over
    the speech samples (`track.speech`) a tenth of the speech's. reverb:
    `audio_augment.room_impulse_response` (a unit direct path and a tail
    of about the same energy, 60 dB down after 0.5 s) through
    `audio_augment.convolve`.

    Args:
        track: a `Track` (`build_track`).
        name: one of `CONDITIONS`.
        seed: int; the noise and the room are drawn from it (and the
            condition), so the same seed gives the same waveform.

    Returns:
        float32 samples at `track.sample_rate`, as many as the track's.

    Raises:
        AutalkError: an unknown condition.

    Example:
    >>> rate = 16000
    >>> track = Track(np.zeros(rate, np.float32), rate, np.zeros(rate, bool), [])
    >>> track.waveform[:4000] = 0.5 * np.sin(np.arange(4000) / 3.0)
    >>> track.speech[:4000] = True
    >>> noisy = apply_condition(track, "noisy", seed=0)
    >>> noise = noisy - track.waveform
    >>> speech_power = np.mean(track.waveform[:4000] ** 2)
    >>> round(float(10 * np.log10(speech_power / np.mean(noise[:4000] ** 2))), 2)
    10.0
    """
    check_conditions([name])
    waveform = np.asarray(track.waveform, np.float32)
    if name == "clean":
        return waveform.copy()
    rate = int(track.sample_rate)
    if name == "phone":
        from scipy import signal

        from keras_autalk.media import audio_backends

        narrow = audio_backends.resample(waveform, rate, PHONE_SAMPLE_RATE)
        back = audio_backends.resample(narrow, PHONE_SAMPLE_RATE, rate)[: len(waveform)]
        high_pass = signal.butter(4, PHONE_HIGHPASS_HZ, "highpass", fs=rate, output="sos")
        return _within_full_scale(signal.sosfiltfilt(high_pass, back.astype(np.float64)))

    import tensorflow as tf

    from keras_autalk.datasets import audio_augment

    # One stateless seed per (track seed, condition): noisy and reverb draw apart.
    tf_seed = tf.constant([int(seed), CONDITIONS.index(name)], tf.int64)
    if name == "noisy":
        white = tf.random.stateless_normal([len(waveform)], tf_seed)
        pink = audio_augment.pink_noise(white).numpy()
        speech = np.asarray(track.speech, bool)
        if not speech.any():  # no speech: the level of the whole track
            speech = np.ones(len(waveform), bool)
        speech_power = float(np.mean(np.square(waveform[speech], dtype=np.float64)))
        noise_power = float(np.mean(np.square(pink[speech], dtype=np.float64)))
        scale = math.sqrt(speech_power / noise_power * 10.0 ** (-NOISY_SNR_DB / 10.0))
        return _within_full_scale(waveform.astype(np.float64) + scale * pink)
    # name == "reverb"
    room = audio_augment.room_impulse_response(tf_seed, REVERB_RT60_S, rate)
    return _within_full_scale(audio_augment.convolve(tf.constant(waveform), room).numpy())
