"""The bundled generator on LiteRT: frames per second by window length, batch and threads.

Run: .venv/bin/python bench/litert_windows.py [--repeats 5] [--contention]

Converts the bundled `demo` generator with a free batch size and clip length
(`export.tflite.litert_generator_bytes(..., batch=None)`, float16 weights,
as `generate` runs it, which uses batch 1), then times one call per
(window, batch, threads) case on seeded inputs: the median of `--repeats`
after one warm-up call, in frames per second (frames = batch x window).
With `--contention`, the same cases run again beside two busy processes
(one per core of a 2-core machine), the load the 44 frames/s of an older
docs/benchmarks.md table was measured under.
"""

import argparse
import multiprocessing
import os
import pathlib
import statistics
import sys
import tempfile
import time

import numpy as np

WINDOWS = (16, 32, 64, 128, 256)
BATCHES = (1, 2, 4)
THREADS = (1, 2)


def spin():
    while True:
        pass


def convert(folder):
    from keras_autalk.export import tflite
    from keras_autalk.presets import pretrained

    path = folder / "generator_any_batch.tflite"
    path.write_bytes(tflite.litert_generator_bytes(pretrained.load_pretrained("demo"), batch=None))
    return path


def frames_per_second(path, window, batch, threads, repeats):
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_path=str(path), num_threads=threads).get_signature_runner(
        "generator"
    )
    rng = np.random.default_rng(0)
    feed = {
        "identity_image": rng.uniform(size=(batch, 128, 128, 3)).astype(np.float32),
        "audio_features": rng.normal(-4.0, 2.0, (batch, window, 20, 80)).astype(np.float32),
        "articulation": np.ones([batch], np.float32),
    }
    runner(**feed)
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        runner(**feed)
        times.append(time.perf_counter() - began)
    return batch * window / statistics.median(times)


def table(path, repeats, label):
    print(f"\n{label}; load average {os.getloadavg()[0]:.2f}\n")
    print(
        "| window (frames) | batch | "
        + " | ".join(f"{t} thread(s), frames/s" for t in THREADS)
        + " |"
    )
    print("| ---: | ---: | " + " | ".join("---:" for _ in THREADS) + " |")
    for window in WINDOWS:
        for batch in BATCHES:
            if batch * window > 512:
                continue
            rates = [
                frames_per_second(path, window, batch, threads, repeats) for threads in THREADS
            ]
            print(
                f"| {window} | {batch} | " + " | ".join(f"{rate:.0f}" for rate in rates) + " |",
                flush=True,
            )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--contention", action="store_true", help="also measure beside two busy processes"
    )
    args = parser.parse_args(argv)
    folder = pathlib.Path(tempfile.mkdtemp(prefix="autalk_bench_litert_"))
    path = convert(folder)
    print(
        f"bundled demo generator, float16 weights, {path.stat().st_size / 2**20:.2f} MiB, "
        f"ai-edge-litert with XNNPACK, {os.cpu_count()} cores",
        file=sys.stderr,
    )
    table(path, args.repeats, "idle")
    if args.contention:
        hogs = [multiprocessing.Process(target=spin, daemon=True) for _ in range(2)]
        for hog in hogs:
            hog.start()
        try:
            table(path, args.repeats, "beside two busy processes")
        finally:
            for hog in hogs:
                hog.terminate()


if __name__ == "__main__":
    main()
