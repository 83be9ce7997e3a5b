"""Time face detection, landmarks, alignment and paste-back on the real photos.

Run: .venv/bin/python bench/face_align.py
Prints a Markdown table (median of 5 warm runs after one cold run), plus the
wall time of the `autalk align` command as a user runs it.
"""

import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
from PIL import Image

from keras_autalk.config import FaceConfig
from keras_autalk.media import face, paste, photos


def timed(function, repeats=5):
    start = time.perf_counter()
    result = function()
    cold = time.perf_counter() - start
    warm = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        warm.append(time.perf_counter() - start)
    return result, cold, statistics.median(warm)


def main():
    rows = []
    for name in photos.PHOTO_NAMES:
        photo = photos.load_photo(name)
        for detector in ("hog", "cnn"):
            config = FaceConfig(detector=detector)
            found, cold, warm = timed(lambda: face.find_face(photo, config))
            rows.append((name, f"find_face ({detector})", photo.shape, cold, warm))
        config = FaceConfig()
        aligned, cold, warm = timed(lambda: face.align_face(photo, found.landmarks, config))
        rows.append((name, "align_face (128 px)", photo.shape, cold, warm))
        _, cold, warm = timed(lambda: paste.paste_back(photo, aligned.crop, aligned.matrix, config))
        rows.append((name, "paste_back", photo.shape, cold, warm))
    print("| photo | step | size | first call (s) | warm median (s) |")
    print("| --- | --- | --- | ---: | ---: |")
    for name, step, shape, cold, warm in rows:
        print(f"| {name} | {step} | {shape[1]}x{shape[0]} | {cold:.3f} | {warm:.3f} |")

    autalk = os.path.join(os.path.dirname(sys.executable), "autalk")
    with tempfile.TemporaryDirectory() as folder:
        folder = pathlib.Path(folder)
        walls = []
        for name in photos.PHOTO_NAMES:
            source = folder / f"{name}.png"
            Image.fromarray(photos.load_photo(name)).save(source)
            start = time.perf_counter()
            subprocess.run(
                [autalk, "align", str(source), "-o", str(folder / "crop.png")],
                check=True,
                capture_output=True,
            )
            walls.append((name, time.perf_counter() - start))
    print()
    print("| command | wall time (s), start-up included |")
    print("| --- | ---: |")
    for name, wall in walls:
        print(f"| autalk align {name}.png -o crop.png | {wall:.2f} |")


if __name__ == "__main__":
    np.random.seed(0)
    main()
