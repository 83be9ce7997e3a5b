"""Speech augmentation for training: what phones, laptops and rooms do to a voice.

The demo corpus speaks with espeak-ng in a clean digital room; users send
recordings with noise, reverberation, a microphone's colour, phone band
limits, another gain and another speaking rate. `augment_record` applies a
random draw of these to one prepared utterance inside the `tf.data`
pipeline (TensorFlow ops only, stateless and seeded) and recomputes its
audio features from the changed waveform:

| change | how | default |
| --- | --- | --- |
| speed (tempo and pitch together) | linear-interpolation resampling by a factor; the video targets follow by nearest frame | 0.9..1.1, half the utterances |
| room reverb | convolution with exponentially decaying noise, RT60 drawn | 0.15..0.6 s, a third |
| additive noise | white or pink noise at a random SNR | 5..35 dB, half |
| equaliser / spectral tilt | a smooth random gain curve over frequency on the STFT magnitudes | ±6 dB/octave tilt and ±6 dB bumps, half |
| phone band | magnitudes above 3.4..4 kHz and below 300 Hz cut (8 kHz phone audio) | a fifth |
| clipping | gain into the rails, `clip(-1, 1)` | a tenth |
| gain | a random level | -25..+6 dB, always |

Each utterance gets one draw per epoch; every window cut from it shares
it. The AU targets, frames and landmarks are not changed except by the
speed change, which keeps them in sync with the resampled audio.

Example:
```python
dataset = pipeline.make_dataset(files, audio_augmentation=AudioAugmentation(), seed=1)
```
"""

import dataclasses
import math
from typing import Tuple

import tensorflow as tf

from keras_autalk.config import AudioConfig
from keras_autalk.features import log_mel


@dataclasses.dataclass(frozen=True)
class AudioAugmentation:
    """Ranges and probabilities of the speech augmentation (see the module docstring).

    Args:
        speed_range: resampling factors (>1 is faster speech).
        speed_probability: share of utterances whose speed changes.
        reverb_rt60_range: reverberation times in seconds.
        reverb_probability: share of utterances with reverb.
        noise_snr_db_range: signal-to-noise ratios of the added noise.
        noise_probability: share of utterances with noise.
        tilt_db_per_octave: largest spectral tilt (around 1 kHz).
        eq_bump_db: largest gain of each of the equaliser's 3 bumps.
        eq_probability: share of utterances through the equaliser.
        phone_probability: share of utterances limited to the phone band.
        clip_probability: share of utterances driven into clipping.
        gain_db_range: level change of every utterance.
    """

    speed_range: Tuple[float, float] = (0.9, 1.1)
    speed_probability: float = 0.5
    reverb_rt60_range: Tuple[float, float] = (0.15, 0.6)
    reverb_probability: float = 0.33
    noise_snr_db_range: Tuple[float, float] = (5.0, 35.0)
    noise_probability: float = 0.5
    tilt_db_per_octave: float = 6.0
    eq_bump_db: float = 6.0
    eq_probability: float = 0.5
    phone_probability: float = 0.2
    clip_probability: float = 0.1
    gain_db_range: Tuple[float, float] = (-25.0, 6.0)


def _uniform(seed, low, high):
    return tf.random.stateless_uniform([], seed, low, high)


def _happens(seed, probability):
    return tf.random.stateless_uniform([], seed) < probability


def change_speed(waveform, factor):
    """Resample `waveform` by `factor` with linear interpolation (tempo and pitch).

    A factor of 1.1 gives a waveform 1/1.1 as long, played 10 % faster and
    higher. Returns float32 `(floor(n / factor),)`.
    """
    waveform = tf.convert_to_tensor(waveform, tf.float32)
    num_samples = tf.shape(waveform)[0]
    length = tf.cast(tf.floor(tf.cast(num_samples, tf.float32) / factor), tf.int32)
    position = tf.cast(tf.range(length), tf.float32) * factor
    left = tf.minimum(tf.cast(tf.floor(position), tf.int32), num_samples - 1)
    right = tf.minimum(left + 1, num_samples - 1)
    fraction = position - tf.cast(left, tf.float32)
    return tf.gather(waveform, left) * (1.0 - fraction) + tf.gather(waveform, right) * fraction


