"""`autalk evaluate`: run talkers on a prepared split and score them like the paper.

For every utterance of the split (the held-out "test" split by default)
each *system* renders the whole utterance from one identity frame and the
utterance's audio, and is scored against the real frames:

- image quality: PSNR and SSIM on the whole crop and in the mouth box,
  CPBD sharpness;
- lip shape: LMD, the mean distance of the 20 mouth landmarks (and of all
  68) between generated and real frames, both found by dlib's predictor
  on the aligned crops, in crop pixels;
- AUs: the frozen AU classifier's reading of the generated frames against
  the ground-truth AU labels (per-AU Pearson r, MAE, F1 of occurrence),
  pooled over all frames of the split;
- identity: dlib face-embedding distance between the identity frame and
  the generated frames;
- lip sync: the sync expert's LSE-D, LSE-C and best offset.

Two baselines share the table: **static** (the identity frame repeated:
what "no motion" scores) and **ground truth** (the real frames through the
same measures: the upper bound for sync, AU and identity scores; its image
and landmark scores against itself are exact and shown as such).

The identity frame of an utterance is, among its frames with a face, the
one whose mouth is most closed (smallest inner-lip gap): a neutral photo,
as a user would give, and the same frame for every system.
"""

import dataclasses
import json
import math
import pathlib
import time

import numpy as np

from keras_autalk.config import AutalkConfig
from keras_autalk.errors import AutalkError
from keras_autalk.evaluation import metrics
from keras_autalk.files import atomic_output, check_output_path
from keras_autalk.native import import_tensorflow

tf = import_tensorflow()

STATIC = "static"
GROUND_TRUTH = "ground truth"
# Per-utterance metrics, in table order: (key, column title, format, better).
TABLE_COLUMNS = (
    ("psnr", "PSNR (dB)", "{:.2f}", "higher"),
    ("ssim", "SSIM", "{:.3f}", "higher"),
    ("mouth_psnr", "mouth PSNR", "{:.2f}", "higher"),
    ("mouth_ssim", "mouth SSIM", "{:.3f}", "higher"),
    ("cpbd", "CPBD", "{:.3f}", "higher"),
    ("lmd_mouth", "LMD mouth (px)", "{:.2f}", "lower"),
    ("lmd_face", "LMD face (px)", "{:.2f}", "lower"),
    ("au_pearson", "AU r", "{:.3f}", "higher"),
    ("au_mae", "AU MAE", "{:.3f}", "lower"),
    ("au_f1", "AU F1", "{:.3f}", "higher"),
    ("identity_distance", "identity dist.", "{:.3f}", "lower"),
    ("lse_d", "LSE-D", "{:.3f}", "lower"),
    ("lse_c", "LSE-C", "{:.3f}", "higher"),
    ("sync_offset", "offset (frames)", "{:.2f}", "closer to 0"),
)


@dataclasses.dataclass
class EvaluationSettings:
    """What `evaluate` measures and how often.

    Attributes:
        split: the prepared split to evaluate ("test" is held out).
        max_utterances: evaluate only the first N utterances (None: all).
        every: take every n-th utterance of the split (1: all), so a
            subset still spans every speaker.
        cpbd_every: CPBD on every n-th frame (it costs ~ms per frame).
        identity_every: face embeddings of every n-th frame (~tens of ms each).
        au_threshold: AU intensity at which an AU counts as present (F1).
    """

    split: str = "test"
    max_utterances: int = None
    every: int = 1
    cpbd_every: int = 5
    identity_every: int = 10
    au_threshold: float = 1.0


def iter_utterances(
    prepared_dir, split="test", max_utterances=None, config=AutalkConfig(), every=1
):
    """The prepared utterances of one split, one numpy dict each, in file order.

    Utterances without a face are skipped; `every` keeps every n-th of the
    rest, `max_utterances` stops after that many.

    Yields:
        dicts with "utterance_id", "speaker", "frames" (T, S, S, 3) float32 in
        [0, 1], "audio_features" (T, context, bins), "au_intensity" (T, A),
        "au_mask", "face_mask" (T,), "landmarks" (T, 68, 2), "waveform".
    """
    from keras_autalk.datasets import pipeline, tfrecords

    files = pipeline.list_shards(prepared_dir, split)
    pipeline.check_shard(files[0], config)
    dataset = tf.data.TFRecordDataset(files).map(tfrecords.parse_example)
    count = seen = 0
    for record in dataset:
        if max_utterances is not None and count >= max_utterances:
            return
        if float(tf.reduce_sum(record["face_mask"])) == 0:
            continue
        seen += 1
        if (seen - 1) % every:
            continue
        count += 1
        yield {
            "utterance_id": record["utterance_id"].numpy().decode(),
            "speaker": record["speaker"].numpy().decode(),
            "frames": record["frames"].numpy().astype(np.float32) / 255.0,
            "audio_features": record["audio_features"].numpy(),
            "au_intensity": record["au_intensity"].numpy(),
            "au_mask": record["au_mask"].numpy(),
            "face_mask": record["face_mask"].numpy(),
            "landmarks": record["landmarks"].numpy(),
            "waveform": record["waveform"].numpy(),
        }


