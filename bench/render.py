"""Time the demo corpus's face renderer, and save a contact sheet to look at.

Run: .venv/bin/python bench/render.py [--frames 250] [--sheet /tmp/contact_sheet.png]
Prints a Markdown table of frames/s of `render_frames` at GRID's 360x288
on one core (BLAS threads pinned to 1; median of 3 runs after a warm-up),
plus the time to build identities. With `--sheet`, writes a PNG whose rows
are an open vowel, a bilabial closure, a rounded vowel and a stretched
mouth, one column per identity (top: full frames; bottom: the mouths
enlarged 3x).
"""

import os

for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_variable] = "1"

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from keras_autalk.config import MOUTH_PARAMETERS  # noqa: E402
from keras_autalk.corpora.demo import (  # noqa: E402
    identities,
    render,
)

# Mouth shapes for the contact sheet's rows.
SHAPES = {
    "open vowel (aa)": {"jaw_drop": 0.8, "lip_part": 0.6},
    "bilabial closure (p, b, m)": {"lip_press": 0.6},
    "rounded vowel (uw)": {"pucker": 0.9, "jaw_drop": 0.25, "lip_part": 0.4},
    "stretch (iy)": {"stretch": 0.9, "lip_part": 0.5, "jaw_drop": 0.15, "corner_up": 0.3},
}


def mouth_vector(values):
    vector = np.zeros(len(MOUTH_PARAMETERS), np.float32)
    for name, value in values.items():
        vector[MOUTH_PARAMETERS.index(name)] = value
    return vector


def speech_like_track(num_frames, rng):
    """A smooth random mouth track: syllables of jaw and lip motion, some rounding."""
    track = np.zeros((num_frames, len(MOUTH_PARAMETERS)), np.float32)
    time_s = np.arange(num_frames) / 25.0
    syllables = 0.5 + 0.5 * np.sin(2 * np.pi * 4.0 * time_s + rng.uniform(0, 6))
    track[:, 0] = 0.7 * syllables * rng.uniform(0.5, 1.0, num_frames)
    track[:, 1] = 0.5 * syllables
    track[:, 2] = 0.5 + 0.5 * np.sin(2 * np.pi * 0.7 * time_s)
    track[:, 3] = 0.3 * (1 + np.cos(2 * np.pi * 0.9 * time_s)) / 2
    return np.clip(track, 0.0, 1.0)


def timed(function, repeats=3):
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def contact_sheet(bank, path):
    rows, zoomed = [], []
    for values in SHAPES.values():
        mouth = mouth_vector(values)[None]
        row, zoom_row = [], []
        for identity in bank:
            frames, landmarks = render.render_frames(
                identity, mouth, np.random.default_rng(0), head_motion=False, blinks=False
            )
            row.append(frames[0])
            centre = landmarks[0, 48:68].mean(axis=0).astype(int)
            crop = frames[0][centre[1] - 24 : centre[1] + 36, centre[0] - 40 : centre[0] + 40]
            zoom_row.append(np.asarray(Image.fromarray(crop).resize((240, 180), Image.NEAREST)))
        rows.append(row)
        zoomed.append(zoom_row)
    full = render.contact_sheet(rows)
    zoom = render.contact_sheet(zoomed)
    width = max(full.shape[1], zoom.shape[1])
    sheet = np.full((full.shape[0] + zoom.shape[0] + 8, width, 3), 255, np.uint8)
    sheet[: full.shape[0], : full.shape[1]] = full
    sheet[full.shape[0] + 8 :, : zoom.shape[1]] = zoom
    Image.fromarray(sheet).save(path)
    print(
        f"\ncontact sheet: {path} (rows: {', '.join(SHAPES)}; "
        f"columns: {', '.join(identity.name for identity in bank)})"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=250)
    parser.add_argument("--identities", type=int, default=4)
    parser.add_argument("--sheet", default=None, help="write a contact sheet PNG here")
    args = parser.parse_args()

    start = time.perf_counter()
    bank = identities.identity_bank(args.identities, seed=0)
    bank_time = time.perf_counter() - start
    rng = np.random.default_rng(0)
    mouth = speech_like_track(args.frames, rng)

    print("| identity | head motion | blinks | frames | frames/s (360x288, 1 core) |")
    print("| --- | --- | --- | ---: | ---: |")
    for identity in bank[:2] + bank[2::3][:1]:
        for head_motion, blinks in ((False, False), (True, True)):
            seconds = timed(
                lambda: render.render_frames(
                    identity,
                    mouth,
                    np.random.default_rng(1),
                    head_motion=head_motion,
                    blinks=blinks,
                )
            )
            print(
                f"| {identity.name} | {head_motion} | {blinks} | {args.frames} | "
                f"{args.frames / seconds:.0f} |"
            )
    print()
    print("| step | seconds |")
    print("| --- | ---: |")
    print(
        f"| identity_bank({args.identities}) incl. dlib on the photos (first call) "
        f"| {bank_time:.2f} |"
    )
    seconds = timed(lambda: identities.identity_bank(args.identities, seed=1))
    print(f"| identity_bank({args.identities}) (photos' landmarks cached) | {seconds:.2f} |")
    seconds = timed(lambda: identities.morph_identities(bank[0], bank[1], 0.5))
    print(f"| morph_identities | {seconds:.3f} |")
    if args.sheet:
        contact_sheet(bank, args.sheet)


if __name__ == "__main__":
    main()
