"""The real-speech benchmark (`autalk evaluate --real-speech`).

`run_benchmark` puts it together: tracks from klettres-data recordings per
language (`speech_tracks.build_track`), in every condition asked for
(`speech_tracks.apply_condition`), `generate` with every model and photo,
the measures of every MP4 (`lip_sync`), a reference row from the demo
corpus's held-out ground-truth videos, and `real_speech.json` /
`real_speech.md`.
"""

import math
import pathlib

import numpy as np

from keras_autalk.config import AudioConfig, FaceConfig
from keras_autalk.errors import AutalkError
from keras_autalk.evaluation.lip_sync import measure_video, segment_labels
from keras_autalk.evaluation.speech_tracks import (
    CONDITION_DESCRIPTIONS,
    PAUSE_RANGE_S,
    apply_condition,
    build_track,
    check_conditions,
)
from keras_autalk.files import atomic_output

# ------------------------------------------------------------------ the benchmark
DEFAULT_PHOTOS = ("grace_hopper", "astronaut")


DEFAULT_LANGUAGES = ("en", "en_GB")


# Where each named photo comes from (`media.photos`); grace_hopper is also the
# photo `autalk demo` animates (`generate.DEMO_PHOTO`).
PHOTO_SOURCES = {
    "grace_hopper": "matplotlib's grace_hopper, the bundled photo",
    "astronaut": "scikit-image's astronaut",
}


REFERENCE = "ground truth"


# (key, column title, format) of the tables, in order.
MEASURES = (
    ("corr", "corr", "{:.2f}"),
    ("pause_ratio", "pause ratio", "{:.2f}"),
    ("lag", "lag (frames)", "{:+.1f}"),
    ("identity", "identity", "{:.3f}"),
)


# The targets on the English tracks, for every photo.
TARGETS = {
    "corr": (lambda value: value >= 0.6, "corr >= 0.6"),
    "pause_ratio": (lambda value: value <= 0.4, "pause ratio <= 0.4"),
    "lag": (lambda value: abs(value) <= 1.0, "-1 <= lag <= 1 frame"),
    "identity": (lambda value: value < 0.4, "identity < 0.4"),
}


def missed_targets(means):
    """The targets (`TARGETS`) a row of mean measures misses; nan misses.

    Example:
    >>> missed_targets({"corr": 0.7, "pause_ratio": 0.5, "lag": -1.0, "identity": 0.2})
    ['pause ratio <= 0.4']
    """
    missed = []
    for key, (meets, text) in TARGETS.items():
        value = means.get(key, math.nan)
        if value is None or not math.isfinite(value) or not meets(value):
            missed.append(text)
    return missed


def load_benchmark_photo(name_or_path):
    """`(label, uint8 RGB array)` of a bundled photo name or a photo file.

    Raises:
        InputFileError: not a bundled name and not a readable image.

    Example:
    >>> load_benchmark_photo("astronaut")[1].shape
    (512, 512, 3)
    """
    from keras_autalk.media import image, photos

    if str(name_or_path) in photos.PHOTO_NAMES:
        return str(name_or_path), photos.load_photo(str(name_or_path))
    path = pathlib.Path(name_or_path)
    if not path.exists() and not path.suffix:
        raise AutalkError(
            f"The photo '{name_or_path}' is neither a bundled photo "
            f"({', '.join(photos.PHOTO_NAMES)}) nor a file."
        )
    return path.stem, image.load_image(path)