def identity_frame_index(landmarks, face_mask):
    """The frame with a face whose mouth is most closed (smallest inner-lip gap).

    Args:
        landmarks: (T, 68, 2) dlib points of the real frames.
        face_mask: (T,) 1 where a face was found.

    Returns:
        The frame index (int).

    Example:
    >>> marks = np.zeros((3, 68, 2)); marks[:, 66, 1] = [4.0, 1.0, 0.5]
    >>> identity_frame_index(marks, np.array([1.0, 1.0, 0.0]))
    1
    """
    gap = np.abs(landmarks[:, 66, 1] - landmarks[:, 62, 1])
    gap = np.where(np.asarray(face_mask) > 0.5, gap, np.inf)
    return int(np.argmin(gap))


def load_talker(spec):
    """A talker from "demo", a pretrained folder, or a training run's `.keras` file.

    Raises:
        AutalkError: the file or folder is missing or not a keras-autalk talker.
    """
    from keras_autalk.models.talker import AUTalker

    path = pathlib.Path(str(spec))
    if path.suffix == ".keras":
        from keras_autalk.presets.model_files import load_model_file

        return load_model_file(path, AUTalker, "talker", file_what="talker model")
    from keras_autalk.presets.pretrained import load_pretrained

    return load_pretrained(str(spec))


def run_talker(model, identity_image, audio_features):
    """Frames and Audio2AU curves for a whole utterance, in one pass.

    Args:
        model: an `AUTalker`.
        identity_image: (S, S, 3) in [0, 1].
        audio_features: (T, context, bins), as prepared (normalised here
            if the model takes normalised features).

    Returns:
        `(frames (T, S, S, 3), au_intensity (T, A))` numpy float32.
    """
    from keras_autalk.features import log_mel

    audio_features = log_mel.normalize_features(
        np.asarray(audio_features, np.float32), model.model_config.audio_normalization
    )
    outputs = model(
        {
            "identity_image": identity_image[None].astype(np.float32),
            "audio_features": audio_features[None],
        },
        training=False,
    )
    return (np.asarray(outputs["frames"])[0], np.asarray(outputs["au_intensity"])[0])


def score_utterance(
    frames,
    utterance,
    real_landmarks,
    settings,
    au_classifier=None,
    sync_expert=None,
    identity_embedding=None,
):
    """Per-utterance metrics of one system's frames against the real ones.

    Args:
        frames: the system's frames (T, S, S, 3) in [0, 1].
        utterance: a dict from `iter_utterances`.
        real_landmarks: `crop_landmarks` of the real frames, `(landmarks, found)`.
        settings: `EvaluationSettings`.
        au_classifier, sync_expert: the scorers, or None to skip their scores.
        identity_embedding: the identity frame's face embedding, or None.

    Returns:
        `(scores, au_readings)`: a dict of floats, and the AU classifier's
        reading of `frames` (T, A) (None without a classifier).
    """
    from keras_autalk.evaluation import sync

    real = utterance["frames"]
    valid = utterance["face_mask"] > 0.5
    scores = {
        "psnr": _finite_mean(metrics.psnr(frames[valid], real[valid])),
        "ssim": float(np.mean(metrics.ssim(frames[valid], real[valid]))),
        "mouth_psnr": _finite_mean(
            metrics.mouth_psnr(frames[valid], real[valid], utterance["landmarks"][valid])
        ),
        "mouth_ssim": float(
            np.nanmean(
                metrics.mouth_ssim(frames[valid], real[valid], utterance["landmarks"][valid])
            )
        ),
        "cpbd": float(np.mean([metrics.cpbd(frame) for frame in frames[:: settings.cpbd_every]])),
    }
    # The real frames' landmarks are already known (the ground-truth row).
    landmarks, found = (
        real_landmarks if frames is utterance["frames"] else metrics.crop_landmarks(frames)
    )
    both = found & real_landmarks[1] & valid
    if both.any():
        scores["lmd_mouth"] = float(
            np.mean(
                metrics.landmark_distance(landmarks[both], real_landmarks[0][both], points="mouth")
            )
        )
        scores["lmd_face"] = float(
            np.mean(
                metrics.landmark_distance(landmarks[both], real_landmarks[0][both], points="face")
            )
        )
    scores["landmarks_found"] = float(np.mean(found))
    if identity_embedding is not None:
        sample = frames[:: settings.identity_every]
        embeddings = metrics.face_embeddings(sample)
        scores["identity_distance"] = float(
            np.mean(np.linalg.norm(embeddings - identity_embedding[None], axis=-1))
        )
    readings = None
    if au_classifier is not None:
        readings = np.asarray(au_classifier.predict(frames, batch_size=64, verbose=0))
    if sync_expert is not None:
        result = sync.sync_scores(sync_expert, frames, utterance["audio_features"])
        scores.update(
            {
                "lse_d": result["lse_d"],
                "lse_c": result["lse_c"],
                "sync_offset": float(result["offset"]),
            }
        )
    return scores, readings


