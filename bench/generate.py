"""Time `autalk generate`: a fresh process and a warm `Talker`, LiteRT and Keras, per stage.

Run: .venv/bin/python bench/generate.py [--repeats 3] [--long-seconds 300] [--quick]

Inputs (made under /tmp, none from the training data): espeak-ng English
speech at 44.1 kHz (10 s, and a long clip of `--long-seconds` built from
different sentences), and the grace_hopper photo at three sizes: 512x600 as
shipped, 1024x1200 and 3413x4000 (resized, so the face grows with the photo).
The model is the bundled `demo` (LiteRT where it can, or `--runtime keras`).

Prints Markdown tables:

1. `autalk --help`, `autalk doctor` and a bad-input error, new processes;
2. `autalk generate` as a new process (start-up included): wall time
   (median of `--repeats`), CPU time (user + sys, ffmpeg included) and peak
   memory (maximum resident set size, from `/usr/bin/time -v`), per runtime,
   clip length and photo size;
3. a warm session (`Talker` made once; the median of the clips after the
   first): seconds per stage (`GenerateResult.timings`; the model runs in
   a worker thread beside the paste-back and the encoder, so the stages add
   up to more than the total) per runtime and photo size.
"""

import argparse
import os
import pathlib
import re
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import soundfile
from PIL import Image

SENTENCES = (
    "The quick brown fox jumps over the lazy dog.",
    "A talking head speaks these words, frame by frame, from a single photograph.",
    "Please call Stella and ask her to bring these things with her from the store.",
    "She sells sea shells by the sea shore, and the shells she sells are surely sea shells.",
    "We will meet again on Thursday morning at half past nine, near the old station.",
    "Numbers like seventeen, forty two and one hundred are read aloud one after another.",
)
PHOTO_SIZES = ((512, 600), (1024, 1200), (3413, 4000))
TIME_V = "/usr/bin/time"


def speech(seconds, folder, name):
    """`seconds` of espeak-ng speech at 44.1 kHz, written as a WAV."""
    from keras_autalk.corpora.demo import speech as tts
    from keras_autalk.media import audio_backends

    pieces, total, index = [], 0, 0
    while total < seconds * 22050:
        spoken = tts.synthesize(
            SENTENCES[index % len(SENTENCES)], tts.VOICES[index % len(tts.VOICES)]
        )
        waveform = audio_backends.resample(spoken.waveform, spoken.sample_rate, 22050, "soundfile")
        pieces += [waveform, np.zeros(int(0.3 * 22050), np.float32)]
        total += len(waveform) + int(0.3 * 22050)
        index += 1
    waveform = np.concatenate(pieces)[: int(seconds * 22050)]
    path = folder / f"{name}.wav"
    soundfile.write(path, audio_backends.resample(waveform, 22050, 44100, "soundfile"), 44100)
    return path


def photos(folder):
    """The photo at each of `PHOTO_SIZES`, as JPEG files."""
    from keras_autalk.media import photos as photo_lib

    base = Image.fromarray(photo_lib.load_photo("grace_hopper"))
    paths = {}
    for width, height in PHOTO_SIZES:
        path = folder / f"photo_{width}x{height}.jpg"
        base.resize((width, height), Image.LANCZOS).save(path, quality=95)
        paths[f"{width}x{height}"] = path
    return paths


def measured(command):
    """Wall (s), CPU (s) and peak memory (MiB) of a command run under `/usr/bin/time -v`."""
    began = time.perf_counter()
    done = subprocess.run([TIME_V, "-v"] + command, capture_output=True, text=True)
    wall = time.perf_counter() - began
    if done.returncode not in (0, 1):
        raise RuntimeError(f"{command} failed:\n{done.stderr[-2000:]}")
    fields = dict(re.findall(r"^\s*(.+?): (.+)$", done.stderr, re.M))
    cpu = float(fields["User time (seconds)"]) + float(fields["System time (seconds)"])
    return wall, cpu, int(fields["Maximum resident set size (kbytes)"]) / 1024


def median_run(command, repeats):
    runs = [measured(command) for _ in range(repeats)]
    return tuple(statistics.median(run[index] for run in runs) for index in range(3))


