"""Benchmark: frames per second of writing and reading MP4 clips.

Writes a synthetic clip (moving square on a gradient, 25 fps, with a tone as
audio) with `write_video`, then reads it back with `read_video` and
`iter_frames`; prints a Markdown table.

    python bench/video_io.py [--frames 250] [--repeats 3]
"""

import argparse
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from keras_autalk.media.video import iter_frames, read_video, write_video  # noqa: E402

FPS = 25
SAMPLE_RATE = 16000


def synthetic_frames(num_frames, size):
    rows, cols = np.mgrid[:size, :size]
    background = np.stack(
        [60 + rows * 100 // size, 80 + cols * 120 // size, np.full_like(rows, 140)],
        axis=-1,
    ).astype(np.uint8)
    frames = np.repeat(background[None], num_frames, axis=0)
    side = size // 5
    for index in range(num_frames):
        top = (index * 3) % (size - side)
        left = (index * 2) % (size - side)
        frames[index, top : top + side, left : left + side] = (230, 220, 200)
    return frames


def best_time(function, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=250, help="frames per clip")
    parser.add_argument("--repeats", type=int, default=3, help="best of N runs")
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 512])
    args = parser.parse_args()
    seconds = args.frames / FPS
    times = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    audio = (0.3 * np.sin(2 * np.pi * 440 * times)).astype(np.float32)

    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for size in args.sizes:
            frames = synthetic_frames(args.frames, size)
            path = os.path.join(folder, f"clip{size}.mp4")
            cases = [
                (
                    "write (crf 18, medium, + AAC)",
                    lambda: write_video(path, frames, FPS, audio=audio),
                ),
                (
                    "write (crf 18, veryfast, + AAC)",
                    lambda: write_video(path, frames, FPS, audio=audio, preset="veryfast"),
                ),
                ("read_video (frames + audio)", lambda: read_video(path)),
                ("iter_frames (streaming)", lambda: sum(1 for _ in iter_frames(path))),
            ]
            for name, function in cases:
                elapsed = best_time(function, args.repeats)
                rows.append((f"{size}x{size}", name, args.frames / elapsed, elapsed))
            kilobytes = os.path.getsize(path) / 1e3
            rows.append((f"{size}x{size}", "file size (kB)", kilobytes, None))

    print(f"\n{args.frames} frames at {FPS} fps, {os.cpu_count()} CPUs, best of {args.repeats}\n")
    print("| clip | operation | frames/s | seconds |")
    print("|---|---|---:|---:|")
    for clip, name, value, elapsed in rows:
        if elapsed is None:
            print(f"| {clip} | {name} | {value:.0f} | |")
        else:
            print(f"| {clip} | {name} | {value:.0f} | {elapsed:.2f} |")


if __name__ == "__main__":
    main()