def reference_videos(corpus_root, count):
    """`count` held-out utterances of a demo corpus root, taking each speaker in turn.

    Args:
        corpus_root: the folder `autalk prepare --corpus demo --root ROOT`
            rendered (it holds `demo_corpus.json`).
        count: how many (all of them if the split has fewer).

    Returns:
        A list of dicts: "utterance_id", "speaker", "video" (`.mpg`), "align".

    Raises:
        AutalkError: not a demo corpus root, no test utterance, or a missing file.
    """
    import json

    root = pathlib.Path(corpus_root)
    manifest = root / "demo_corpus.json"
    if not manifest.is_file():
        raise AutalkError(
            f"The reference corpus '{root}' has no demo_corpus.json; give the "
            "--root folder of `autalk prepare --corpus demo`."
        )
    try:
        utterances = [
            u for u in json.loads(manifest.read_text())["utterances"] if u.get("split") == "test"
        ]
    except (ValueError, KeyError, TypeError, AttributeError):
        raise AutalkError(f"'{manifest}' is not a demo corpus manifest.") from None
    if not utterances:
        raise AutalkError(f"The reference corpus '{root}' has no held-out (test) utterance.")
    # One utterance of each speaker in turn, so that a few span every voice
    # (the held-out speaker has many more test utterances than the others).
    by_speaker = {}
    for utterance in utterances:
        by_speaker.setdefault(utterance["speaker"], []).append(utterance)
    queues = list(by_speaker.values())
    turns = [
        queue[depth]
        for depth in range(max(map(len, queues)))
        for queue in queues
        if depth < len(queue)
    ]
    chosen = []
    for utterance in turns[:count]:
        folder = root / utterance["speaker"]
        entry = {
            "utterance_id": utterance["id"],
            "speaker": utterance["speaker"],
            "video": folder / f"{utterance['id']}.mpg",
            "align": folder / "align" / f"{utterance['id']}.align",
        }
        for key in ("video", "align"):
            if not entry[key].is_file():
                raise AutalkError(f"The reference corpus '{root}' lacks '{entry[key]}'.")
        chosen.append(entry)
    return chosen


def measure_reference(entry, fps=AudioConfig().fps, config=FaceConfig()):
    """`measure_video` on one demo-corpus video, speech frames from its `.align` words.

    There is no photo separate from the video, so identity is not measured (nan).
    """
    from keras_autalk.corpora import grid

    segments = grid.read_align(entry["align"])
    speech = segment_labels(segments, max(end for _, end, _ in segments), fps)
    return measure_video(entry["video"], speech_frames=speech, config=config)


def _file_label(text):
    import re

    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(text)).strip("_") or "model"


def _condition_suffix(condition):
    """The file-name suffix of a condition: none for clean, `_phone` ... otherwise."""
    return "" if condition == "clean" else f"_{condition}"


def _means(rows):
    """Mean of each measure over `rows` (nan where every row is nan)."""
    means = {}
    for key, _, _ in MEASURES:
        values = np.array([row[key] for row in rows], np.float64)
        finite = values[np.isfinite(values)]
        means[key] = float(finite.mean()) if finite.size else math.nan
    return means


def _cell(value, fmt):
    return "—" if value is None or not math.isfinite(value) else fmt.format(value)


def _table_header(judged):
    """The header and rule rows of a benchmark table (`judged`: with a targets column)."""
    titles = ["model", "language", "condition", "tracks"] + [t for _, t, _ in MEASURES]
    rules = ["---", "---", "---", "---:"] + ["---:" for _ in MEASURES]
    if judged:
        titles, rules = titles + ["targets"], rules + ["---"]
    return ["| " + " | ".join(titles) + " |", "| " + " | ".join(rules) + " |"]


def _table_line(name, language, condition, count, means, judged, verdict=True):
    """One table row; with `judged` and `verdict`, the targets it met or missed."""
    cells = [name, language, condition, str(count)]
    cells += [_cell(means.get(key), fmt) for key, _, fmt in MEASURES]
    if judged:
        missed = missed_targets(means)
        cells.append("" if not verdict else "met" if not missed else "missed: " + ", ".join(missed))
    return "| " + " | ".join(cells) + " |"


def _reference_line(reference, judged):
    """The ground-truth reference row (none without a reference)."""
    if not reference:
        return []
    return [
        _table_line(
            f"{REFERENCE} (demo corpus)",
            "en (espeak-ng)",
            "clean",
            f"{reference['utterances']} videos",
            reference["mean"],
            judged,
            verdict=False,
        )
    ]


def _benchmark_preamble(report):
    """The lines above the tables: how the tracks were made, the conditions, the command."""
    settings = report["settings"]
    conditions = settings.get("conditions", ["clean"])
    first, count = settings["seed"], settings["tracks_per_language"]
    seeds = f"seed {first}" if count == 1 else f"seeds {first}-{first + count - 1}"
    lines = [
        "Real-speech benchmark: klettres-data recordings joined with pauses of "
        f"{settings['pause_range_s'][0]}-{settings['pause_range_s'][1]} s into tracks of "
        f"about {settings['duration_s']:g} s ({settings['tracks_per_language']} per "
        f"language, {seeds}); measured on the output MP4 frame by frame with dlib landmarks.",
        "",
        "Conditions (the same tracks, the same speech labels): "
        + "; ".join(f"{name}: {CONDITION_DESCRIPTIONS[name]}" for name in conditions)
        + ".",
        "",
    ]
    if report.get("command"):
        lines += [f"Command: `{report['command']}`", ""]
    return lines