def _finite_mean(values):
    """Mean of PSNR values; identical images (inf) are capped at 100 dB."""
    values = np.minimum(np.asarray(values, dtype=np.float64), 100.0)
    return float(np.mean(values))


def evaluate(
    systems,
    prepared_dir,
    out_dir,
    au_classifier=None,
    sync_expert=None,
    settings=EvaluationSettings(),
    config=AutalkConfig(),
    progress=True,
    baselines=True,
    log=print,
):
    """Score talkers and the baselines on a prepared split; write JSON, Markdown and plots.

    Args:
        systems: `{name: AUTalker}` (the rows of the table, in order).
        prepared_dir: the folder `autalk prepare` wrote.
        out_dir: where `metrics.json`, `metrics.md`, `au_curves.png` and
            `frame_strip.png` go (created; existing files are replaced
            atomically).
        au_classifier: a frozen `AUClassifier` (None: no AU scores).
        sync_expert: a trained `SyncExpert` (None: no sync scores).
        settings: `EvaluationSettings`.
        config: the `AutalkConfig` the corpus was prepared with.
        progress: a tqdm bar over utterances.
        baselines: add the static and ground-truth rows.
        log: `print`-like.

    Returns:
        The report dict written to `metrics.json`.

    Example:
    ```python
    report = evaluate({"full": load_talker("demo")}, "prepared/demo", "runs/eval",
                      au_classifier=load_au_classifier("au.keras"),
                      sync_expert=load_sync_expert("sync.keras"))
    ```
    """
    from keras_autalk.datasets import pipeline

    pipeline.list_shards(prepared_dir, settings.split)  # no shards: one sentence, no bar
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    names = list(systems) + ([STATIC, GROUND_TRUTH] if baselines else [])
    started = time.perf_counter()
    scores = _score_split(
        systems,
        names,
        prepared_dir,
        settings,
        config,
        au_classifier,
        sync_expert,
        baselines,
        progress,
    )
    if scores.example is None:
        raise AutalkError(
            f"The '{settings.split}' split of '{prepared_dir}' has no utterance "
            "with a face to evaluate."
        )
    seconds = time.perf_counter() - started
    action_units = tuple(config.action_units)
    report = {
        "prepared": str(prepared_dir),
        "split": settings.split,
        "utterances": len(scores.per_utterance[names[0]]),
        "frames": int(sum(len(t) for t in scores.truth)),
        "settings": dataclasses.asdict(settings),
        "seconds": round(seconds, 1),
        "systems": {name: _system_entry(name, scores, action_units, settings) for name in names},
    }
    _write_outputs(report, scores, action_units, out_dir)
    log(
        f"Evaluated {report['utterances']} utterances ({report['frames']} frames) of "
        f"'{settings.split}' in {seconds:.0f} s; wrote {out_dir / 'metrics.md'}."
    )
    return report


@dataclasses.dataclass
class _SplitScores:
    """What `evaluate` gathers over a split: per system, per utterance, and the truth."""

    per_utterance: dict
    readings: dict
    predicted_curves: dict
    truth: list = dataclasses.field(default_factory=list)
    truth_mask: list = dataclasses.field(default_factory=list)
    example: tuple = None


