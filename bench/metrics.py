"""Time the evaluation metrics on 128x128 aligned face crops.

Run: .venv/bin/python bench/metrics.py
Prints a Markdown table: milliseconds per frame, measured with
time.perf_counter over one call on 50 frames (after one warm-up call on
the same frames, so dlib's model files are loaded before timing), median of
3 runs.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from keras_autalk.config import FaceConfig  # noqa: E402
from keras_autalk.evaluation import metrics  # noqa: E402
from keras_autalk.media import face, photos  # noqa: E402

NUM_FRAMES = 50
REPEATS = 3


def aligned_frames(rng):
    """50 aligned crops of the bundled photos, with a little noise (pairs: real, generated)."""
    config = FaceConfig()
    crops = []
    for name in photos.PHOTO_NAMES:
        photo = photos.load_photo(name)
        crops.append(face.align_face(photo, face.find_face(photo).landmarks, config).crop)
    reference = np.stack([crops[i % len(crops)] for i in range(NUM_FRAMES)]) / 255.0
    generated = np.clip(reference + rng.normal(0.0, 0.03, reference.shape), 0.0, 1.0)
    return generated, reference


def per_frame_ms(function):
    function()
    runs = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        function()
        runs.append(time.perf_counter() - start)
    return 1000.0 * statistics.median(runs) / NUM_FRAMES


def main():
    generated, reference = aligned_frames(np.random.default_rng(0))
    steps = [
        ("psnr", lambda: metrics.psnr(generated, reference)),
        ("ssim", lambda: metrics.ssim(generated, reference)),
        ("cpbd", lambda: metrics.cpbd(generated)),
        ("crop_landmarks", lambda: metrics.crop_landmarks(generated)),
        ("face_embeddings", lambda: metrics.face_embeddings(generated)),
    ]
    print(f"| metric | ms per 128x128 frame ({NUM_FRAMES} frames, median of {REPEATS}) |")
    print("| --- | ---: |")
    for name, function in steps:
        print(f"| {name} | {per_frame_ms(function):.2f} |")


if __name__ == "__main__":
    main()