def _photo_tables(report):
    """One table per photo, judged against the targets, with the reference row."""
    lines = []
    for photo in report["photos"]:
        source = PHOTO_SOURCES.get(photo["name"], photo["name"])
        lines += [f"### Photo: {photo['name']} ({source})", ""] + _table_header(True)
        for entry in report["means"]:
            if entry["photo"] == photo["name"]:
                condition = entry.get("condition", "clean")
                judged = entry["language"] in report["english"] and condition == "clean"
                lines.append(
                    _table_line(
                        entry["model"],
                        entry["language"],
                        condition,
                        entry["tracks"],
                        entry,
                        True,
                        verdict=judged,
                    )
                )
        lines += _reference_line(report.get("reference"), True) + [""]
    return lines


def _language_table(report):
    """The table of means over the photos, one row per model, language and condition."""
    lines = ["### Per language (mean over the photos)", ""] + _table_header(False)
    for entry in report["language_means"]:
        lines.append(
            _table_line(
                entry["model"],
                entry["language"],
                entry.get("condition", "clean"),
                entry["tracks"],
                entry,
                False,
            )
        )
    return lines + _reference_line(report.get("reference"), False) + [""]


def _benchmark_notes(reference):
    """The lines below the tables: what each measure means, the targets, the reference."""
    lines = [
        "corr: Pearson r of the lip opening with the RMS envelope per frame of the clean track "
        "(in every condition, so a mouth is scored against the speech, not the room or the "
        "noise; higher is better). pause ratio: mean lip opening "
        "above rest in pauses over the same in speech (0: the mouth closes in every pause; 1: "
        "it ignores them). lag: frames by which the mouth trails the audio (cross-correlation "
        "peak). identity: dlib face-embedding distance of the output frames to the photo "
        "(lower is better).",
        "",
        "Targets (clean English tracks, every photo): "
        + ", ".join(text for _, text in TARGETS.values())
        + "; the targets column judges "
        "the clean English rows only (the other conditions show how a model copes, without "
        "targets). English (en, en_GB) is used only for evaluation, never for training.",
    ]
    if reference:
        lines += [
            "",
            f"{REFERENCE} (demo corpus): the same measures on {reference['utterances']} held-out "
            "videos of the demo corpus (espeak-ng speech), speech frames from their `.align` "
            "word timings; no identity (those videos have no separate photo).",
        ]
    return lines


def benchmark_markdown(report):
    """The report's tables: one per photo, one per language, the reference row in each.

    A row is a model, a language and a condition (`CONDITIONS`); the
    targets judge the clean English rows only.

    Args:
        report: the dict `run_benchmark` returns (and writes as JSON).

    Returns:
        Markdown text.
    """
    lines = _benchmark_preamble(report)
    lines += _photo_tables(report)
    lines += _language_table(report)
    lines += _benchmark_notes(report.get("reference"))
    return "\n".join(lines) + "\n"


