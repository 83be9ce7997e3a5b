"""Held-out faces and real speech: the benchmark of issue 17, per face, per model.

    python bench/held_out_faces.py -o runs/held_out --model demo
    python bench/held_out_faces.py -o runs/held_out --model demo --model new=runs/x/talker.keras

Faces: every face of the people `keras_autalk.corpora.demo.people` holds out
(`EVALUATION_PHOTOS`: never in any training data). Speech, never in any
training data either:

- "words": English klettres-data recordings (letters, syllables, short
  words) joined with pauses (`speech_tracks.build_track`, seed 0);
- "connected fr / it / es": telephone prompts (`corpora.speech_packages`:
  asterisk-core-sounds-fr-wav, asterisk-prompt-it-menardi-wav,
  asterisk-prompt-es-co; sentences by professional speakers, 8 kHz), those of
  at least 1.5 s, joined the same way.

Every model animates every face with every track (`generate`, lower-face
compositing, the default); each MP4 is measured: lip opening against the
speech envelope (corr, pause ratio, lag: `evaluation.lip_sync`), identity
distance to the photo, eye-region PSNR against the photo and mouth
sharpness against the photo's own (`evaluation.photo_fidelity`). Writes
held_out_faces.json and held_out_faces.md into -o and prints the table,
with the targets of issue 17 marked.
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

from faces import score_video, write_report  # noqa: E402  (bench/faces.py, beside this one)

from keras_autalk.config import AudioConfig  # noqa: E402

TRACK_SECONDS = 12.0
SHORTEST_PROMPT_S = 1.5
# Issue 17's targets: (measure, test, text) per kind of speech, and for every video.
TARGETS = {
    "words": (
        ("corr", lambda v: v >= 0.65, "corr >= 0.65"),
        ("pause_ratio", lambda v: v <= 0.3, "pause <= 0.3"),
        ("lag", lambda v: abs(v) <= 1, "|lag| <= 1"),
    ),
    "connected": (
        ("corr", lambda v: v >= 0.6, "corr >= 0.6"),
        ("pause_ratio", lambda v: v <= 0.4, "pause <= 0.4"),
        ("lag", lambda v: abs(v) <= 1, "|lag| <= 1"),
    ),
    "all": (
        ("identity", lambda v: v < 0.3, "identity < 0.3"),
        ("eye_psnr_db", lambda v: v >= 40.0, "eye PSNR >= 40"),
        ("mouth_sharpness", lambda v: v >= 0.8, "mouth sharpness >= 0.8"),
    ),
}


def tracks(out_dir):
    """`[(name, kind, wav path, Track)]`: English words and three languages of prompts."""
    from keras_autalk.corpora import klettres, speech_packages
    from keras_autalk.evaluation.speech_tracks import build_track
    from keras_autalk.media import audio

    sources = [("words en", "words", klettres.list_recordings(klettres.fetch_klettres(), "en"))]
    for language in ("fr", "it", "es"):
        prompts = speech_packages.phone_prompts(speech_packages.fetch(f"asterisk-{language}"))
        long_enough = [
            path for path in prompts if audio.load_audio(path).size >= SHORTEST_PROMPT_S * 16000
        ]
        sources.append((f"connected {language}", "connected", long_enough))
    made = []
    for name, kind, recordings in sources:
        track = build_track(recordings, seed=0, duration_s=TRACK_SECONDS)
        wav = out_dir / "tracks" / f"{name.replace(' ', '_')}.wav"
        wav.parent.mkdir(parents=True, exist_ok=True)
        soundfile.write(wav, track.waveform, AudioConfig().sample_rate)
        made.append((name, kind, wav, track))
    return made


def held_out_faces():
    """`[(label, photo pixels, PhotoFace)]` of every held-out face."""
    from keras_autalk.corpora.demo import people

    faces = []
    for person in people.find_people():
        if person.held_out:
            for face in person.faces:
                faces.append(
                    (
                        f"{face.source}/{face.photo}",
                        people.load_photo(face.source, face.photo),
                        face,
                    )
                )
    return faces


def measure(picture, photo_face, talker, wav, track, mp4):
    """Generate one video and measure it (`faces.score_video`)."""
    from keras_autalk.inference import generate

    started = time.perf_counter()
    generate.generate(picture, wav, mp4, model=talker, progress=False, face=photo_face.face)
    seconds = time.perf_counter() - started
    scores = score_video(mp4, picture, np.array(photo_face.landmarks), track)
    scores["generate_s"] = round(seconds, 1)
    return scores


def missed(row):
    """The targets a row misses."""
    texts = []
    for key, meets, text in TARGETS[row["kind"]] + TARGETS["all"]:
        value = row.get(key)
        if value is None or not np.isfinite(value) or not meets(value):
            texts.append(text)
    return texts


def markdown(rows, command):
    lines = [
        f"`{command}`",
        "",
        "| model | face | speech | corr | pause ratio | lag | identity | eye PSNR dB | "
        "mouth sharpness | targets missed |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for row in rows:
        lines.append(
            f"| {row['model']} | {row['face']} | {row['speech']} | {row['corr']:.2f} | "
            f"{row['pause_ratio']:.2f} | {row['lag']:+.0f} | {row['identity']:.3f} | "
            f"{row['eye_psnr_db']:.1f} | {row['mouth_sharpness']:.2f} | "
            f"{', '.join(missed(row)) or 'none'} |"
        )
    lines += [
        "",
        "| model | speech | mean corr | mean pause ratio | mean identity | "
        "mean eye PSNR dB | mean mouth sharpness | videos meeting every target |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for model in dict.fromkeys(row["model"] for row in rows):
        for kind in ("words", "connected"):
            chosen = [row for row in rows if row["model"] == model and row["kind"] == kind]
            if not chosen:
                continue

            def mean(key):
                return np.mean([row[key] for row in chosen])

            met = sum(not missed(row) for row in chosen)
            lines.append(
                f"| {model} | {kind} | {mean('corr'):.2f} | {mean('pause_ratio'):.2f} "
                f"| {mean('identity'):.3f} | {mean('eye_psnr_db'):.1f} | "
                f"{mean('mouth_sharpness'):.2f} | {met} of {len(chosen)} |"
            )
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", default="runs/held_out_faces", help="output folder")
    parser.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="[NAME=]MODEL",
        help="a model to measure (repeatable; default: demo)",
    )
    parser.add_argument("--keep-videos", action="store_true")
    parser.add_argument(
        "--combine",
        nargs="+",
        metavar="JSON",
        help="only combine the rows of earlier runs' held_out_faces.json into one table in -o",
    )
    args = parser.parse_args(argv)
    from keras_autalk.evaluation import evaluate

    out_dir = pathlib.Path(args.output)
    out_dir.mkdir(parents=True, exist_ok=True)
    command = "python bench/held_out_faces.py " + " ".join(
        argv if argv is not None else sys.argv[1:]
    )
    if args.combine:
        runs = [json.loads(pathlib.Path(path).read_text()) for path in args.combine]
        rows = [row for run in runs for row in run["rows"]]
        command = "; ".join(run["command"] for run in runs)
        return write_tables(out_dir, rows, command)
    models = evaluate.parse_model_specs(args.model or ["demo"])
    speech = tracks(out_dir)
    rows = []
    for model_name, spec in models.items():
        talker = evaluate.load_talker(spec)
        for label, picture, photo_face in held_out_faces():
            for name, kind, wav, track in speech:
                mp4 = (
                    out_dir
                    / "videos"
                    / (f"{model_name}_{pathlib.Path(label).stem}_{name.replace(' ', '_')}.mp4")
                )
                mp4.parent.mkdir(parents=True, exist_ok=True)
                row = {
                    "model": model_name,
                    "face": label,
                    "speech": name,
                    "kind": kind,
                    **measure(picture, photo_face, talker, wav, track, mp4),
                }
                if not args.keep_videos:
                    mp4.unlink()
                rows.append(row)
                print(json.dumps(row), flush=True)
    write_tables(out_dir, rows, command)


def write_tables(out_dir, rows, command):
    """held_out_faces.json and held_out_faces.md in `out_dir`; print the table."""
    write_report(out_dir, "held_out_faces", rows, command, markdown(rows, command))


if __name__ == "__main__":
    main()
