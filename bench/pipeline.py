"""Benchmark: examples/s and frames/s of the tf.data input pipeline alone.

Reads a prepared folder (`autalk prepare ... --out DIR`), or writes a small
one itself: GRID-like utterances of 75 frames (3 s at 25 fps) whose crops
are real aligned faces (astronaut, grace_hopper) moving slightly, so the
JPEGs have realistic sizes. Then iterates `make_dataset` (batch 8, T = 16 by
default) and prints a Markdown table.

    python bench/pipeline.py [--prepared DIR --split train] [--batches 200]
"""

import argparse
import dataclasses
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from keras_autalk.config import AutalkConfig, DataConfig  # noqa: E402
from keras_autalk.datasets import pipeline, tfrecords  # noqa: E402
from keras_autalk.datasets.audio_augment import AudioAugmentation  # noqa: E402
from keras_autalk.media import face, photos  # noqa: E402

FRAMES_PER_UTTERANCE = 75


def synthetic_corpus(folder, num_utterances, num_shards, config):
    """Write `num_utterances` GRID-sized records of real face crops."""
    rng = np.random.default_rng(0)
    faces = []
    for name in photos.PHOTO_NAMES:
        photo = photos.load_photo(name)
        faces.append((photo, face.find_face(photo).landmarks))
    records = []
    for index in range(num_utterances):
        photo, landmarks = faces[index % len(faces)]
        crops = []
        for frame in range(FRAMES_PER_UTTERANCE):
            jitter = landmarks + rng.normal(0, 0.5, 2) + [np.sin(frame / 9), np.cos(frame / 7)]
            crops.append(face.align_face(photo, jitter, config.face).crop)
        num_frames = FRAMES_PER_UTTERANCE
        units = len(config.action_units)
        records.append(
            tfrecords.encode_example(
                {
                    "corpus": "demo",
                    "speaker": f"s{index % num_shards}",
                    "utterance_id": f"u{index}",
                    "frames": np.stack(crops),
                    "audio_features": rng.normal(
                        size=(num_frames, config.audio.context_steps, config.audio.num_mel_bins)
                    ).astype(np.float32),
                    "waveform": rng.normal(0, 0.1, num_frames * 640).astype(np.float32),
                    "au_intensity": rng.uniform(0, 5, (num_frames, units)).astype(np.float32),
                    "au_mask": np.ones(num_frames, np.float32),
                    "face_mask": np.ones(num_frames, np.float32),
                    "landmarks": rng.uniform(0, 128, (num_frames, 68, 2)).astype(np.float32),
                    "action_units": config.action_units,
                },
                config.data.jpeg_quality,
            )
        )
    files = []
    for shard in range(num_shards):
        path = os.path.join(folder, f"s{shard}-00000.tfrecord")
        tfrecords.write_shard(path, records[shard::num_shards])
        files.append(path)
    return files


def measure(dataset, batches, warmup):
    """Examples per second over `batches` batches after `warmup` ones."""
    iterator = iter(dataset.repeat())
    for _ in range(warmup):
        next(iterator)
    examples = 0
    start = time.perf_counter()
    for _ in range(batches):
        _, targets = next(iterator)
        examples += int(targets["frames"].shape[0])
    return examples / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prepared", help="a prepared folder (default: write a small one)")
    parser.add_argument("--split", default="train")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--window", type=int, default=16, help="frames per example (T)")
    parser.add_argument("--batches", type=int, default=300, help="batches timed per case")
    parser.add_argument("--warmup", type=int, default=40)
    parser.add_argument(
        "--utterances", type=int, default=48, help="utterances of the synthetic corpus"
    )
    args = parser.parse_args()
    config = dataclasses.replace(AutalkConfig(), data=DataConfig(window_frames=args.window))

    with tempfile.TemporaryDirectory() as folder:
        if args.prepared:
            files = pipeline.list_shards(args.prepared, args.split)
            source = f"{args.prepared} ({args.split}, {len(files)} shards)"
        else:
            start = time.perf_counter()
            files = synthetic_corpus(folder, args.utterances, 4, config)
            size_mb = sum(os.path.getsize(path) for path in files) / 1e6
            source = (
                f"synthetic: {args.utterances} utterances x {FRAMES_PER_UTTERANCE} frames "
                f"of real face crops, 4 shards, {size_mb:.0f} MB, written in "
                f"{time.perf_counter() - start:.1f} s"
            )
        cases = [
            ("training (random windows, shuffled)", dict(training=True, seed=0)),
            ("training + colour augmentation", dict(training=True, seed=0, augment=True)),
            (
                "training + speech augmentation and per-utterance normalisation",
                dict(
                    training=True,
                    seed=0,
                    audio_augmentation=AudioAugmentation(),
                    audio_normalization="utterance",
                ),
            ),
            ("training, no seed (non-deterministic order)", dict(training=True)),
            ("evaluation (sliding windows)", dict(training=False)),
        ]
        rows = []
        for name, options in cases:
            dataset = pipeline.make_dataset(files, config, batch_size=args.batch_size, **options)
            rate = measure(dataset, args.batches, args.warmup)
            rows.append((name, rate, rate * args.window, rate / args.batch_size))

    print(
        f"\n{source}; batch {args.batch_size}, T = {args.window}, crop "
        f"{config.face.crop_size}, {os.cpu_count()} CPUs, {args.batches} batches per case\n"
    )
    print("| pipeline | examples/s | frames/s | batches/s |")
    print("|---|---:|---:|---:|")
    for name, examples, frames, batches in rows:
        print(f"| {name} | {examples:.0f} | {frames:.0f} | {batches:.1f} |")


if __name__ == "__main__":
    main()