def run_benchmark(
    models,
    out_dir,
    photos=DEFAULT_PHOTOS,
    languages=DEFAULT_LANGUAGES,
    tracks_per_language=1,
    duration_s=15.0,
    seed=0,
    reference_corpus=None,
    reference_utterances=8,
    identity_every=25,
    keep_videos=False,
    recordings_dir=None,
    command=None,
    conditions=("clean",),
    log=print,
):
    """The real-speech benchmark: real recordings -> `generate` -> the measures, as tables.

    For every language, `tracks_per_language` tracks are built from its
    klettres-data recordings (`build_track`, seeds `seed`, `seed + 1`, ...);
    each is turned into every one of `conditions` (`apply_condition`,
    seeded with the track's seed; the speech labels stay the track's) and
    written as a WAV to `out_dir/tracks/` (`en_seed0.wav` clean,
    `en_seed0_phone.wav` ...). Every model animates every photo with every
    track in every condition (`generate.generate`, MP4s in `out_dir/videos/`,
    deleted after measuring unless `keep_videos`), and each MP4 is measured
    (`measure_video`). With `reference_corpus`, the held-out ground-truth
    videos of the demo corpus are measured the same way (`REFERENCE` row).
    Writes `out_dir/real_speech.json` (every row, the means, the settings)
    and `out_dir/real_speech.md` (`benchmark_markdown`), atomically.

    Every input is checked before the long work starts.

    Args:
        models: `{row name: model}`; a model is "demo" (the bundled one), a
            pretrained folder, a training run's `talker.keras`, or a loaded
            `AUTalker`.
        out_dir: output folder (created if its parent exists).
        photos: bundled photo names (`media.photos`) or photo files.
        languages: klettres-data languages (`klettres.list_recordings`).
        tracks_per_language: tracks per language.
        duration_s: the shortest track, in seconds (at least 1).
        seed: the first track's seed.
        reference_corpus: a demo corpus root (`autalk prepare --corpus demo
            --root ROOT`), or None for no reference row.
        reference_utterances: held-out videos measured for the reference.
        identity_every: embed every n-th output frame for the identity.
        keep_videos: keep the MP4s.
        recordings_dir: the klettres recordings (default: `fetch_klettres()`).
        command: the command line shown in the Markdown (None: none shown).
        conditions: recording conditions (`CONDITIONS`), each a row of its own.
        log: `print`-like, one line per video.

    Returns:
        The report dict written to `real_speech.json`.

    Raises:
        AutalkError: bad input (unknown language, photo or condition, a photo
            without a face, no reference corpus, a missing model), in one sentence.

    Example:
    ```python
    report = run_benchmark({"demo": "demo"}, "runs/real_speech",
                           reference_corpus="demo_corpus",
                           conditions=("clean", "phone", "noisy", "reverb"))
    print(open("runs/real_speech/real_speech.md").read())
    ```
    """
    import time

    from keras_autalk.corpora import klettres
    from keras_autalk.evaluation import evaluate as evaluation

    started = time.perf_counter()
    conditions = _check_benchmark_arguments(
        models, languages, photos, tracks_per_language, duration_s, identity_every, conditions
    )
    out_dir = evaluation.check_out_dir(out_dir)
    references = (
        reference_videos(reference_corpus, reference_utterances)
        if reference_corpus is not None
        else []
    )
    loaded_photos = _load_photos(photos)
    recordings_dir = pathlib.Path(recordings_dir or klettres.fetch_klettres())
    recordings = {
        language: klettres.list_recordings(recordings_dir, language) for language in languages
    }
    talkers = _load_talkers(models)

    out_dir.mkdir(parents=True, exist_ok=True)
    tracks = _write_tracks(
        out_dir / "tracks", recordings, tracks_per_language, seed, duration_s, conditions, log
    )
    rows = _render_and_measure(
        talkers, loaded_photos, tracks, out_dir / "videos", identity_every, keep_videos, log
    )
    reference = _measure_references(references, reference_corpus, log)
    means, language_means = _grouped_means(rows, talkers, loaded_photos, languages, conditions)
    report = {
        "benchmark": "real speech (klettres-data)",
        "command": command,
        "settings": _benchmark_settings(
            models, duration_s, tracks_per_language, seed, conditions, identity_every, languages
        ),
        "photos": [
            {"name": name, "source": PHOTO_SOURCES.get(name, "file")} for name in loaded_photos
        ],
        "conditions": [
            {"name": name, "description": CONDITION_DESCRIPTIONS[name]} for name in conditions
        ],
        "english": [language for language in languages if language in klettres.TRAINING_EXCLUDED],
        "targets": [text for _, text in TARGETS.values()],
        "tracks": _track_summaries(tracks, recordings_dir),
        "rows": rows,
        "means": means,
        "language_means": language_means,
        "reference": reference,
        "seconds": round(time.perf_counter() - started, 1),
    }
    _write_report(report, out_dir, log)
    return report


def _benchmark_settings(
    models, duration_s, tracks_per_language, seed, conditions, identity_every, languages
):
    """The report's "settings": what the benchmark ran with, models by name or type."""
    return {
        "duration_s": float(duration_s),
        "tracks_per_language": int(tracks_per_language),
        "seed": int(seed),
        "pause_range_s": list(PAUSE_RANGE_S),
        "conditions": list(conditions),
        "identity_every": int(identity_every),
        "languages": list(languages),
        "models": {
            name: (
                str(model) if isinstance(model, (str, pathlib.PurePath)) else type(model).__name__
            )
            for name, model in models.items()
        },
    }