def fresh_process_rows(clips, photo_paths, folder, repeats, runtimes):
    autalk = os.path.join(os.path.dirname(sys.executable), "autalk")
    rows = []
    for label, command in (
        ("`autalk --help`", [autalk, "--help"]),
        ("`autalk doctor`", [autalk, "doctor"]),
        (
            "bad input (missing photo)",
            [
                autalk,
                "generate",
                "--image",
                "missing.jpg",
                "--audio",
                str(clips["10 s"]),
                "-o",
                "x.mp4",
            ],
        ),
    ):
        rows.append((label, "", "", "", *median_run(command, repeats)))
    cases = [(runtime, "10 s", "512x600") for runtime in runtimes]
    cases += [("litert", "10 s", size) for size in photo_paths if size != "512x600"]
    cases += [(runtime, "long", "512x600") for runtime in runtimes]
    for runtime, clip, size in cases:
        command = [
            autalk,
            "generate",
            "--image",
            str(photo_paths[size]),
            "--audio",
            str(clips[clip]),
            "-o",
            str(folder / "talk.mp4"),
            "--runtime",
            runtime,
        ]
        runs = 1 if clip == "long" else repeats
        rows.append(("`autalk generate`", runtime, clip, size, *median_run(command, runs)))
        print(f"  {rows[-1]}", file=sys.stderr)
    return rows


def warm_rows(clips, photo_paths, folder, repeats, runtimes):
    from keras_autalk.inference.session import Talker

    rows = []
    cases = [(runtime, "512x600") for runtime in runtimes]
    cases += [("litert", size) for size in photo_paths if size != "512x600"]
    for runtime, size in cases:
        talker = Talker(photo_paths[size], runtime=runtime)
        results = [
            talker.speak(clips["10 s"], folder / "warm.mp4", progress=False)
            for _ in range(1 + repeats)
        ]
        stages = {
            stage: statistics.median(result.timings[stage] for result in results[1:])
            for stage in results[1].timings
        }
        rows.append((runtime, size, results[0].timings["total"], stages))
        print(f"  warm {runtime} {size}: {stages['total']:.2f} s", file=sys.stderr)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs of each measurement")
    parser.add_argument(
        "--long-seconds", type=float, default=300.0, help="length of the long clip (s)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="LiteRT only, one run each (to try the script)"
    )
    args = parser.parse_args(argv)
    runtimes = ("litert",) if args.quick else ("litert", "keras")
    repeats = 1 if args.quick else args.repeats
    folder = pathlib.Path(tempfile.mkdtemp(prefix="autalk_bench_generate_"))
    clips = {
        "10 s": speech(10.0, folder, "speech_10s"),
        "long": speech(args.long_seconds, folder, "speech_long"),
    }
    photo_paths = photos(folder)
    load_before = os.getloadavg()[0]
    fresh = fresh_process_rows(clips, photo_paths, folder, repeats, runtimes)
    warm = warm_rows(clips, photo_paths, folder, repeats, runtimes)
    long_label = f"{args.long_seconds:.0f} s"

    print(
        f"speech 10 s and {long_label} (espeak-ng, 44.1 kHz); photo grace_hopper at "
        f"{', '.join(photo_paths)}; model demo; {os.cpu_count()} cores; load average "
        f"{load_before:.2f} before, {os.getloadavg()[0]:.2f} after\n"
    )
    print(
        "| command (new process) | runtime | speech | photo | wall (s) | × real time "
        "| CPU (s) | peak memory (MiB) |"
    )
    print("| --- | --- | --- | --- | ---: | ---: | ---: | ---: |")
    for label, runtime, clip, size, wall, cpu, memory in fresh:
        seconds = {"10 s": 10.0, "long": args.long_seconds}.get(clip)
        factor = f"{wall / seconds:.2f}" if seconds else ""
        print(
            f"| {label} | {runtime} | {long_label if clip == 'long' else clip} | {size} "
            f"| {wall:.2f} | {factor} | {cpu:.2f} | {memory:.0f} |"
        )
    print()
    stages = list(warm[0][3])
    print("| warm `Talker.speak`, 10 s | photo | first clip (s) | " + " | ".join(stages) + " |")
    print("| --- | --- | ---: | " + " | ".join("---:" for _ in stages) + " |")
    for runtime, size, first, timings in warm:
        print(
            f"| {runtime} | {size} | {first:.2f} | "
            + " | ".join(f"{timings[stage]:.2f}" for stage in stages)
            + " |"
        )


if __name__ == "__main__":
    main()
