"""Turn corpus videos into sharded TFRecords of aligned face crops.

`prepare_utterance` reads one video (and its separate audio, if any), tracks
the face through every frame with dlib, aligns and crops it, computes the
per-frame audio features and attaches AU labels; `prepare_corpus` does that
for a whole corpus with several processes and writes

```
out_dir/
  train/s1-00000.tfrecord         # DataConfig.utterances_per_shard utterances each
  test/s1-00000.tfrecord
  reports/s1.json                 # per speaker: counts, skipped files and why
  reports/shards/train/s1-00000.json  # per shard: what it holds (for resuming)
  manifest.json                   # counts per split, config, the split, corpus
```

Every file is written under a temporary name and renamed when complete. A
run that is killed and started again keeps the finished shards and prepares
only the rest; several machines can prepare one corpus side by side into one
folder with `num_shards` / `shard_index` (speaker `k` of the sorted speakers
belongs to work shard `k % num_shards`).

Bad input never stops the run: a corrupt or truncated video, a video
without audio, silent audio or a video with no face in any frame is skipped
with the reason in the speaker's report; frames without a face are kept with
`face_mask` 0; audio longer or shorter than the video is trimmed or padded
to the video's length and an unusable AU CSV leaves the labels masked, both
with a note in the report.
"""

import collections
import concurrent.futures
import dataclasses
import hashlib
import json
import math
import multiprocessing
import os
import pathlib
import pickle
import re
import threading
import time
from typing import Dict, List, Optional

import numpy as np
from PIL import Image
from skimage import transform as sktransform
from tqdm.auto import tqdm

from keras_autalk.config import AutalkConfig
from keras_autalk.datasets import tfrecords  # noqa: I001 - first: imports TensorFlow quietly
from keras_autalk.errors import AutalkError, InputFileError, NoFaceError
from keras_autalk.features import log_mel
from keras_autalk.files import atomic_output
from keras_autalk.media import audio, video
from keras_autalk.media import face as face_lib

SHARD_SUFFIX = ".tfrecord"
REPORTS_FOLDER = "reports"
MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 1
DEFAULT_SPLIT = "train"

# A speaker's files are named after it; anything but these characters
# (e.g. the "/" of TCD-TIMIT's "volunteers/01M") becomes "_".
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]")
_SPLIT_NAME = re.compile(r"^[A-Za-z0-9_-]+$")

# Shrink the source region first when the crop is smaller than this fraction
# of it, so the bilinear warp does not alias (large faces in HD video).
_ANTI_ALIAS_BELOW = 0.75
# Faces are tracked in a region scaled so the face is this wide (dlib's HOG
# window is 80 pixels).
_TRACK_FACE_WIDTH = 110
# Where dlib's HOG detector puts its box relative to the landmarks, in units
# of the inter-ocular distance: box centre minus the stable points' centroid
# (x, y), then width and height. The mean over detections on the two bundled
# photos and the demo corpus's identities (spread about 0.05 in the offsets
# and 0.15 in the size).
_CANONICAL_BOX = (0.0, 0.38, 2.3, 2.3)


@dataclasses.dataclass
class PreparedUtterance:
    """What `prepare_utterance` made of one utterance.

    Attributes:
        example: the record's fields (see `keras_autalk.datasets.tfrecords`), or
            None when the utterance was skipped.
        skipped: why the utterance was skipped (one sentence), or None.
        notes: what was fixed or masked on the way (audio trimmed, frames
            without a face, AU labels unavailable, ...).
        stats: counts for the report: `num_frames`, `frames_without_face`,
            `au_source` ("openface", "estimator" or "none").
    """

    example: Optional[dict]
    skipped: Optional[str] = None
    notes: List[str] = dataclasses.field(default_factory=list)
    stats: Dict[str, object] = dataclasses.field(default_factory=dict)

    @property
    def ok(self):
        return self.example is not None


# --------------------------------------------------------------------------
# One utterance.


def _frame_times_resampler(source_fps, target_fps):
    """A function `source_index -> number of output frames it becomes`.

    Output frame `k` shows the source frame on screen at its centre
    `(k + 0.5) / target_fps`, so 29.97 fps video becomes 25 fps by dropping
    frames evenly (and slower video repeats frames).
    """
    ratio = source_fps / target_fps
    state = {"next": 0}

    def repeats(source_index):
        count = 0
        while math.floor((state["next"] + 0.5) * ratio + 1e-9) <= source_index:
            if math.floor((state["next"] + 0.5) * ratio + 1e-9) == source_index:
                count += 1
            state["next"] += 1
        return count

    return repeats


