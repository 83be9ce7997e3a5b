"""Contact sheet and a short clip of a rendered demo corpus, for looking at.

For each speaker (each has its own identity) it picks, from the ground-truth
mouth track, the frame of widest jaw opening (open vowel), of strongest lip
press (a bilabial closure, p/b/m) and of strongest rounding (rounded vowel),
and tiles the mouth regions.

Run: python tools/demo_contact_sheet.py --root demo_corpus --out docs/images
"""

import argparse
import pathlib

import numpy as np
from PIL import Image, ImageDraw

from keras_autalk.config import MOUTH_PARAMETERS
from keras_autalk.corpora import readers as corpora
from keras_autalk.media import face, video

COLUMNS = (
    ("open vowel", "jaw_drop"),
    ("bilabial closure", "lip_press"),
    ("rounded vowel", "pucker"),
)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    out = pathlib.Path(args.out)
    utterances = corpora.read_corpus("demo", args.root)
    speakers = sorted({u.speaker for u in utterances}, key=corpora.natural_key)
    rows = []
    for speaker in speakers:
        utterance = next(u for u in utterances if u.speaker == speaker)
        clip = video.read_video(utterance.video_path)
        mouth = np.load(
            pathlib.Path(args.root) / speaker / "mouth" / f"{utterance.utterance_id}.npy"
        )
        tiles = []
        for _, parameter in COLUMNS:
            index = int(np.argmax(mouth[:, MOUTH_PARAMETERS.index(parameter)]))
            frame = clip.frames[index]
            landmarks = face.find_face(frame).landmarks
            centre = landmarks[48:68].mean(axis=0)
            half = 1.1 * np.linalg.norm(landmarks[54] - landmarks[48])
            left, top = (centre - half).astype(int)
            crop = frame[max(0, top) : top + int(2 * half), max(0, left) : left + int(2 * half)]
            tiles.append(np.asarray(Image.fromarray(crop).resize((160, 160), Image.BICUBIC)))
        rows.append(np.concatenate(tiles, axis=1))
    sheet = Image.fromarray(np.concatenate(rows, axis=0))
    header = Image.new("RGB", (sheet.width, 22), "white")
    draw = ImageDraw.Draw(header)
    for column, (title, _) in enumerate(COLUMNS):
        draw.text((column * 160 + 8, 5), title, fill="black")
    full = Image.new("RGB", (sheet.width, sheet.height + 22), "white")
    full.paste(header, (0, 0))
    full.paste(sheet, (0, 22))
    full.save(out / "demo_corpus_mouths.jpg", quality=85)
    first = utterances[0]
    clip = video.read_video(first.video_path)
    video.write_video(
        out / "demo_corpus_sample.mp4",
        clip.frames,
        clip.fps,
        audio=clip.audio,
        sample_rate=clip.sample_rate,
        crf=26,
    )
    print(
        f"wrote {out / 'demo_corpus_mouths.jpg'} and {out / 'demo_corpus_sample.mp4'} "
        f"({first.speaker}/{first.utterance_id})"
    )


if __name__ == "__main__":
    main()