def _score_split(
    systems, names, prepared_dir, settings, config, au_classifier, sync_expert, baselines, progress
):
    """Render and score every system on every utterance of the split; a `_SplitScores`."""
    from tqdm import tqdm

    scores = _SplitScores(
        per_utterance={name: [] for name in names},
        readings={name: [] for name in names},
        predicted_curves={name: [] for name in systems},
    )
    utterances = iter_utterances(
        prepared_dir, settings.split, settings.max_utterances, config, every=settings.every
    )
    for utterance in tqdm(
        utterances, desc="evaluate", unit="utt", disable=not progress, total=settings.max_utterances
    ):
        index = identity_frame_index(utterance["landmarks"], utterance["face_mask"])
        identity_image = utterance["frames"][index]
        real_landmarks = metrics.crop_landmarks(utterance["frames"])
        identity_embedding = metrics.face_embeddings(identity_image[None])[0]
        rendered = _render_systems(
            systems, utterance, identity_image, baselines, scores.predicted_curves
        )
        for name in names:
            utterance_scores, reading = score_utterance(
                rendered[name],
                utterance,
                real_landmarks,
                settings,
                au_classifier=au_classifier,
                sync_expert=sync_expert,
                identity_embedding=identity_embedding,
            )
            utterance_scores["utterance_id"] = utterance["utterance_id"]
            scores.per_utterance[name].append(utterance_scores)
            if reading is not None:
                scores.readings[name].append(reading)
        scores.truth.append(utterance["au_intensity"])
        scores.truth_mask.append(utterance["au_mask"] * utterance["face_mask"])
        if scores.example is None:
            scores.example = (utterance, rendered, index)
    return scores


def _render_systems(systems, utterance, identity_image, baselines, predicted_curves):
    """`{name: frames}` of every system (and the baselines); appends each system's AU curves."""
    rendered = {}
    for name, model in systems.items():
        rendered[name], curves = run_talker(model, identity_image, utterance["audio_features"])
        predicted_curves[name].append(curves)
    if baselines:
        rendered[STATIC] = np.repeat(identity_image[None], len(utterance["frames"]), axis=0)
        rendered[GROUND_TRUTH] = utterance["frames"]
    return rendered


def _system_entry(name, scores, action_units, settings):
    """The report's entry of one system: mean scores, AU scores, the per-utterance scores."""
    truth, truth_mask = np.concatenate(scores.truth), np.concatenate(scores.truth_mask)
    mean = _mean_scores(scores.per_utterance[name])
    if scores.readings[name]:
        au = metrics.au_metrics(
            np.concatenate(scores.readings[name]),
            truth,
            action_units,
            threshold=settings.au_threshold,
            mask=truth_mask,
        )
        mean.update(
            {"au_pearson": au["mean_pearson"], "au_mae": au["mean_mae"], "au_f1": au["mean_f1"]}
        )
    else:
        au = None
    entry = {"mean": mean, "au": au, "utterances": scores.per_utterance[name]}
    if name in scores.predicted_curves:
        entry["audio2au"] = metrics.au_metrics(
            np.concatenate(scores.predicted_curves[name]),
            truth,
            action_units,
            threshold=settings.au_threshold,
            mask=truth_mask,
        )
    return entry


def _write_outputs(report, scores, action_units, out_dir):
    """Write `metrics.json`, `metrics.md` (atomically) and the two plots."""
    with atomic_output(out_dir / "metrics.json") as temporary:
        pathlib.Path(temporary).write_text(json.dumps(_jsonable(report), indent=1))
    with atomic_output(out_dir / "metrics.md") as temporary:
        pathlib.Path(temporary).write_text(markdown_table(report))
    plot_au_curves(
        scores.example,
        scores.predicted_curves,
        scores.readings,
        action_units,
        out_dir / "au_curves.png",
    )
    plot_frame_strip(scores.example, out_dir / "frame_strip.png")