class _FaceTracker:
    """Landmarks frame after frame: detect once, then follow the face.

    After a face is found in the whole frame, each next frame is searched
    only in a region around the previous box, scaled so the face is about
    `_TRACK_FACE_WIDTH` pixels wide (a few ms instead of a full-frame
    detection). That search only confirms the face is still there: the
    shape predictor returns a face-like shape even on a blank frame. The
    landmarks are then fitted in a box placed around the previous landmarks
    the way the first detection's box sat around its landmarks, which keeps
    them steadier than the detector's boxes, quantised by its scale pyramid,
    would. When the face is not found near its last place, or the fit fails
    `check_landmarks`, the whole frame is searched again.
    """

    def __init__(self, config):
        self.config = config
        self.local_config = dataclasses.replace(config, upsample=0)
        self.landmarks = None
        self.box = None
        self.box_relation = None
        self.detections = 0

    @staticmethod
    def _frame_of(landmarks):
        centre = landmarks[face_lib.STABLE_POINTS].mean(axis=0)
        eyes = landmarks[face_lib.RIGHT_EYE].mean(axis=0) - landmarks[face_lib.LEFT_EYE].mean(
            axis=0
        )
        return centre, max(1.0, float(np.linalg.norm(eyes)))

    def _remember(self, box, landmarks):
        # Not the detection's own box: on some faces (wrinkles, a beard, a
        # pursed mouth) the HOG detector alternates between a tight and a
        # loose box, and a loose box makes the predictor put the mouth on the
        # chin for every later frame. A box placed canonically around the
        # stable points is what the predictor fits best.
        self.box_relation = (np.array(_CANONICAL_BOX[:2]), *_CANONICAL_BOX[2:])

    def _box_around(self, landmarks):
        centre, scale = self._frame_of(landmarks)
        offset, width, height = self.box_relation
        box_centre = centre + offset * scale
        return (
            int(round(box_centre[0] - width * scale / 2)),
            int(round(box_centre[1] - height * scale / 2)),
            int(round(box_centre[0] + width * scale / 2)),
            int(round(box_centre[1] + height * scale / 2)),
        )

    def _face_still_there(self, frame, box):
        """Whether the detector finds a face overlapping `box` near it."""
        left, top, right, bottom = box
        width, height = right - left, bottom - top
        region_left = max(0, int(left - 0.5 * width))
        region_top = max(0, int(top - 0.5 * height))
        region_right = min(frame.shape[1], int(right + 0.5 * width))
        region_bottom = min(frame.shape[0], int(bottom + 0.5 * height))
        region = frame[region_top:region_bottom, region_left:region_right]
        scale = _TRACK_FACE_WIDTH / max(1, width)
        if 0.8 <= scale <= 1.25:
            scale, small = 1.0, region  # already a size the detector handles
        else:
            small_size = (round(region.shape[1] * scale), round(region.shape[0] * scale))
            if min(small_size) < 40:
                return False
            small = np.asarray(Image.fromarray(region).resize(small_size, Image.BILINEAR))
        for (x0, y0, x1, y1), _ in face_lib.detect_faces(small, self.local_config):
            found = (
                x0 / scale + region_left,
                y0 / scale + region_top,
                x1 / scale + region_left,
                y1 / scale + region_top,
            )
            if face_lib.box_overlap(found, box) > 0.3:
                return True
        return False

    def __call__(self, frame):
        """The `(68, 2)` landmarks of the face in `frame`, or None."""
        if self.landmarks is not None:
            box = self._box_around(self.landmarks)
            if self._face_still_there(frame, box):
                landmarks = face_lib.fit_landmarks(frame, box)
                if face_lib.check_landmarks(landmarks, box) is None:
                    self.landmarks = landmarks
                    return landmarks
        self.detections += 1
        try:
            found = face_lib.find_face(frame, face_lib.without_usability_limits(self.config))
        except NoFaceError:
            self.landmarks = None
            return None
        self._remember(found.box, found.landmarks)
        self.landmarks = found.landmarks
        return found.landmarks


