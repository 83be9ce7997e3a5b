"""Seconds to load 10 s of audio and compute its per-frame features, per backend.

Writes 10 s of a synthetic voice (44.1 kHz stereo) as WAV, FLAC, Ogg Vorbis
and MP3 into a temporary folder, then times `load_audio` (decode, mono,
resample to 16 kHz) and the features (`log_mel_spectrogram` +
`frame_features`, eager) for every backend usable here. Median of
`--repeats` runs after one warm-up run. Not a test.

    python bench/audio_features.py [--repeats 5]
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile
import tensorflow as tf

from keras_autalk.config import AudioConfig
from keras_autalk.features import log_mel, tfio_backend
from keras_autalk.media import audio, audio_backends

DURATION_S = 10.0
SOURCE_RATE = 44100
FORMATS = {".wav": {}, ".flac": {}, ".ogg": {"subtype": "VORBIS"}, ".mp3": {"format": "MP3"}}


def synthetic_voice(duration_s, rate, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(duration_s * rate)) / rate
    phase = 2 * np.pi * np.cumsum(120 + 40 * np.sin(2 * np.pi * 0.7 * t)) / rate
    voice = sum(np.sin(k * phase) / k for k in range(1, 30))
    envelope = (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)) ** 2
    mono = 0.3 * voice * envelope / np.abs(voice).max() + 0.01 * rng.standard_normal(t.size)
    return np.stack([mono, 0.8 * mono], axis=1).astype(np.float32)


def median_seconds(function, repeats):
    function()  # warm-up: imports, tracing, caches
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    config = AudioConfig()
    ok, reason = tfio_backend.tfio_status()
    print(f"tfio: {reason}")

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)])
    def traced_features(waveform):
        spectrogram = log_mel.log_mel_spectrogram(waveform, config)
        num_frames = log_mel.num_video_frames(tf.size(waveform), config)
        return log_mel.frame_features(spectrogram, num_frames, config)

    rows = []
    with tempfile.TemporaryDirectory() as folder:
        samples = synthetic_voice(DURATION_S, SOURCE_RATE)
        for suffix, options in FORMATS.items():
            path = Path(folder) / f"voice{suffix}"
            soundfile.write(str(path), samples, SOURCE_RATE, **options)
            for backend in audio_backends.available_backends():
                decoded_by = audio_backends.decode_with_fallback(path, backend).backend
                waveform = audio.load_audio(path, config, backend)
                load_s = median_seconds(
                    lambda: audio.load_audio(path, config, backend), args.repeats
                )
                features_s = median_seconds(
                    lambda: log_mel.audio_features(waveform, config), args.repeats
                )
                rows.append((suffix[1:], backend, decoded_by, load_s, features_s))
        waveform_tensor = tf.constant(waveform)
        traced_s = median_seconds(lambda: traced_features(waveform_tensor).numpy(), args.repeats)

    print(
        f"\n{DURATION_S:.0f} s of {SOURCE_RATE} Hz stereo -> "
        f"{audio.num_video_frames(int(DURATION_S * config.sample_rate), config)} frames x "
        f"{config.context_steps} steps x {config.num_mel_bins} bins; median of {args.repeats}\n"
    )
    print("| format | backend   | decoded by | load + resample s | features s | total s |")
    print("|--------|-----------|------------|-------------------|------------|---------|")
    for file_format, backend, decoded_by, load_s, features_s in rows:
        print(
            f"| {file_format:<6} | {backend:<9} | {decoded_by:<10} | {load_s:17.4f} | "
            f"{features_s:10.4f} | {load_s + features_s:7.4f} |"
        )
    print(f"\nfeatures in a tf.function (traced once, 10 s waveform): {traced_s:.4f} s")


if __name__ == "__main__":
    main()