def _check_benchmark_arguments(
    models, languages, photos, tracks_per_language, duration_s, identity_every, conditions
):
    """Check `run_benchmark`'s plain arguments; return the checked conditions."""
    if not models:
        raise AutalkError("The benchmark needs at least one model.")
    if int(tracks_per_language) < 1:
        raise AutalkError("The number of tracks per language must be at least 1.")
    if not duration_s >= 1.0:
        raise AutalkError(f"The track duration must be at least 1 second, got {duration_s}.")
    if int(identity_every) < 1:
        raise AutalkError("identity_every must be at least 1.")
    if not languages:
        raise AutalkError("The benchmark needs at least one language.")
    if not photos:
        raise AutalkError("The benchmark needs at least one photo.")
    repeated = [language for language in set(languages) if list(languages).count(language) > 1]
    if repeated:
        raise AutalkError(f"The language '{repeated[0]}' is given twice.")
    return check_conditions(conditions)


def _load_photos(photos):
    """`{label: photo}` of the benchmark's photos, each checked for a face."""
    from keras_autalk.media import face

    loaded_photos = {}
    for name_or_path in photos:
        label, photo = load_benchmark_photo(name_or_path)
        if label in loaded_photos:
            raise AutalkError(f"Two photos would be called '{label}'.")
        face.find_face(photo)  # no face: one sentence now, not after the first video
        loaded_photos[label] = photo
    return loaded_photos


def _load_talkers(models):
    """`{row name: AUTalker}`, loading the models given as names or paths."""
    from keras_autalk.evaluation import evaluate as evaluation

    talkers = {}
    for name, model in models.items():
        is_spec = isinstance(model, (str, pathlib.PurePath))
        talkers[str(name)] = evaluation.load_talker(model) if is_spec else model
    return talkers


def _write_tracks(tracks_dir, recordings, tracks_per_language, seed, duration_s, conditions, log):
    """Build each language's tracks, write each condition of each as a WAV; their entries."""
    import soundfile

    tracks_dir.mkdir(exist_ok=True)
    tracks = []
    for language, language_recordings in recordings.items():
        for index in range(int(tracks_per_language)):
            track_seed = int(seed) + index
            track = build_track(language_recordings, track_seed, duration_s)
            for condition in conditions:
                waveform = apply_condition(track, condition, track_seed)
                wav = tracks_dir / (
                    f"{_file_label(language)}_seed{track_seed}{_condition_suffix(condition)}.wav"
                )
                with atomic_output(wav, "track") as temporary:
                    soundfile.write(
                        temporary, waveform, track.sample_rate, subtype="FLOAT", format="WAV"
                    )
                tracks.append(
                    {
                        "language": language,
                        "seed": track_seed,
                        "condition": condition,
                        "track": track,
                        "wav": wav,
                    }
                )
                log(
                    f"track {wav.name}: {track.duration:.1f} s, "
                    f"{track.speech.mean() * 100:.0f}% speech, {condition}, recordings: "
                    + ", ".join(pathlib.Path(path).stem for path in track.recordings)
                )
    return tracks