def crop_face(frame, matrix, crop_size):
    """Warp `frame` by the image-to-crop `matrix` into a `crop_size` square crop.

    Only the part of the frame the crop covers is warped, and a much larger
    face is first shrunk with anti-aliasing, so this stays fast and clean on
    HD video.

    Args:
        frame: uint8 `(h, w, 3)`.
        matrix: `(2, 3)` similarity transform from frame to crop pixels.
        crop_size: side of the output in pixels.

    Returns:
        uint8 `(crop_size, crop_size, 3)`.
    """
    height, width = frame.shape[:2]
    inverse = face_lib.invert_transform(matrix)
    corners = face_lib.apply_transform(
        inverse, [[0, 0], [crop_size, 0], [0, crop_size], [crop_size, crop_size]]
    )
    left = int(np.clip(np.floor(corners[:, 0].min()) - 2, 0, width - 1))
    top = int(np.clip(np.floor(corners[:, 1].min()) - 2, 0, height - 1))
    right = int(np.clip(np.ceil(corners[:, 0].max()) + 3, left + 1, width))
    bottom = int(np.clip(np.ceil(corners[:, 1].max()) + 3, top + 1, height))
    region = frame[top:bottom, left:right]
    # Region pixel p sits at frame pixel p + (left, top).
    linear = matrix[:, :2]
    offset = matrix[:, 2] + linear @ np.array([left, top], dtype=np.float64)
    scale = math.sqrt(abs(np.linalg.det(linear)))
    if scale < _ANTI_ALIAS_BELOW and min(region.shape[:2]) > 8:
        factor = min(1.0, 1.5 * scale)
        small_size = (
            max(2, round(region.shape[1] * factor)),
            max(2, round(region.shape[0] * factor)),
        )
        # PIL's bilinear filter widens with the shrink factor: anti-aliased.
        region = np.asarray(
            Image.fromarray(np.ascontiguousarray(region)).resize(small_size, Image.BILINEAR)
        )
        # Pixel centres map as big = (small + 0.5) / f - 0.5 per axis.
        factors = np.array([small_size[0] / (right - left), small_size[1] / (bottom - top)])
        offset = offset + linear @ (0.5 / factors - 0.5)
        linear = linear / factors[None, :]
    to_crop = np.hstack([linear, offset[:, None]])
    inverse = np.vstack([face_lib.invert_transform(to_crop), [0.0, 0.0, 1.0]])
    crop = sktransform.warp(
        region,
        sktransform.AffineTransform(matrix=inverse),
        output_shape=(crop_size, crop_size),
        order=1,
        mode="edge",
        preserve_range=True,
    )
    return np.clip(np.rint(crop), 0, 255).astype(np.uint8)


def _fallback_matrix(frame_shape, crop_size):
    """Image-to-crop transform of the frame's centred square (no face known yet)."""
    height, width = frame_shape[:2]
    scale = crop_size / min(height, width)
    return np.array(
        [
            [scale, 0.0, crop_size / 2.0 - scale * width / 2.0],
            [0.0, scale, crop_size / 2.0 - scale * height / 2.0],
        ]
    )


def _smoothed_landmarks(raw, index, half_window):
    """Mean landmarks over the centred window, within the run of found faces."""
    chosen = [raw[index]]
    for step in (-1, 1):
        position = index + step
        while abs(position - index) <= half_window and 0 <= position < len(raw):
            if raw[position] is None:
                break
            chosen.append(raw[position])
            position += step
    return np.mean(chosen, axis=0)


def _track_and_crop(frames, config):
    """Track the face in `frames` and crop every frame; return arrays + stats.

    Frames are buffered only for half the smoothing window, so memory stays
    bounded on long videos.
    """
    face_config = config.face
    size = face_config.crop_size
    half = config.data.landmark_smoothing // 2
    tracker = _FaceTracker(face_config)
    placeholder = face_lib.template_points(face_config)
    raw, crops, crop_landmarks, face_mask = [], [], [], []
    pending = collections.deque()
    state = {"matrix": None}

    def finish(index, frame):
        if raw[index] is None:
            matrix = state["matrix"]
            if matrix is None:
                matrix = _fallback_matrix(frame.shape, size)
            crop_landmarks.append(placeholder)
            face_mask.append(0.0)
        else:
            smoothed = _smoothed_landmarks(raw, index, half)
            matrix = face_lib.alignment_matrix(smoothed, face_config)
            state["matrix"] = matrix
            crop_landmarks.append(face_lib.apply_transform(matrix, raw[index]))
            face_mask.append(1.0)
        crops.append(crop_face(frame, matrix, size))

    for index, frame in enumerate(frames):
        raw.append(tracker(frame))
        pending.append((index, frame))
        while pending and pending[0][0] + half <= index:
            finish(*pending.popleft())
    while pending:
        finish(*pending.popleft())
    return (
        np.stack(crops) if crops else np.zeros((0, size, size, 3), np.uint8),
        np.asarray(crop_landmarks, dtype=np.float32).reshape(-1, 68, 2),
        np.asarray(face_mask, dtype=np.float32),
        tracker.detections,
    )


