"""Benchmark: paste-back and encoding per frame on small, medium and large photos.

Resizes the bundled `grace_hopper` photo (the face grows with it) to each
long side asked for, finds and aligns the face, and, side by side in one
run, times per frame:

- paste: `FacePaster.paste_motion` with a small moving flow, the aligned
  crop and an opening mouth, returning a new full frame ("before") or
  rewriting one reused `changed_box` region (`out=`, "after");
- encode: `write_video` of the full frames ("before") or
  `write_region_video` of the regions over the still photo ("after"), at
  the talking-head settings (CRF 12, veryfast) with audio.

"same MP4" says whether both encodes wrote the same bytes. Prints a
Markdown table.

    python bench/paste_encode.py [--frames 100] [--sizes 512 1000 4000]
"""

import argparse
import dataclasses
import hashlib
import os
import sys
import tempfile
import time

import numpy as np
import scipy.ndimage
from PIL import Image

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from keras_autalk.config import FaceConfig  # noqa: E402
from keras_autalk.media import face, paste, photos  # noqa: E402
from keras_autalk.media.video import write_region_video, write_video  # noqa: E402

FPS = 25
SAMPLE_RATE = 16000
CROP_SIZE = 128
CRF, PRESET = 12, "veryfast"  # inference.generate's VIDEO_CRF, VIDEO_PRESET


def resized_photo(photo, long_side):
    """`photo` resized (Lanczos) so that its longer side is `long_side`."""
    height, width = photo.shape[:2]
    scale = long_side / max(height, width)
    size = (round(width * scale), round(height * scale))
    return np.asarray(Image.fromarray(photo).resize(size, Image.LANCZOS))


def motion_inputs(aligned_crop, num_frames, seed=0):
    """Per frame `(crop, flow, occlusion)` as a flow decoder gives them: small, smooth, moving."""
    rng = np.random.default_rng(seed)
    size = aligned_crop.shape[0]
    rows, cols = np.mgrid[:size, :size] / size
    # The mouth, in template coordinates: the lower middle of the crop.
    mouth = np.exp(-((cols - 0.5) ** 2 + (rows - 0.75) ** 2) / (2 * 0.12**2))
    field = scipy.ndimage.zoom(rng.normal(size=(8, 8, 2)), (size / 8, size / 8, 1), order=3)
    crop = aligned_crop.astype(np.float32) / 255.0
    for index in range(num_frames):
        opening = 0.5 + 0.5 * np.sin(2 * np.pi * index / 10)
        flow = (2.0 * opening * mouth[..., None] * field).astype(np.float32)
        occlusion = np.clip(3.0 * opening * mouth - 2.0, 0.0, 1.0).astype(np.float32)
        yield crop, flow, occlusion


def time_pastes(paster, inputs):
    """Seconds per frame of paste_motion into new frames and into one region, and the regions."""
    region = paster.new_region()
    regions, new_frames, reused = [], 0.0, 0.0
    for crop, flow, occlusion in inputs:
        began = time.perf_counter()
        paster.paste_motion(crop, flow, occlusion)
        new_frames += time.perf_counter() - began
        began = time.perf_counter()
        paster.paste_motion(crop, flow, occlusion, out=region)
        reused += time.perf_counter() - began
        regions.append(region.copy())
    return new_frames / len(regions), reused / len(regions), regions


def time_encodes(folder, photo, box, regions, audio):
    """Seconds per frame of write_video and write_region_video, and whether the files match."""
    left, top, right, bottom = box
    frame = photo.copy()

    def full_frames():
        for region in regions:
            frame[top:bottom, left:right] = region
            yield frame

    paths = [os.path.join(folder, name) for name in ("frames.mp4", "regions.mp4")]
    began = time.perf_counter()
    write_video(
        paths[0], full_frames(), FPS, audio=audio, sample_rate=SAMPLE_RATE, crf=CRF, preset=PRESET
    )
    frames_seconds = time.perf_counter() - began
    began = time.perf_counter()
    write_region_video(
        paths[1],
        photo,
        box,
        regions,
        FPS,
        audio=audio,
        sample_rate=SAMPLE_RATE,
        crf=CRF,
        preset=PRESET,
    )
    regions_seconds = time.perf_counter() - began
    digests = [hashlib.sha256(open(path, "rb").read()).hexdigest() for path in paths]
    return (frames_seconds / len(regions), regions_seconds / len(regions), digests[0] == digests[1])


def measure(base_photo, long_side, num_frames, audio, folder):
    """One row of the table for `base_photo` resized to `long_side`."""
    config = dataclasses.replace(FaceConfig(), crop_size=CROP_SIZE)
    photo = resized_photo(base_photo, long_side)
    found = face.find_face(photo, config)
    aligned = face.align_face(photo, found.landmarks, config)
    paster = paste.FacePaster(photo, aligned.matrix, CROP_SIZE, config, landmarks=found.landmarks)
    paste_before, paste_after, regions = time_pastes(
        paster, list(motion_inputs(aligned.crop, num_frames))
    )
    encode_before, encode_after, same = time_encodes(
        folder, photo, paster.changed_box, regions, audio
    )
    left, top, right, bottom = found.box
    changed_left, changed_top, changed_right, changed_bottom = paster.changed_box
    return {
        "photo": f"{photo.shape[1]}x{photo.shape[0]}",
        "face": f"{right - left}x{bottom - top}",
        "changed": f"{changed_right - changed_left}x{changed_bottom - changed_top}",
        "paste": (paste_before, paste_after),
        "encode": (encode_before, encode_after),
        "same": same,
    }


def print_table(rows, num_frames):
    print(
        f"\n{num_frames} frames at {FPS} fps with audio, CRF {CRF} {PRESET}, "
        f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}; ms per frame, "
        "before -> after\n"
    )
    print("| photo | face box | changed box | paste | encode | total | same MP4 |")
    print("|---|---|---|---:|---:|---:|---|")
    for row in rows:
        paste_ms = [1e3 * seconds for seconds in row["paste"]]
        encode_ms = [1e3 * seconds for seconds in row["encode"]]
        total_ms = [first + second for first, second in zip(paste_ms, encode_ms)]
        cells = [
            f"{before:.1f} -> {after:.1f}" for before, after in (paste_ms, encode_ms, total_ms)
        ]
        print(
            f"| {row['photo']} | {row['face']} | {row['changed']} | "
            + " | ".join(cells)
            + f" | {'yes' if row['same'] else 'NO'} |"
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=100, help="frames per clip")
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        default=[512, 1000, 4000],
        help="long sides of the photos, in pixels",
    )
    args = parser.parse_args()
    times = np.arange(int(args.frames / FPS * SAMPLE_RATE)) / SAMPLE_RATE
    audio = (0.3 * np.sin(2 * np.pi * 220 * times)).astype(np.float32)
    base_photo = photos.load_photo("grace_hopper")
    with tempfile.TemporaryDirectory() as folder:
        rows = [
            measure(base_photo, long_side, args.frames, audio, folder) for long_side in args.sizes
        ]
    print_table(rows, args.frames)


if __name__ == "__main__":
    main()