def speed_frame_index(num_frames, factor):
    """Source frame of each output frame after `change_speed(factor)`.

    Output frame `j` covers source time `[j, j + 1) * factor` frames; it
    takes the source frame nearest that interval's centre. Returns int32
    `(floor(num_frames / factor),)`.
    """
    length = tf.cast(tf.floor(tf.cast(num_frames, tf.float32) / factor), tf.int32)
    centre = (tf.cast(tf.range(length), tf.float32) + 0.5) * factor
    return tf.minimum(tf.cast(tf.floor(centre), tf.int32), num_frames - 1)


def room_impulse_response(seed, rt60_seconds, sample_rate):
    """Exponentially decaying noise with a unit direct path: a synthetic room.

    The amplitude falls by 60 dB after `rt60_seconds`; the tail is as long
    as the RT60 and its energy about that of the direct sound.
    """
    length = int(0.6 * sample_rate)  # the longest RT60 of the defaults
    time = tf.range(length, dtype=tf.float32) / float(sample_rate)
    decay = tf.exp(-math.log(1000.0) * time / rt60_seconds)
    tail = tf.random.stateless_normal([length], seed) * decay
    tail = tail / tf.sqrt(tf.reduce_sum(tf.square(tail)) + 1e-12)
    direct = tf.one_hot(0, length)
    return direct + tf.concat([[0.0], tail[1:]], axis=0)


def convolve(waveform, impulse_response):
    """`waveform` convolved with `impulse_response`, cut to the waveform's length (FFT)."""
    num_samples = tf.shape(waveform)[0]
    total = num_samples + tf.shape(impulse_response)[0] - 1
    fft_length = tf.cast(
        2 ** tf.math.ceil(tf.math.log(tf.cast(total, tf.float32)) / math.log(2.0)), tf.int32
    )
    spectrum = tf.signal.rfft(waveform, [fft_length]) * tf.signal.rfft(
        impulse_response, [fft_length]
    )
    return tf.signal.irfft(spectrum, [fft_length])[:num_samples]


def pink_noise(white):
    """Pink-ish noise: `white` noise through a one-pole low-pass (pole 0.9, 64 taps)."""
    return convolve(white, 0.9 ** tf.range(64, dtype=tf.float32))