def _resampled_frames(video_path, source_fps, target_fps, notes):
    """Yield the video's frames at `target_fps` (dropping/repeating evenly)."""
    if abs(source_fps - target_fps) < 1e-3:
        yield from video.iter_frames(video_path)
        return
    notes.append(f"the video's {source_fps:.3f} fps were resampled to {target_fps:g} fps")
    repeats = _frame_times_resampler(source_fps, target_fps)
    for index, frame in enumerate(video.iter_frames(video_path)):
        for _ in range(repeats(index)):
            yield frame


def _load_waveform(utterance, has_audio_track, config):
    """The utterance's speech at `config.audio.sample_rate`, or raise InputFileError."""
    if utterance.audio_path is not None:
        return audio.load_audio(utterance.audio_path, config.audio)
    if not has_audio_track:
        raise InputFileError(
            f"The video '{utterance.video_path}' has no audio track and no separate "
            "audio file was found."
        )
    return audio.load_audio(utterance.video_path, config.audio, backend="ffmpeg")


def _fit_waveform(waveform, num_frames, config, notes):
    """Trim or pad `waveform` to `num_frames` video frames; note a real mismatch."""
    target = int(round(num_frames * config.audio.sample_rate / config.audio.fps))
    difference = len(waveform) - target
    if abs(difference) > config.audio.samples_per_frame:
        seconds = abs(difference) / config.audio.sample_rate
        if difference > 0:
            notes.append(
                f"the audio is {seconds:.2f} s longer than the video; trimmed to the video's length"
            )
        else:
            notes.append(
                f"the audio is {seconds:.2f} s shorter than the video; "
                "padded with silence to the video's length"
            )
    if difference >= 0:
        return waveform[:target]
    return np.pad(waveform, (0, -difference))


def load_au_estimator(au_estimator):
    """An AU estimator object from a path (JSON), an estimator, or None."""
    if au_estimator is None or hasattr(au_estimator, "predict"):
        return au_estimator
    from keras_autalk.media import au_labels

    return au_labels.GeometricAUEstimator.load(au_estimator)


def _au_labels(utterance, crop_landmarks, face_mask, config, au_estimator, resampled, notes):
    """`(intensity (T, A), mask (T,), source)` for the utterance."""
    num_frames = len(face_mask)
    action_units = tuple(config.action_units)
    if utterance.au_csv_path is not None:
        from keras_autalk.media import au_labels

        try:
            # A CSV of a video whose frames were resampled is placed by time.
            labels = au_labels.read_openface_csv(
                utterance.au_csv_path,
                action_units,
                num_frames=num_frames,
                fps=config.audio.fps if resampled else None,
            )
            return (
                np.asarray(labels.intensity, np.float32),
                np.asarray(labels.mask, np.float32),
                "openface",
            )
        except AutalkError as error:
            notes.append(f"the AU labels were not used: {error}")
    if au_estimator is not None:
        known = tuple(int(unit) for unit in getattr(au_estimator, "action_units", action_units))
        missing = [unit for unit in action_units if unit not in known]
        if missing:
            notes.append(
                "the AU estimator does not estimate "
                + ", ".join(f"AU{unit:02d}" for unit in missing)
                + "; AU labels are masked"
            )
        else:
            # Only frames with a face: the estimator's clip baseline must not
            # see the placeholder landmarks of the others.
            found = face_mask > 0.5
            predicted = np.zeros((num_frames, len(action_units)), np.float32)
            columns = [known.index(unit) for unit in action_units]
            estimated = np.asarray(au_estimator.predict(crop_landmarks[found]), np.float32)
            predicted[found] = estimated[:, columns]
            return predicted, face_mask.copy(), "estimator"
    return (
        np.zeros((num_frames, len(action_units)), np.float32),
        np.zeros(num_frames, np.float32),
        "none",
    )