def _render_and_measure(
    talkers, loaded_photos, tracks, videos_dir, identity_every, keep_videos, log
):
    """Animate every photo with every track by every model, measure each MP4; the rows."""
    import time

    from keras_autalk.inference import generate as generate_module

    videos_dir.mkdir(exist_ok=True)
    rows = []
    total = len(talkers) * len(loaded_photos) * len(tracks)
    for model_name, talker in talkers.items():
        for photo_name, photo in loaded_photos.items():
            for entry in tracks:
                began = time.perf_counter()
                mp4 = videos_dir / (
                    f"{_file_label(model_name)}_{_file_label(photo_name)}_"
                    f"{_file_label(entry['language'])}_seed{entry['seed']}"
                    f"{_condition_suffix(entry['condition'])}.mp4"
                )
                generate_module.generate(photo, entry["wav"], mp4, model=talker, progress=False)
                generated = time.perf_counter()
                result = measure_video(
                    mp4,
                    speech_samples=entry["track"].speech,
                    photo=photo,
                    identity_every=identity_every,
                    speech_waveform=entry["track"].waveform,
                )
                if not keep_videos:
                    mp4.unlink()
                row = {
                    "model": model_name,
                    "photo": photo_name,
                    "language": entry["language"],
                    "condition": entry["condition"],
                    "seed": entry["seed"],
                    **{key: result[key] for key, _, _ in MEASURES},
                    "frames": result["frames"],
                    "seconds_generate": round(generated - began, 1),
                    "seconds_measure": round(time.perf_counter() - generated, 1),
                }
                rows.append(row)
                log(
                    f"[{len(rows)}/{total}] {model_name} / {photo_name} / {entry['language']} "
                    f"seed {entry['seed']} {entry['condition']}: corr {row['corr']:.2f}, "
                    f"pause ratio {row['pause_ratio']:.2f}, lag {row['lag']:+d}, identity "
                    f"{row['identity']:.3f} ({time.perf_counter() - began:.0f} s)"
                )
    if not keep_videos and not any(videos_dir.iterdir()):
        videos_dir.rmdir()
    return rows


def _measure_references(references, reference_corpus, log):
    """The reference row: the measures of the demo corpus's videos (None without any)."""
    if not references:
        return None
    reference_rows = []
    for index, entry in enumerate(references, 1):
        result = measure_reference(entry)
        reference_rows.append(
            {
                "utterance_id": entry["utterance_id"],
                "speaker": entry["speaker"],
                **{key: result[key] for key, _, _ in MEASURES},
                "frames": result["frames"],
            }
        )
        log(
            f"[reference {index}/{len(references)}] {entry['speaker']}/"
            f"{entry['utterance_id']}: corr {result['corr']:.2f}, pause ratio "
            f"{result['pause_ratio']:.2f}, lag {result['lag']:+d}"
        )
    return {
        "corpus": str(reference_corpus),
        "utterances": len(reference_rows),
        "mean": _means(reference_rows),
        "rows": reference_rows,
    }


def _grouped_means(rows, talkers, loaded_photos, languages, conditions):
    """`(means, language_means)`: the rows' means per photo, and over the photos."""
    means, language_means = [], []
    for model_name in talkers:
        for photo_name in loaded_photos:
            for language in languages:
                for condition in conditions:
                    key = (model_name, photo_name, language, condition)
                    chosen = [
                        row
                        for row in rows
                        if (row["model"], row["photo"], row["language"], row["condition"]) == key
                    ]
                    means.append(
                        {
                            "model": model_name,
                            "photo": photo_name,
                            "language": language,
                            "condition": condition,
                            "tracks": len(chosen),
                            **_means(chosen),
                        }
                    )
        for language in languages:
            for condition in conditions:
                chosen = [
                    row
                    for row in rows
                    if (row["model"], row["language"], row["condition"])
                    == (model_name, language, condition)
                ]
                language_means.append(
                    {
                        "model": model_name,
                        "language": language,
                        "condition": condition,
                        "tracks": len(chosen) // max(1, len(loaded_photos)),
                        **_means(chosen),
                    }
                )
    return means, language_means


def _track_summaries(tracks, recordings_dir):
    """The report's entry for each written track (its WAV, length, speech and recordings)."""
    return [
        {
            "language": entry["language"],
            "seed": entry["seed"],
            "condition": entry["condition"],
            "wav": str(entry["wav"]),
            "duration_s": round(entry["track"].duration, 3),
            "speech_fraction": round(float(entry["track"].speech.mean()), 3),
            "recordings": [
                str(pathlib.Path(path).relative_to(recordings_dir))
                for path in entry["track"].recordings
            ],
        }
        for entry in tracks
    ]


def _write_report(report, out_dir, log):
    """Write `real_speech.json` and `real_speech.md` atomically and log the summary."""
    import json

    from keras_autalk.evaluation import evaluate as evaluation

    with atomic_output(out_dir / "real_speech.json") as temporary:
        pathlib.Path(temporary).write_text(json.dumps(evaluation._jsonable(report), indent=1))
    with atomic_output(out_dir / "real_speech.md") as temporary:
        pathlib.Path(temporary).write_text(benchmark_markdown(report))
    log(
        f"Measured {len(report['rows'])} videos in {report['seconds']:.0f} s; wrote "
        f"{out_dir / 'real_speech.md'}."
    )
