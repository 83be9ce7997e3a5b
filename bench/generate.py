"""Time `autalk generate` on 10 s of speech, start-up included, and where the time goes.

Run: .venv/bin/python bench/generate.py [--model PATH] [--repeats 2]

Without --model, an untrained `small`-preset talker (`model_config("small")`,
the size the bundled model has) is saved with `save_pretrained` under /tmp;
untrained and trained weights cost the same time. The speech is 10.0 s of
espeak-ng English (44.1 kHz, as a user's recording would be), the photo
grace_hopper (512x600). Prints two Markdown tables:

- the wall time of the `autalk generate` command as a user runs it (a new
  process: Python, TensorFlow and dlib start-up, model load, tracing), and of
  the Python start-up + imports alone, with their CPU time (user + sys,
  ffmpeg included): on a busy machine the wall time grows, the CPU time
  much less;
- `keras_autalk.generate(...)` in one process: the first call (cold: dlib
  and the model are loaded, the model is traced) and the next ones (warm),
  split into the stages of `GenerateResult.timings`, and the CPU time
  used (all threads; ffmpeg's encoder runs in its own process, not counted). Generation streams
  (model -> paste-back -> encoder), so "encode" is the writing time not
  spent waiting for frames.
"""

import argparse
import os
import pathlib
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import soundfile
from PIL import Image

SPEECH_SECONDS = 10.0
TEXT = ("The quick brown fox jumps over the lazy dog. A talking head speaks these words, "
        "frame by frame, from a single photograph and the sound of a voice.")


def make_inputs(folder):
    """The photo, 10 s of speech at 44.1 kHz, and (unless given) a small model."""
    from keras_autalk.media import audio_backends, photos
    from keras_autalk.corpora.demo import speech

    photo = folder / "grace_hopper.jpg"
    Image.fromarray(photos.load_photo("grace_hopper")).save(photo, quality=95)
    spoken = speech.synthesize(TEXT, speech.VOICES[1])
    waveform = spoken.waveform[: int(SPEECH_SECONDS * spoken.sample_rate)]
    waveform = np.pad(waveform, (0, int(SPEECH_SECONDS * spoken.sample_rate) - len(waveform)))
    waveform = audio_backends.resample(waveform, spoken.sample_rate, 44100, "soundfile")
    audio = folder / "speech.wav"
    soundfile.write(audio, waveform, 44100)
    return photo, audio


def save_small_model(folder):
    from keras_autalk.presets import pretrained
    from keras_autalk.config import model_config

    model = pretrained.build_inference_model(model_config("small"))
    return pretrained.save_pretrained(model, folder / "small", card={"trained": False})


def wall(command, repeats):
    """Best and median wall time of `command`, and its median CPU time (user + sys)."""
    times, cpu = [], []
    for _ in range(repeats):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return min(times), statistics.median(times), statistics.median(cpu)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a pretrained model folder (default: untrained small)")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each measurement")
    args = parser.parse_args(argv)
    from keras_autalk.native import import_tensorflow

    import_tensorflow()
    import keras_autalk
    from keras_autalk.presets import pretrained

    folder = pathlib.Path(tempfile.mkdtemp(prefix="autalk_bench_generate_"))
    photo, audio = make_inputs(folder)
    model_dir = pathlib.Path(args.model) if args.model else save_small_model(folder)
    sizes = {path.name: path.stat().st_size for path in sorted(model_dir.iterdir())}
    output = folder / "talk.mp4"

    autalk = os.path.join(os.path.dirname(sys.executable), "autalk")
    command = [autalk, "generate", "--image", str(photo), "--audio", str(audio),
               "-o", str(output), "--model", str(model_dir)]
    cli_best, cli_median, cli_cpu = wall(command, args.repeats)
    imports = [sys.executable, "-c", "from keras_autalk.native import import_tensorflow; "
               "import_tensorflow(); import keras_autalk.inference.generate, keras_autalk.cli"]
    import_best, import_median, import_cpu = wall(imports, args.repeats)

    pretrained.clear_cache()
    runs = []
    for _ in range(1 + args.repeats):
        cpu = time.process_time()
        result = keras_autalk.generate(photo, audio, output, model=model_dir, progress=False)
        runs.append(dict(result.timings, **{"CPU time (all threads)": time.process_time() - cpu}))
    stages = list(runs[0])

    files = ", ".join(f"{name} {size / 2**20:.2f} MiB ({size} bytes)" for name, size in sizes.items())
    print(f"model: {model_dir} ({files})")
    print(f"input: {SPEECH_SECONDS:.0f} s of speech -> {result.num_frames} frames, photo "
          f"{Image.open(photo).size[0]}x{Image.open(photo).size[1]}; load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print()
    print("| command (new process) | wall, best (s) | wall, median (s) | CPU, median (s) |")
    print("| --- | ---: | ---: | ---: |")
    print(f"| `autalk generate --image ... --audio ... -o talk.mp4` | {cli_best:.2f} | "
          f"{cli_median:.2f} | {cli_cpu:.2f} |")
    print(f"| python start-up + import TensorFlow and keras_autalk | {import_best:.2f} | "
          f"{import_median:.2f} | {import_cpu:.2f} |")
    print()
    print("| stage | generate() first call (s) | generate() warm, median (s) |")
    print("| --- | ---: | ---: |")
    for stage in stages:
        warm = statistics.median(run[stage] for run in runs[1:])
        print(f"| {stage} | {runs[0][stage]:.2f} | {warm:.2f} |")


if __name__ == "__main__":
    main()