def prepare_utterance(utterance, config=AutalkConfig(), au_estimator=None):
    """Track, align and crop the face of one utterance; compute its features.

    Frames are read at `config.audio.fps` (other rates are resampled). The
    face is detected on the first frame and tracked (refit from the previous
    landmarks, re-detected when the fit fails the plausibility check); frames
    without a face get `face_mask` 0. The alignment uses the stable points
    averaged over `config.data.landmark_smoothing` frames, so the crop does
    not jitter; the stored landmarks are each frame's own, in crop pixels.
    AU labels come from the utterance's OpenFace CSV, else from
    `au_estimator` on the crop landmarks, else they are masked.

    Args:
        utterance: a `keras_autalk.corpora.readers.Utterance`.
        config: `AutalkConfig`.
        au_estimator: None, a fitted `GeometricAUEstimator` (anything with
            `predict(landmarks)` and `action_units`), or the path of its JSON.

    Returns:
        A `PreparedUtterance`; bad input gives one with `example=None` and
        the reason in `skipped` instead of raising.

    Example:
    ```python
    prepared = prepare_utterance(read_corpus("grid", "GRID")[0])
    if prepared.ok:
        record = encode_example(prepared.example)
    ```
    """
    au_estimator = load_au_estimator(au_estimator)
    notes = []
    try:
        info = video.video_info(utterance.video_path, count_frames=False)
        waveform = _load_waveform(utterance, info.has_audio, config)
        audio.check_speech(waveform, config.audio, name=f"The audio of '{utterance.utterance_id}'")
        frames = _resampled_frames(utterance.video_path, info.fps, config.audio.fps, notes)
        crops, crop_landmarks, face_mask, detections = _track_and_crop(frames, config)
    except AutalkError as error:
        return PreparedUtterance(None, skipped=str(error), notes=notes)
    num_frames = len(crops)
    if num_frames == 0 or face_mask.sum() == 0:
        return PreparedUtterance(
            None,
            notes=notes,
            skipped=f"No face was found in any of the {num_frames} frames of "
            f"'{utterance.video_path}'.",
        )
    without_face = int(num_frames - face_mask.sum())
    if without_face:
        notes.append(f"no face was found in {without_face} of {num_frames} frames (face_mask 0)")
    waveform = _fit_waveform(waveform, num_frames, config, notes)
    features = log_mel.audio_features(waveform, config.audio, num_frames=num_frames)
    resampled = abs(info.fps - config.audio.fps) >= 1e-3
    au_intensity, au_mask, au_source = _au_labels(
        utterance, crop_landmarks, face_mask, config, au_estimator, resampled, notes
    )
    example = {
        "corpus": utterance.corpus,
        "speaker": utterance.speaker,
        "utterance_id": utterance.utterance_id,
        "num_frames": num_frames,
        "frames": crops,
        "audio_features": features.astype(np.float32),
        "waveform": waveform.astype(np.float32),
        "au_intensity": au_intensity,
        "au_mask": au_mask,
        "face_mask": face_mask,
        "landmarks": crop_landmarks,
        "action_units": np.asarray(config.action_units, np.int64),
    }
    stats = {
        "num_frames": num_frames,
        "frames_without_face": without_face,
        "face_detections": detections,
        "au_source": au_source,
    }
    return PreparedUtterance(example, notes=notes, stats=stats)


# --------------------------------------------------------------------------
# A whole corpus.


def speaker_file_name(speaker):
    """The name a speaker's shard and report files start with ("volunteers_01M")."""
    return _UNSAFE_NAME.sub("_", speaker) or "_"


def _fingerprint(config, au_estimator):
    """Short hash of everything that changes what a shard holds."""
    content = json.dumps(dataclasses.asdict(config), sort_keys=True)
    if au_estimator is not None:
        if isinstance(au_estimator, (str, os.PathLike)):
            content += pathlib.Path(au_estimator).read_text()
        elif hasattr(au_estimator, "to_dict"):
            content += json.dumps(au_estimator.to_dict(), sort_keys=True)
        else:
            content += hashlib.sha1(pickle.dumps(au_estimator)).hexdigest()
    return hashlib.sha1(content.encode("utf-8")).hexdigest()[:16]


def _write_json(path, content):
    with atomic_output(path, "report") as partial:
        partial.write_text(json.dumps(content, indent=1, sort_keys=False) + "\n")


def _read_json(path):
    try:
        return json.loads(pathlib.Path(path).read_text())
    except (OSError, ValueError):
        return None


@dataclasses.dataclass
class _ShardJob:
    split: str
    speaker: str
    index: int
    utterances: list

    @property
    def name(self):
        return f"{speaker_file_name(self.speaker)}-{self.index:05d}"

    def shard_path(self, out_dir):
        return out_dir / self.split / (self.name + SHARD_SUFFIX)

    def part_path(self, out_dir):
        return out_dir / REPORTS_FOLDER / "shards" / self.split / (self.name + ".json")


def _plan(utterances, split_fn, per_shard):
    """`{speaker: [_ShardJob, ...]}`: each speaker's utterances by split, chunked."""
    by_speaker = collections.defaultdict(lambda: collections.defaultdict(list))
    for utterance in utterances:
        split = DEFAULT_SPLIT if split_fn is None else split_fn(utterance)
        if not isinstance(split, str) or not _SPLIT_NAME.match(split) or split == REPORTS_FOLDER:
            raise AutalkError(
                f"The split of '{utterance.utterance_id}' is {split!r}; a split must be a "
                "name of letters, digits, '_' or '-' (e.g. 'train', 'test')."
            )
        by_speaker[utterance.speaker][split].append(utterance)
    plan = {}
    for speaker, splits in by_speaker.items():
        jobs = []
        for split in sorted(splits):
            members = splits[split]
            for start in range(0, len(members), per_shard):
                jobs.append(
                    _ShardJob(
                        split, speaker, start // per_shard, members[start : start + per_shard]
                    )
                )
        plan[speaker] = jobs
    return plan