def add_noise(waveform, seed, snr_db):
    """`waveform` plus white or pink noise at `snr_db` below its speech power."""
    seeds = tf.random.experimental.stateless_split(seed, 2)
    white = tf.random.stateless_normal(tf.shape(waveform), seeds[0])
    noise = tf.where(_happens(seeds[1], 0.5), pink_noise(white), white)  # pink in half
    # The speech power of the loudest 30 % of 20 ms blocks, so pauses do not
    # make the noise quieter.
    frames = tf.signal.frame(waveform, 320, 320, pad_end=True)
    power = tf.sort(tf.reduce_mean(tf.square(frames), axis=-1), direction="DESCENDING")
    count = tf.maximum(1, tf.shape(power)[0] * 3 // 10)
    speech_power = tf.reduce_mean(power[:count]) + 1e-10
    noise_power = tf.reduce_mean(tf.square(noise)) + 1e-10
    scale = tf.sqrt(speech_power / noise_power * 10.0 ** (-snr_db / 10.0))
    return waveform + scale * noise


def equalizer_gain(seed, settings, config=AudioConfig()):
    """A random smooth gain curve `(fft_length // 2 + 1,)` over frequency (linear)."""
    seeds = tf.random.experimental.stateless_split(seed, 4)
    frequency = tf.linspace(0.0, config.sample_rate / 2.0, config.fft_length // 2 + 1)
    octaves = tf.math.log(tf.maximum(frequency, 50.0) / 1000.0) / math.log(2.0)
    tilt = _uniform(seeds[0], -settings.tilt_db_per_octave, settings.tilt_db_per_octave)
    centres = tf.random.stateless_uniform([3], seeds[1], math.log2(0.2), math.log2(6.0))
    gains = tf.random.stateless_uniform([3], seeds[2], -settings.eq_bump_db, settings.eq_bump_db)
    # Bumps one octave wide (Gaussian in log frequency).
    bumps = tf.reduce_sum(
        gains[:, None] * tf.exp(-0.5 * tf.square((octaves[None, :] - centres[:, None]) / 0.5)),
        axis=0,
    )
    return 10.0 ** ((tilt * octaves + bumps) / 20.0)


def phone_band_gain(seed, config=AudioConfig()):
    """Gains `(fft_length // 2 + 1,)` that keep 300 Hz..3.4-4 kHz (phone audio)."""
    frequency = tf.linspace(0.0, config.sample_rate / 2.0, config.fft_length // 2 + 1)
    cutoff = _uniform(seed, 3400.0, 4000.0)
    inside = (frequency >= 300.0) & (frequency <= cutoff)
    return tf.where(inside, 1.0, 1e-3)


def augment_waveform(waveform, seed, settings=AudioAugmentation(), config=AudioConfig()):
    """One random draw of the augmentation for one utterance.

    Args:
        waveform: float32 `(n,)` at `config.sample_rate`.
        seed: int `(2,)` stateless seed.
        settings: `AudioAugmentation`.
        config: `AudioConfig`.

    Returns:
        `(waveform, speed, magnitude_gain)`: the changed waveform (shorter or
        longer by the speed factor), the speed factor (1.0 when unchanged),
        and the `(fft_length // 2 + 1,)` gains for `log_mel_spectrogram`.
    """
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 14)
    waveform = tf.convert_to_tensor(waveform, tf.float32)
    speed = tf.where(
        _happens(seeds[0], settings.speed_probability),
        _uniform(seeds[1], *settings.speed_range),
        1.0,
    )
    waveform = change_speed(waveform, speed)
    # tf.cond: the convolutions run only for the utterances drawn for them.
    if settings.reverb_probability > 0:
        rt60 = _uniform(seeds[3], *settings.reverb_rt60_range)
        waveform = tf.cond(
            _happens(seeds[2], settings.reverb_probability),
            lambda: convolve(waveform, room_impulse_response(seeds[4], rt60, config.sample_rate)),
            lambda: waveform,
        )
    if settings.noise_probability > 0:
        snr_db = _uniform(seeds[7], *settings.noise_snr_db_range)
        waveform = tf.cond(
            _happens(seeds[5], settings.noise_probability),
            lambda: add_noise(waveform, seeds[6], snr_db),
            lambda: waveform,
        )
    bins = config.fft_length // 2 + 1
    gain = tf.ones([bins])
    gain = tf.where(
        _happens(seeds[8], settings.eq_probability),
        gain * equalizer_gain(seeds[9], settings, config),
        gain,
    )
    gain = tf.where(
        _happens(seeds[10], settings.phone_probability),
        gain * phone_band_gain(seeds[11], config),
        gain,
    )
    peak = tf.reduce_max(tf.abs(waveform)) + 1e-6
    level_db = _uniform(seeds[12], *settings.gain_db_range)
    # Clipping: drive the peak 3..12 dB past full scale.
    clipped = _happens(seeds[13], settings.clip_probability)
    level = tf.where(
        clipped, 10.0 ** (_uniform(seeds[12], 3.0, 12.0) / 20.0) / peak, 10.0 ** (level_db / 20.0)
    )
    waveform = tf.clip_by_value(waveform * level, -1.0, 1.0)
    return waveform, speed, gain


def augment_record(
    record, seed, settings=AudioAugmentation(), normalization="none", config=AudioConfig()
):
    """A parsed utterance with augmented audio and features recomputed from it.

    The speed change resamples the per-frame targets (`frames`,
    `au_intensity`, `au_mask`, `face_mask`, `landmarks`) by nearest frame
    and updates `num_frames`; `audio_features` are recomputed (and
    normalised as `normalization` says) from the changed waveform.
    """
    waveform, speed, gain = augment_waveform(record["waveform"], seed, settings, config)
    frame_index = speed_frame_index(record["num_frames"], speed)
    record = dict(record)
    for key in ("frames", "au_intensity", "au_mask", "face_mask", "landmarks"):
        record[key] = tf.gather(record[key], frame_index)
    num_frames = tf.shape(frame_index)[0]
    record["num_frames"] = num_frames
    spectrogram = log_mel.log_mel_spectrogram(waveform, config, magnitude_gain=gain)
    features = log_mel.frame_features(spectrogram, num_frames, config)
    record["audio_features"] = log_mel.normalize_features(features, normalization, config)
    record["waveform"] = waveform
    return record