def _mean_scores(rows):
    keys = [key for key in rows[0] if key != "utterance_id"] if rows else []
    keys += [key for row in rows for key in row if key not in keys and key != "utterance_id"]
    return {key: float(np.mean([row[key] for row in rows if key in row])) for key in keys}


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.floating, float)):
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def markdown_table(report):
    """The report's mean scores as a Markdown table (one row per system).

    Example:
    >>> report = {"utterances": 1, "frames": 2, "split": "test", "systems": {
    ...     "static": {"mean": {"psnr": 30.0}}}}
    >>> print(markdown_table(report).splitlines()[2])
    | system | PSNR (dB) |
    """
    systems = report["systems"]
    present = [
        column
        for column in TABLE_COLUMNS
        if any(column[0] in entry["mean"] for entry in systems.values())
    ]
    lines = [
        f"Split '{report['split']}': {report['utterances']} utterances, {report['frames']} frames.",
        "",
        "| system | " + " | ".join(title for _, title, _, _ in present) + " |",
        "| --- | " + " | ".join("---:" for _ in present) + " |",
    ]
    for name, entry in systems.items():
        cells = []
        for key, _, fmt, _ in present:
            value = entry["mean"].get(key)
            exact = name == GROUND_TRUTH and key in (
                "psnr",
                "ssim",
                "mouth_psnr",
                "mouth_ssim",
                "lmd_mouth",
                "lmd_face",
            )
            cells.append("(exact)" if exact else "—" if value is None else fmt.format(value))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Better: " + "; ".join(f"{title} {better}" for _, title, _, better in present) + ".",
    ]
    return "\n".join(lines) + "\n"


def plot_au_curves(example, predicted_curves, readings, action_units, path):
    """Predicted vs true AU curves of the first utterance (one panel per AU)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    utterance = example[0]
    truth = utterance["au_intensity"]
    figure, axes = plt.subplots(
        len(action_units), 1, figsize=(8, 1.6 * len(action_units)), sharex=True
    )
    axes = np.atleast_1d(axes)
    for column, (axis, unit) in enumerate(zip(axes, action_units)):
        axis.plot(truth[:, column], color="black", linewidth=2, label="ground truth")
        for name, curves in predicted_curves.items():
            axis.plot(curves[0][:, column], linewidth=1, label=f"{name}: Audio2AU")
        for name, reading in readings.items():
            if reading and name != GROUND_TRUTH:
                axis.plot(
                    reading[0][:, column],
                    linestyle="--",
                    linewidth=1,
                    label=f"{name}: AU classifier on frames",
                )
        axis.set_ylabel(f"AU{unit}")
        axis.set_ylim(-0.2, 5.2)
    axes[0].legend(fontsize=6, ncol=2, loc="upper right")
    axes[-1].set_xlabel("frame (25 fps)")
    figure.suptitle(f"AU curves, {utterance['utterance_id']}")
    figure.tight_layout()
    with atomic_output(path) as temporary:
        figure.savefig(temporary, format="png", dpi=100)
    plt.close(figure)


def plot_frame_strip(example, path, count=8):
    """Rows of frames (real, then each system) of the first utterance."""
    from PIL import Image

    utterance, rendered, _ = example
    picks = np.linspace(0, len(utterance["frames"]) - 1, count).round().astype(int)
    rows = [utterance["frames"][picks]] + [
        frames[picks] for name, frames in rendered.items() if name != GROUND_TRUTH
    ]
    strip = np.concatenate([np.concatenate(list(row), axis=1) for row in rows], axis=0)
    with atomic_output(path) as temporary:
        Image.fromarray((np.clip(strip, 0, 1) * 255).round().astype(np.uint8)).save(
            temporary, format="PNG"
        )


def check_out_dir(out_dir):
    """The output folder must be creatable: its parent must exist."""
    out_dir = pathlib.Path(out_dir)
    if out_dir.is_dir():
        return out_dir
    if out_dir.exists():
        raise AutalkError(f"The output '{out_dir}' exists and is not a folder.")
    return check_output_path(out_dir, "output folder")


__all__ = [
    "EvaluationSettings",
    "evaluate",
    "identity_frame_index",
    "iter_utterances",
    "load_talker",
    "markdown_table",
    "run_talker",
    "score_utterance",
]


def parse_model_specs(specs):
    """`["demo", "conv=runs/conv/talker.keras"]` -> `{"demo": "demo", "conv": "runs/..."}`.

    A spec without `NAME=` is named after what it points to (the run folder
    of a `talker.keras`, else the spec itself).

    Example:
    >>> parse_model_specs(["full=runs/full/talker.keras", "runs/conv/talker.keras"])
    {'full': 'runs/full/talker.keras', 'conv': 'runs/conv/talker.keras'}
    """
    named = {}
    for spec in specs:
        name, separator, target = spec.partition("=")
        if not separator:
            path = pathlib.Path(spec)
            name, target = (path.parent.name if path.suffix == ".keras" else path.name), spec
        if not name or not target:
            raise AutalkError(f"--model '{spec}' should be MODEL or NAME=MODEL.")
        if name in named or name in (STATIC, GROUND_TRUTH):
            raise AutalkError(f"Two rows would be called '{name}'; name them with NAME=MODEL.")
        named[name] = target
    return named