def _is_finished(job, out_dir, fingerprint):
    part = _read_json(job.part_path(out_dir))
    if part is None or part.get("fingerprint") != fingerprint:
        return False
    if part.get("utterances") != [u.utterance_id for u in job.utterances]:
        return False
    return part.get("examples", 0) == 0 or job.shard_path(out_dir).is_file()


def _clean_speaker_files(out_dir, speaker, jobs):
    """Remove a speaker's partial files and shards no job of this plan makes."""
    stem = speaker_file_name(speaker)
    wanted = {job.shard_path(out_dir) for job in jobs} | {job.part_path(out_dir) for job in jobs}
    pattern = re.compile(re.escape(stem) + r"-\d{5}")
    for folder in [path for path in out_dir.iterdir() if path.is_dir()] + [
        *(out_dir / REPORTS_FOLDER / "shards").glob("*")
    ]:
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            name = path.name
            partial = name.startswith(f".{stem}-") and ".partial" in name
            stale = (
                pattern.fullmatch(path.stem)
                and path.suffix in (SHARD_SUFFIX, ".json")
                and path not in wanted
            )
            if partial or stale:
                path.unlink()
    reports = out_dir / REPORTS_FOLDER
    for path in reports.glob(f".{stem}.*partial*"):
        path.unlink()


def _exit_with_parent(parent_pid):
    """Stop this worker when the parent is gone (killed with SIGKILL, say).

    A killed parent cannot stop its pool, and an orphaned worker would go
    on holding memory and a half-done utterance.
    """
    while True:
        time.sleep(1.0)
        if os.getppid() != parent_pid:
            os._exit(1)


def _worker_init(parent_pid):
    """Each worker: one TensorFlow thread (the pool provides the parallelism)."""
    threading.Thread(target=_exit_with_parent, args=(parent_pid,), daemon=True).start()
    from keras_autalk.native import import_tensorflow

    tf = import_tensorflow()
    try:
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        pass  # already initialised


def _prepare_one(arguments):
    """Worker task: prepare and serialize one utterance; never raises."""
    utterance, config, au_estimator = arguments
    try:
        prepared = prepare_utterance(utterance, config, au_estimator)
        record = None
        if prepared.ok:
            record = tfrecords.encode_example(prepared.example, config.data.jpeg_quality)
        return utterance.utterance_id, record, prepared.skipped, prepared.notes, prepared.stats
    except Exception as error:  # noqa: BLE001 - one bad file must not stop the corpus
        reason = f"Preparing it failed unexpectedly ({type(error).__name__}: {error})."
        return utterance.utterance_id, None, reason, [], {}


def _run_tasks(tasks, num_workers):
    """Yield `_prepare_one` results in task order, with `num_workers` processes."""
    if num_workers <= 1:
        for task in tasks:
            yield _prepare_one(task)
        return
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(
        num_workers, mp_context=context, initializer=_worker_init, initargs=(os.getpid(),)
    ) as executor:
        in_flight = collections.deque()
        iterator = iter(tasks)
        try:
            for task in iterator:
                in_flight.append(executor.submit(_prepare_one, task))
                if len(in_flight) >= 3 * num_workers:
                    yield in_flight.popleft().result()
            while in_flight:
                yield in_flight.popleft().result()
        except concurrent.futures.process.BrokenProcessPool as error:
            raise AutalkError(
                "A preparation worker process died (out of memory or a crash in a native "
                "library); finished shards are kept, run the same command again to resume."
            ) from error
        finally:
            for future in in_flight:
                future.cancel()


def _finish_job(job, results, out_dir, fingerprint):
    """Write a job's shard and its part report; return the part report."""
    records = [record for _, record, _, _, _ in results if record is not None]
    frames = sum(
        stats.get("num_frames", 0) for _, record, _, _, stats in results if record is not None
    )
    part = {
        "split": job.split,
        "speaker": job.speaker,
        "shard": f"{job.split}/{job.name}{SHARD_SUFFIX}" if records else None,
        "fingerprint": fingerprint,
        "utterances": [u.utterance_id for u in job.utterances],
        "examples": len(records),
        "frames": frames,
        "frames_without_face": sum(s.get("frames_without_face", 0) for *_, s in results),
        "au_source": dict(
            collections.Counter(s["au_source"] for *_, s in results if "au_source" in s)
        ),
        "skipped": [
            {"utterance_id": uid, "reason": reason}
            for uid, _, reason, _, _ in results
            if reason is not None
        ],
        "notes": [
            {"utterance_id": uid, "notes": notes} for uid, _, _, notes, _ in results if notes
        ],
    }
    job.part_path(out_dir).parent.mkdir(parents=True, exist_ok=True)
    # The part report is written before the shard gets its name: a shard
    # that exists is finished and accounted for.
    if records:
        job.shard_path(out_dir).parent.mkdir(parents=True, exist_ok=True)
        tfrecords.write_shard(
            job.shard_path(out_dir),
            records,
            before_rename=lambda: _write_json(job.part_path(out_dir), part),
        )
    else:
        _write_json(job.part_path(out_dir), part)
    return part


def _write_speaker_report(out_dir, speaker, jobs, corpus):
    """Combine a speaker's part reports into `reports/<speaker>.json`."""
    parts = [_read_json(job.part_path(out_dir)) for job in jobs]
    splits = {}
    for part in parts:
        entry = splits.setdefault(
            part["split"],
            {
                "utterances": 0,
                "examples": 0,
                "frames": 0,
                "frames_without_face": 0,
                "skipped": 0,
                "shards": [],
            },
        )
        entry["utterances"] += len(part["utterances"])
        entry["examples"] += part["examples"]
        entry["frames"] += part["frames"]
        entry["frames_without_face"] += part["frames_without_face"]
        entry["skipped"] += len(part["skipped"])
        if part["shard"]:
            entry["shards"].append(part["shard"])
    au_source = collections.Counter()
    for part in parts:
        au_source.update(part["au_source"])
    report = {
        "speaker": speaker,
        "corpus": corpus,
        "fingerprint": parts[0]["fingerprint"] if parts else None,
        "splits": splits,
        "au_source": dict(au_source),
        "skipped": [item for part in parts for item in part["skipped"]],
        "notes": [item for part in parts for item in part["notes"]],
    }
    _write_json(out_dir / REPORTS_FOLDER / f"{speaker_file_name(speaker)}.json", report)
    return report


def build_manifest(out_dir, config=AutalkConfig(), corpus=None, speakers=None, extra=None):
    """Rebuild `out_dir/manifest.json` from every speaker report present.

    Args:
        out_dir: the prepared folder.
        config: the `AutalkConfig` the shards were made with.
        corpus: the corpus name to record (default: from the reports).
        speakers: all speakers of the corpus, to say whether every one is
            prepared (several machines may each prepare a part).
        extra: more JSON-able entries for the manifest (e.g. how the split
            was made).

    Returns:
        The manifest dict (also written, atomically).
    """
    out_dir = pathlib.Path(out_dir)
    reports = []
    for path in sorted((out_dir / REPORTS_FOLDER).glob("*.json")):
        report = _read_json(path)
        if report is not None and "splits" in report:
            reports.append(report)
    splits = {}
    for report in reports:
        for split, entry in report["splits"].items():
            total = splits.setdefault(
                split,
                {
                    "speakers": [],
                    "utterances": 0,
                    "examples": 0,
                    "frames": 0,
                    "frames_without_face": 0,
                    "skipped": 0,
                    "shards": [],
                },
            )
            total["speakers"].append(report["speaker"])
            for key in ("utterances", "examples", "frames", "frames_without_face", "skipped"):
                total[key] += entry[key]
            total["shards"].extend(entry["shards"])
    prepared = sorted(report["speaker"] for report in reports)
    manifest = {
        "version": MANIFEST_VERSION,
        "corpus": corpus or (reports[0]["corpus"] if reports else None),
        "config": dataclasses.asdict(config),
        "speakers": prepared,
        "complete": None if speakers is None else set(speakers) <= set(prepared),
        "splits": {split: splits[split] for split in sorted(splits)},
        "skipped": sum(len(report["skipped"]) for report in reports),
        "au_source": dict(
            sum(
                (collections.Counter(report["au_source"]) for report in reports),
                collections.Counter(),
            )
        ),
        "schema": "keras_autalk.data.tfrecords",
    }
    if extra:
        manifest.update(extra)
    manifest = json.loads(json.dumps(manifest))  # what a reader gets back: lists, not tuples
    _write_json(out_dir / MANIFEST_NAME, manifest)
    return manifest


def prepare_corpus(
    utterances,
    out_dir,
    config=AutalkConfig(),
    split_fn=None,
    num_workers=2,
    num_shards=1,
    shard_index=0,
    progress=True,
    au_estimator=None,
    corpus=None,
    manifest_extra=None,
):
    """Prepare every utterance into sharded TFRecords, resumably, in parallel.

    Speakers are sorted and speaker `k` belongs to work shard
    `k % num_shards`; only this `shard_index`'s speakers are prepared. Each
    speaker's utterances of each split are grouped, in the given order, into
    files `out_dir/{split}/{speaker}-{NNNNN}.tfrecord` of
    `config.data.utterances_per_shard` utterances. Shards already finished
    with the same config are kept; partial files of a killed run are removed.
    Then `reports/{speaker}.json` and `manifest.json` are (re)written.

    Args:
        utterances: `Utterance`s (from `keras_autalk.corpora.readers.read_corpus`).
        out_dir: output folder (created if missing).
        config: `AutalkConfig`.
        split_fn: `utterance -> split name` (e.g. "train" / "test"); default:
            everything in "train".
        num_workers: processes (spawned); 0 or 1 prepares in this process.
        num_shards: how many machines share the corpus.
        shard_index: which of them this is (0-based).
        progress: show a tqdm progress bar.
        au_estimator: AU labels for utterances without an OpenFace CSV: a
            fitted `GeometricAUEstimator` or the path of its JSON (None:
            such utterances get `au_mask` 0).
        corpus: corpus name for the manifest (default: the utterances').
        manifest_extra: more entries for the manifest (e.g. the split's rule).

    Returns:
        The manifest dict.

    Raises:
        AutalkError: no utterances, bad shard arguments or split names, an
            unreadable estimator file.

    Example:
    ```python
    utterances = read_corpus("grid", "GRID")
    manifest = prepare_corpus(
        utterances, "prepared", split_fn=lambda u: "test" if u.speaker == "s1" else "train")
    manifest["splits"]["train"]["examples"]
    ```
    """
    utterances = list(utterances)
    if not utterances:
        raise AutalkError("There are no utterances to prepare: the corpus is empty.")
    if not (isinstance(num_shards, int) and num_shards >= 1):
        raise AutalkError(f"num_shards must be a positive integer, got {num_shards!r}.")
    if not (isinstance(shard_index, int) and 0 <= shard_index < num_shards):
        raise AutalkError(
            f"shard_index must be between 0 and {num_shards - 1}, got {shard_index!r}."
        )
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / REPORTS_FOLDER).mkdir(exist_ok=True)
    speakers = sorted({u.speaker for u in utterances})
    file_names = collections.Counter(speaker_file_name(speaker) for speaker in speakers)
    clashes = [name for name, count in file_names.items() if count > 1]
    if clashes:
        raise AutalkError(
            f"Several speakers would share the file name '{clashes[0]}'; rename them."
        )
    corpus = corpus or utterances[0].corpus
    mine = [speaker for k, speaker in enumerate(speakers) if k % num_shards == shard_index]
    plan = _plan(
        [u for u in utterances if u.speaker in set(mine)],
        split_fn,
        config.data.utterances_per_shard,
    )
    load_au_estimator(au_estimator)  # a bad estimator file stops the run here
    fingerprint = _fingerprint(config, au_estimator)
    estimator_arg = (
        str(au_estimator) if isinstance(au_estimator, (str, os.PathLike)) else au_estimator
    )

    pending_jobs = []
    done_utterances = 0
    for speaker in mine:
        _clean_speaker_files(out_dir, speaker, plan[speaker])
        for job in plan[speaker]:
            if _is_finished(job, out_dir, fingerprint):
                done_utterances += len(job.utterances)
            else:
                pending_jobs.append(job)
    remaining = collections.Counter(job.speaker for job in pending_jobs)
    for speaker in mine:
        if remaining[speaker] == 0:
            _write_speaker_report(out_dir, speaker, plan[speaker], corpus)

    tasks = [
        (utterance, config, estimator_arg) for job in pending_jobs for utterance in job.utterances
    ]
    total = done_utterances + len(tasks)
    with tqdm(
        total=total, initial=done_utterances, unit="utt", desc="Preparing", disable=not progress
    ) as bar:
        results = _run_tasks(tasks, num_workers)
        try:
            for job in pending_jobs:
                job_results = []
                for _ in job.utterances:
                    job_results.append(next(results))
                    bar.update(1)
                _finish_job(job, job_results, out_dir, fingerprint)
                remaining[job.speaker] -= 1
                if remaining[job.speaker] == 0:
                    _write_speaker_report(out_dir, job.speaker, plan[job.speaker], corpus)
        finally:
            results.close()
    return build_manifest(out_dir, config, corpus=corpus, speakers=speakers, extra=manifest_extra)
