"""Action-unit labels: OpenFace 2.x CSVs, and a geometric estimator from landmarks.

**OpenFace CSVs.** OpenFace 2.x `FeatureExtraction` writes one row per video
frame. Its header separates names with ", ", so every column after the
first has a leading space (`frame, face_id, timestamp, confidence, success,
..., AU01_r, ..., AU45_r, AU01_c, ..., AU45_c`); values follow the same
pattern. Intensities `AUxx_r` are on a 0-5 scale, occurrences `AUxx_c` are 0
or 1, and `success` is 0 where no face was tracked (its AU values are then
meaningless). `read_openface_csv` reads the configured AUs and a per-frame
mask; `write_openface_csv` writes the same format (the demo corpus stores
its ground truth with it).

**Geometric estimator.** Without OpenFace, AU intensities are estimated
from dlib's 68 landmarks: `geometric_features` measures the mouth in the
face's own frame (the stable points similarity-aligned to the face template,
lengths in units of the inter-ocular distance, so head position, size and
in-plane rotation do not change them), and `GeometricAUEstimator` maps them
linearly (ridge regression per AU) to intensities clipped to 0-5. With
`clip_baseline` it also sees each feature relative to the clip's closed-mouth
frames (a low percentile over the clip), which removes most of the
person-to-person difference in face shape. `calibrate` fits it on landmarks
with known AU intensities (the demo corpus's ground truth).

What 2-D frontal landmarks can and cannot see:

- Seen well: AU25 lips part (inner-lip gap), AU26 jaw drop (chin to nose
  distance), AU20 lip stretcher and the narrowing of AU18/AU23 (mouth width),
  AU12/AU15 corner pull up/down (corner height against the lip centre).
- Seen weakly: AU10 upper-lip raiser (upper lip to nose distance shrinks by
  a few percent of the inter-ocular distance; dlib's points on the upper lip
  also shift when the mouth opens), AU17 chin raiser (the lower lip and chin
  move up a little; the chin boss wrinkle is invisible), AU23 lip tightener
  (thinner lips; dlib's inner-lip points often merge when lips are closed).
- Hardly seen: AU14 dimpler (it tightens the corners inwards and dents the
  cheek; landmarks show only a slight change in mouth width, so its estimate
  is mostly a guess from correlated movements), and the protrusion of AU18
  pucker (depth is invisible in a frontal 2-D view).
- Estimates are relative to a person's neutral face only through the clip
  baseline; a clip that never closes the mouth reads as less open than it is.
"""

import csv
import dataclasses
import json
import math
import pathlib
import warnings
from typing import Optional, Tuple

import numpy as np
from tqdm.auto import tqdm

from keras_autalk.config import DEFAULT_ACTION_UNITS
from keras_autalk.errors import AutalkError, InputFileError, MissingDependencyError
from keras_autalk.files import atomic_output, check_input_file
from keras_autalk.media.face import STABLE_POINTS
from keras_autalk.media.face_template import TEMPLATE_68
from keras_autalk.stats import pearson

# The AUs OpenFace 2.x estimates: intensities (`_r`) and occurrences (`_c`).
OPENFACE_INTENSITY_AUS = (1, 2, 4, 5, 6, 7, 9, 10, 12, 14, 15, 17, 20, 23, 25, 26, 45)
OPENFACE_OCCURRENCE_AUS = (1, 2, 4, 5, 6, 7, 9, 10, 12, 14, 15, 17, 20, 23, 25, 26, 28, 45)
MAX_INTENSITY = 5.0
# `write_openface_csv` marks an AU as present from this intensity on, about
# where OpenFace's occurrence classifiers switch on (FACS "trace" is ~1).
OCCURRENCE_THRESHOLD = 1.0

DEFAULT_ESTIMATOR_PATH = (
    pathlib.Path(__file__).resolve().parent.parent / "assets" / "geometric_au_estimator.json"
)
_ESTIMATOR_FORMAT = "keras_autalk.geometric_au_estimator"
_ESTIMATOR_VERSION = 1


def _check_action_units(action_units):
    """`action_units` as a tuple of AU numbers, or raise `AutalkError`."""
    try:
        units = tuple(action_units)
    except TypeError:
        units = None
    if not units or not all(
        isinstance(unit, (int, np.integer)) and 1 <= unit <= 99 for unit in units
    ):
        raise AutalkError(
            f"action_units must be a non-empty sequence of AU numbers (1-99), got {action_units!r}."
        )
    if len(set(units)) != len(units):
        raise AutalkError(f"action_units lists an AU twice: {action_units!r}.")
    return tuple(int(unit) for unit in units)


def intensity_column(action_unit):
    """OpenFace's intensity column name for an AU, e.g. 25 -> "AU25_r"."""
    return f"AU{int(action_unit):02d}_r"


def occurrence_column(action_unit):
    """OpenFace's occurrence column name for an AU, e.g. 25 -> "AU25_c"."""
    return f"AU{int(action_unit):02d}_c"


@dataclasses.dataclass
class AULabels:
    """Per-frame action-unit labels of one video.

    Attributes:
        intensity: float32 `(num_frames, num_aus)`, 0-5 (0 where masked).
        occurrence: float32 `(num_frames, num_aus)` of 0/1, or None when the
            CSV has no occurrence column for some AU.
        mask: float32 `(num_frames,)`: 1 where the labels are valid, 0 where
            OpenFace lost the face or the CSV has no row for the frame.
        action_units: the AU numbers of the columns.
    """

    intensity: np.ndarray
    occurrence: Optional[np.ndarray]
    mask: np.ndarray
    action_units: Tuple[int, ...]

    @property
    def num_frames(self) -> int:
        return int(self.intensity.shape[0])


def _parse_float(cell, path, line, column):
    try:
        return float(cell)
    except ValueError:
        raise AutalkError(
            f"The OpenFace CSV '{path}' has a non-numeric value {cell.strip()!r} "
            f"in column '{column}' on line {line}."
        ) from None


def _read_columns(path, columns, optional):
    """Read named columns of a CSV as float64 arrays.

    Returns ({name: values} for `columns` and those of `optional` present,
    list of header names).
    """
    with open(path, newline="", encoding="utf-8", errors="replace") as handle:
        reader = csv.reader(handle, skipinitialspace=True)
        header = next(reader, None)
        names = [name.strip() for name in header] if header else []
        if not any(names):
            raise AutalkError(f"The OpenFace CSV '{path}' has no header line.")
        index = {name: position for position, name in enumerate(names)}
        for column in columns:
            if column not in index:
                raise AutalkError(
                    f"The OpenFace CSV '{path}' has no column '{column}'"
                    + (
                        " (is it an OpenFace 2.x FeatureExtraction output?)."
                        if column in ("frame", "success", "timestamp")
                        else f" (its AU intensity columns: "
                        f"{', '.join(n for n in names if n.endswith('_r')) or 'none'})."
                    )
                )
        wanted = list(columns) + [column for column in optional if column in index]
        values = {column: [] for column in wanted}
        for line, row in enumerate(reader, start=2):
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(names):
                raise AutalkError(
                    f"The OpenFace CSV '{path}' has {len(row)} values on line {line} "
                    f"but {len(names)} columns (is the file truncated?)."
                )
            for column in wanted:
                values[column].append(_parse_float(row[index[column]], path, line, column))
    if not values[columns[0]]:
        raise AutalkError(f"The OpenFace CSV '{path}' has a header but no rows.")
    return {column: np.asarray(found, dtype=np.float64) for column, found in values.items()}, names


def _one_row_per_frame(columns):
    """Keep, for each frame, the successful row with the highest confidence.

    OpenFace's multi-face tools write one row per face and frame; the
    single-face `FeatureExtraction` already writes one row per frame.
    """
    frames = columns["frame"]
    success = columns["success"]
    confidence = columns.get("confidence", np.zeros_like(frames))
    order = np.lexsort((-np.nan_to_num(confidence), -success, frames))
    frames_sorted = frames[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = frames_sorted[1:] != frames_sorted[:-1]
    keep = order[first]
    return {column: values[keep] for column, values in columns.items()}


def read_openface_csv(path, action_units=DEFAULT_ACTION_UNITS, num_frames=None, fps=None):
    """Read AU intensities, occurrences and a validity mask from an OpenFace CSV.

    Column names are matched without their leading spaces. Rows are placed
    by OpenFace's 1-based `frame` number (frame 1 is the video's first
    frame; a CSV numbered from 0 is read as 0-based). When `fps` is given,
    rows are placed by `timestamp` instead and intensities are interpolated
    in time, for CSVs made at another frame rate than the video's.

    Args:
        path: an OpenFace 2.x `FeatureExtraction` CSV.
        action_units: AU numbers to read (their `AUxx_r` columns must exist).
        num_frames: the video's frame count: the labels are cut or padded to
            it (padded frames are masked). None: as many as the CSV covers.
        fps: the video's frame rate; only needed to resample by timestamp.

    Returns:
        An `AULabels`. Its mask is 0 where `success` is 0, where an AU value
        is not finite, and for frames the CSV does not cover.

    Raises:
        InputFileError: the file is missing or empty.
        AutalkError: a required column is missing (the message names it), a
            value is not a number, or the CSV has no rows.

    Example:
    ```python
    labels = read_openface_csv("s1/au/bbaf2n.csv", (10, 14, 20, 25, 26), num_frames=75)
    labels.intensity.shape, labels.mask.mean()  # (75, 5), 1.0
    ```
    """
    action_units = _check_action_units(action_units)
    path = check_input_file(path, "OpenFace CSV")
    if num_frames is not None and not (
        isinstance(num_frames, (int, np.integer)) and num_frames >= 1
    ):
        raise AutalkError(f"num_frames must be a positive integer, got {num_frames!r}.")
    if fps is not None and not (isinstance(fps, (int, float, np.number)) and fps > 0):
        raise AutalkError(f"fps must be a positive number, got {fps!r}.")
    intensity_names = [intensity_column(unit) for unit in action_units]
    occurrence_names = [occurrence_column(unit) for unit in action_units]
    required = ["frame", "success"] + (["timestamp"] if fps else []) + intensity_names
    columns, _ = _read_columns(path, required, ["confidence"] + occurrence_names)
    columns = _one_row_per_frame(columns)
    has_occurrence = all(name in columns for name in occurrence_names)

    row_intensity = np.stack([columns[name] for name in intensity_names], axis=1)
    row_valid = (columns["success"] >= 0.5) & np.all(np.isfinite(row_intensity), axis=1)
    row_occurrence = (
        np.stack([columns[name] for name in occurrence_names], axis=1) if has_occurrence else None
    )

    if fps:
        return _resample_by_time(
            columns["timestamp"],
            row_intensity,
            row_occurrence,
            row_valid,
            action_units,
            num_frames,
            float(fps),
        )

    offset = 0 if columns["frame"].min() == 0 else 1
    positions = np.round(columns["frame"]).astype(np.int64) - offset
    total = num_frames if num_frames is not None else int(positions.max()) + 1
    inside = (positions >= 0) & (positions < total)
    intensity = np.zeros((total, len(action_units)), dtype=np.float32)
    occurrence = np.zeros_like(intensity) if has_occurrence else None
    mask = np.zeros(total, dtype=np.float32)
    rows = positions[inside]
    mask[rows] = row_valid[inside]
    intensity[rows] = np.where(row_valid[inside, None], row_intensity[inside], 0.0)
    if has_occurrence:
        occurrence[rows] = np.where(row_valid[inside, None], row_occurrence[inside] >= 0.5, 0.0)
    intensity = np.clip(np.nan_to_num(intensity), 0.0, MAX_INTENSITY)
    return AULabels(
        intensity=intensity, occurrence=occurrence, mask=mask, action_units=action_units
    )


def _resample_by_time(
    times, row_intensity, row_occurrence, row_valid, action_units, num_frames, fps
):
    """Labels at frame times `i / fps` from rows at their own timestamps."""
    order = np.argsort(times, kind="stable")
    times, row_valid = times[order], row_valid[order]
    row_intensity = row_intensity[order]
    total = num_frames if num_frames is not None else int(round(times.max() * fps)) + 1
    targets = np.arange(total) / fps
    num_aus = len(action_units)
    intensity = np.zeros((total, num_aus), dtype=np.float32)
    occurrence = np.zeros_like(intensity) if row_occurrence is not None else None
    mask = np.zeros(total, dtype=np.float32)
    if not row_valid.any():
        return AULabels(intensity, occurrence, mask, action_units)
    # A frame is labelled when the row nearest to it in time is a valid one
    # no farther than half a frame interval (of the CSV or of the video,
    # whichever is longer) away: frames past the CSV's end or in a gap of
    # missing rows stay masked.
    steps = np.diff(times)
    interval = max(float(np.median(steps)) if len(steps) else 0.0, 1.0 / fps)
    tolerance = 0.5 * interval + 1e-6
    nearest = np.clip(np.searchsorted(times, targets), 1, max(len(times) - 1, 1))
    if len(times) > 1:
        left_closer = (targets - times[nearest - 1]) <= (times[nearest] - targets)
        nearest = np.where(left_closer, nearest - 1, nearest)
    else:
        nearest = np.zeros_like(nearest)
    close = np.abs(times[nearest] - targets) <= tolerance
    mask[:] = close & row_valid[nearest]
    valid_times = times[row_valid]
    for column in range(num_aus):
        intensity[:, column] = np.interp(targets, valid_times, row_intensity[row_valid, column])
    intensity *= mask[:, None]
    if occurrence is not None:
        occurrence[:] = (row_occurrence[order][nearest] >= 0.5) * mask[:, None]
    intensity = np.clip(np.nan_to_num(intensity), 0.0, MAX_INTENSITY)
    return AULabels(intensity, occurrence, mask, action_units)


def write_openface_csv(path, intensity, action_units, fps, success=None, occurrence=None):
    """Write AU intensities as an OpenFace 2.x `FeatureExtraction -aus` CSV.

    The columns are OpenFace's: `frame, face_id, timestamp, confidence,
    success`, then `AUxx_r` and `AUxx_c` for all of OpenFace's AUs (AUs
    outside OpenFace's set are inserted in numeric order), with OpenFace's
    ", " separators and number formats. AUs not in `action_units` are
    written as 0. The file appears only when completely written.

    Args:
        path: the output `.csv`; its folder must exist.
        intensity: `(num_frames, len(action_units))` intensities (clipped to
            0-5).
        action_units: the AU numbers of `intensity`'s columns.
        fps: video frame rate (for the `timestamp` column).
        success: optional `(num_frames,)` 0/1: frames with a tracked face
            (default: all). AU values of failed frames are written as 0.
        occurrence: optional `(num_frames, len(action_units))` 0/1; by default
            an AU occurs where its intensity is at least `OCCURRENCE_THRESHOLD`.

    Returns:
        The path written.

    Raises:
        AutalkError: shapes that do not match, non-finite values, bad fps.

    Example:
    ```python
    write_openface_csv("s1/au/bbaf2n.csv", np.zeros((75, 5)), (10, 14, 20, 25, 26), fps=25)
    ```
    """
    action_units = _check_action_units(action_units)
    intensity = np.asarray(intensity, dtype=np.float64)
    if intensity.ndim != 2 or intensity.shape[1] != len(action_units) or not len(intensity):
        raise AutalkError(
            f"intensity must have shape (num_frames, {len(action_units)}) with at "
            f"least one frame, got {intensity.shape}."
        )
    if not np.all(np.isfinite(intensity)):
        raise AutalkError("intensity has values that are not finite numbers.")
    if not (isinstance(fps, (int, float, np.number)) and math.isfinite(fps) and fps > 0):
        raise AutalkError(f"fps must be a positive number, got {fps!r}.")
    num_frames = len(intensity)
    success = (
        np.ones(num_frames)
        if success is None
        else np.asarray(success, dtype=np.float64).reshape(-1)
    )
    if success.shape != (num_frames,):
        raise AutalkError(f"success must have {num_frames} values, got {success.size}.")
    success = success >= 0.5
    intensity = np.clip(intensity, 0.0, MAX_INTENSITY) * success[:, None]
    if occurrence is None:
        occurrence = intensity >= OCCURRENCE_THRESHOLD
    occurrence = np.asarray(occurrence, dtype=np.float64)
    if occurrence.shape != intensity.shape:
        raise AutalkError(f"occurrence must have shape {intensity.shape}, got {occurrence.shape}.")
    occurrence = (occurrence >= 0.5) * success[:, None]

    reg_units = sorted(set(OPENFACE_INTENSITY_AUS) | set(action_units))
    class_units = sorted(set(OPENFACE_OCCURRENCE_AUS) | set(action_units))
    column_of = {unit: position for position, unit in enumerate(action_units)}
    header = (
        ["frame", "face_id", "timestamp", "confidence", "success"]
        + [intensity_column(unit) for unit in reg_units]
        + [occurrence_column(unit) for unit in class_units]
    )
    lines = [", ".join(header)]
    for frame in range(num_frames):
        cells = [
            str(frame + 1),
            "0",
            f"{frame / fps:.3f}",
            "0.98" if success[frame] else "0.00",
            "1" if success[frame] else "0",
        ]
        cells += [
            f"{intensity[frame, column_of[unit]]:.2f}" if unit in column_of else "0.00"
            for unit in reg_units
        ]
        cells += [
            f"{occurrence[frame, column_of[unit]]:.1f}" if unit in column_of else "0.0"
            for unit in class_units
        ]
        lines.append(", ".join(cells))
    with atomic_output(path, "OpenFace CSV") as partial:
        partial.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return pathlib.Path(path)


# ---------------------------------------------------------------------------
# Geometric estimator

GEOMETRIC_FEATURES = (
    "inner_lip_gap",  # inner lips apart (AU25)
    "outer_lip_height",  # outer lip top to bottom
    "mouth_width",  # corner to corner (AU20 wider, AU18/AU23 narrower)
    "inner_mouth_width",  # inner corners
    "jaw_drop",  # nose tip to chin (AU26)
    "corner_lift",  # corners above the lip centre (AU12 +, AU15 -)
    "upper_lip_to_nose",  # upper lip to the nose base (AU10 shortens it)
    "upper_lip_thickness",  # (AU23/AU24 thin the lips)
    "lower_lip_thickness",
    "mouth_aspect",  # outer height / width (rounding)
    "mouth_centre_drop",  # mouth centre below the nose base
)
# Lower lip to chin (shortened by AU17) is not a feature of its own: with the
# nose rigid it is jaw_drop - upper_lip_to_nose - outer_lip_height minus a
# constant, and a linear estimator already sees that combination.


def _canonical_template():
    """The face template in inter-ocular units: eyes level, midpoint at 0."""
    template = np.asarray(TEMPLATE_68, dtype=np.float64)
    left, right = template[36:42].mean(axis=0), template[42:48].mean(axis=0)
    axis = right - left
    distance = np.hypot(*axis)
    cos, sin = axis / distance
    rotation = np.array([[cos, sin], [-sin, cos]])
    return (template - (left + right) / 2.0) @ rotation.T / distance


_TEMPLATE = _canonical_template()


def _to_face_frame(landmarks):
    """Map `(T, 68, 2)` landmarks into the template's frame (batched Umeyama).

    The similarity is fitted on the stable points only (brows, eyes, nose,
    upper jaw), so the mouth moves freely in the result. Frames whose points
    are not finite or degenerate come out as NaN.
    """
    source = landmarks[:, STABLE_POINTS]
    target = _TEMPLATE[STABLE_POINTS]
    count = source.shape[1]
    source_mean = source.mean(axis=1)
    target_mean = target.mean(axis=0)
    source_centred = source - source_mean[:, None]
    target_centred = target - target_mean
    covariance = np.einsum("nj,tnk->tjk", target_centred, source_centred) / count
    variance = (source_centred**2).sum(axis=(1, 2)) / count
    usable = np.isfinite(covariance).all(axis=(1, 2)) & (variance > 1e-12)
    covariance[~usable] = np.eye(2)
    u, singular, vt = np.linalg.svd(covariance)
    sign = np.sign(np.linalg.det(u) * np.linalg.det(vt))
    sign[sign == 0] = 1.0
    correction = np.zeros((len(landmarks), 2, 2))
    correction[:, 0, 0] = 1.0
    correction[:, 1, 1] = sign
    rotation = u @ correction @ vt
    scale = (singular[:, 0] + sign * singular[:, 1]) / np.where(usable, variance, 1.0)
    linear = scale[:, None, None] * rotation
    mapped = np.einsum("tjk,tnk->tnj", linear, landmarks - source_mean[:, None]) + target_mean
    mapped[~usable] = np.nan
    return mapped


def geometric_features(landmarks):
    """Mouth measurements from 68 landmarks, independent of head pose in the image.

    The landmarks are similarity-aligned (stable points) to the face template
    in units of the inter-ocular distance; the features of
    `GEOMETRIC_FEATURES` are measured there (y points down). Translating,
    scaling or rotating the landmarks in the image plane leaves them unchanged.

    Args:
        landmarks: `(T, 68, 2)` (or one `(68, 2)`) dlib landmarks in pixels.

    Returns:
        float32 `(T, len(GEOMETRIC_FEATURES))`; NaN rows for frames whose
        landmarks are not finite.

    Example:
    ```python
    features = geometric_features(face.find_face(photo).landmarks)
    dict(zip(GEOMETRIC_FEATURES, features[0]))["inner_lip_gap"]
    ```
    """
    landmarks = np.asarray(landmarks, dtype=np.float64)
    if landmarks.ndim == 2:
        landmarks = landmarks[None]
    if landmarks.ndim != 3 or landmarks.shape[1:] != (68, 2):
        raise AutalkError(f"landmarks must have shape (num_frames, 68, 2), got {landmarks.shape}.")
    with np.errstate(invalid="ignore", divide="ignore"):
        points = _to_face_frame(landmarks)
        y = points[..., 1]

        def distance(first, second):
            return np.hypot(*(points[:, first] - points[:, second]).T)

        def mean_y(indices):
            return y[:, list(indices)].mean(axis=1)

        outer_height = y[:, 57] - y[:, 51]
        width = distance(54, 48)
        features = np.stack(
            [
                mean_y((67, 66, 65)) - mean_y((61, 62, 63)),
                outer_height,
                width,
                distance(64, 60),
                y[:, 8] - y[:, 30],
                (y[:, 62] + y[:, 66]) / 2.0 - (y[:, 48] + y[:, 54]) / 2.0,
                y[:, 51] - y[:, 33],
                mean_y((61, 62, 63)) - mean_y((50, 51, 52)),
                mean_y((56, 57, 58)) - mean_y((65, 66, 67)),
                outer_height / width,
                y[:, 48:68].mean(axis=1) - y[:, 33],
            ],
            axis=1,
        )
    return features.astype(np.float32)


def _as_clips(values, name):
    """A list of float arrays: one array is one clip, a list holds several."""
    if isinstance(values, np.ndarray):
        values = [values]
    clips = [np.asarray(clip, dtype=np.float64) for clip in values]
    if not clips:
        raise AutalkError(f"No {name} were given.")
    return clips


def per_au_correlation(predicted, targets, action_units, mask=None):
    """Pearson correlation between predicted and target intensities, per AU.

    Args:
        predicted, targets: `(T, len(action_units))` intensities.
        action_units: the AU numbers of the columns.
        mask: optional `(T,)`; frames with 0 are left out.

    Returns:
        {"AU25": r, ...}; NaN for an AU whose prediction or target is
        constant over the frames.

    Example:
    ```python
    per_au_correlation(estimator.predict(landmarks), labels.intensity, (25, 26))
    ```
    """
    predicted = np.asarray(predicted, dtype=np.float64)
    targets = np.asarray(targets, dtype=np.float64)
    keep = np.all(np.isfinite(predicted), axis=1) & np.all(np.isfinite(targets), axis=1)
    if mask is not None:
        keep &= np.asarray(mask).reshape(-1) > 0
    result = {}
    for column, unit in enumerate(action_units):
        first, second = predicted[keep, column], targets[keep, column]
        result[f"AU{unit:02d}"] = pearson(first, second) if len(first) >= 2 else float("nan")
    return result


class GeometricAUEstimator:
    """Linear AU intensities from landmark geometry (ridge regression per AU).

    Args:
        action_units: the AU numbers it predicts.
        ridge: L2 penalty on the standardised features' weights.
        clip_baseline: also use each feature minus its `baseline_percentile`
            over the clip (the closed-mouth frames of speech), which removes
            most differences between faces.
        baseline_percentile: the percentile taken as the clip's rest value.

    Example:
    ```python
    estimator = calibrate(landmark_clips, au_clips, (10, 14, 20, 25, 26))
    estimator.save("estimator.json")
    intensities = GeometricAUEstimator.load("estimator.json").predict(landmarks)
    ```
    """

    def __init__(
        self,
        action_units=DEFAULT_ACTION_UNITS,
        ridge=1.0,
        clip_baseline=True,
        baseline_percentile=5.0,
    ):
        self.action_units = _check_action_units(action_units)
        if not ridge >= 0:
            raise AutalkError(f"ridge must be zero or positive, got {ridge!r}.")
        if not 0 <= baseline_percentile <= 100:
            raise AutalkError(
                f"baseline_percentile must be between 0 and 100, got {baseline_percentile!r}."
            )
        self.ridge = float(ridge)
        self.clip_baseline = bool(clip_baseline)
        self.baseline_percentile = float(baseline_percentile)
        self.feature_mean = None
        self.feature_scale = None
        self.weights = None
        self.bias = None
        self.calibration = {}

    @property
    def fitted(self) -> bool:
        return self.weights is not None

    @property
    def input_names(self):
        """Names of the regression inputs (features, then relative features)."""
        names = list(GEOMETRIC_FEATURES)
        if self.clip_baseline:
            names += [f"{name}_relative" for name in GEOMETRIC_FEATURES]
        return names

    def design(self, features):
        """Regression inputs `(T, D)` for one clip's `geometric_features`."""
        features = np.asarray(features, dtype=np.float64)
        if features.ndim != 2 or features.shape[1] != len(GEOMETRIC_FEATURES):
            raise AutalkError(
                f"features must have shape (num_frames, {len(GEOMETRIC_FEATURES)}), "
                f"got {features.shape}."
            )
        if not self.clip_baseline:
            return features
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN clips
            rest = np.nanpercentile(features, self.baseline_percentile, axis=0)
        return np.concatenate([features, features - rest], axis=1)

    def fit(self, features, au_targets, mask=None):
        """Fit the weights to known intensities.

        Args:
            features: one clip's `geometric_features` `(T, F)` as an array, or
                a list of them (one per clip: the clip baseline is per clip).
            au_targets: matching `(T, len(action_units))` intensities: an
                array, or a list of arrays.
            mask: optional matching `(T,)` array (0 leaves a frame out), or a
                list of arrays.

        Returns:
            self.

        Raises:
            AutalkError: mismatched shapes or fewer than two usable frames.
        """
        feature_clips = _as_clips(features, "features")
        target_clips = _as_clips(au_targets, "AU targets")
        mask_clips = [None] * len(feature_clips) if mask is None else _as_clips(mask, "masks")
        if not len(feature_clips) == len(target_clips) == len(mask_clips):
            raise AutalkError(
                f"Got {len(feature_clips)} feature clips, {len(target_clips)} target "
                f"clips and {len(mask_clips)} masks; they must match."
            )
        inputs, targets = [], []
        for clip_features, clip_targets, clip_mask in zip(feature_clips, target_clips, mask_clips):
            if clip_targets.ndim != 2 or clip_targets.shape != (
                len(clip_features),
                len(self.action_units),
            ):
                raise AutalkError(
                    f"AU targets must have shape ({len(clip_features)}, "
                    f"{len(self.action_units)}), got {clip_targets.shape}."
                )
            design = self.design(clip_features)
            keep = np.all(np.isfinite(design), axis=1) & np.all(np.isfinite(clip_targets), axis=1)
            if clip_mask is not None:
                keep &= clip_mask.reshape(-1) > 0
            inputs.append(design[keep])
            targets.append(clip_targets[keep])
        inputs, targets = np.concatenate(inputs), np.concatenate(targets)
        if len(inputs) < 2:
            raise AutalkError(
                f"The estimator needs at least two usable frames to fit, got {len(inputs)}."
            )
        mean = inputs.mean(axis=0)
        scale = inputs.std(axis=0)
        scale[scale < 1e-9] = 1.0
        standard = (inputs - mean) / scale
        target_mean = targets.mean(axis=0)
        gram = standard.T @ standard + self.ridge * np.eye(standard.shape[1])
        self.weights = np.linalg.solve(gram, standard.T @ (targets - target_mean))
        self.bias = target_mean
        self.feature_mean, self.feature_scale = mean, scale
        return self

    def coefficients(self):
        """(weights `(D, A)`, bias `(A,)`) on the unstandardised regression inputs."""
        self._check_fitted()
        weights = self.weights / self.feature_scale[:, None]
        return weights, self.bias - self.feature_mean @ weights

    def _check_fitted(self):
        if not self.fitted:
            raise AutalkError(
                "The geometric AU estimator is not calibrated yet; fit it or load one."
            )

    def predict_features(self, features):
        """Intensities `(T, A)` in 0-5 from one clip's `geometric_features`.

        Frames with non-finite features get 0 (mask them with the face mask).
        """
        self._check_fitted()
        design = self.design(features)
        standard = (design - self.feature_mean) / self.feature_scale
        predicted = standard @ self.weights + self.bias
        predicted[~np.all(np.isfinite(design), axis=1)] = 0.0
        return np.clip(predicted, 0.0, MAX_INTENSITY).astype(np.float32)

    def predict(self, landmarks):
        """Intensities `(T, A)` in 0-5 for one clip's `(T, 68, 2)` landmarks.

        Example:
        ```python
        intensities = estimator.predict(track.landmarks)  # (T, 5)
        ```
        """
        return self.predict_features(geometric_features(landmarks))

    def to_dict(self):
        """The estimator as a JSON-serialisable dict."""
        self._check_fitted()
        return {
            "format": _ESTIMATOR_FORMAT,
            "version": _ESTIMATOR_VERSION,
            "action_units": list(self.action_units),
            "feature_names": list(GEOMETRIC_FEATURES),
            "clip_baseline": self.clip_baseline,
            "baseline_percentile": self.baseline_percentile,
            "ridge": self.ridge,
            "feature_mean": self.feature_mean.tolist(),
            "feature_scale": self.feature_scale.tolist(),
            "weights": self.weights.tolist(),
            "bias": self.bias.tolist(),
            "calibration": self.calibration,
        }

    @classmethod
    def from_dict(cls, state, source="the estimator"):
        """Rebuild an estimator from `to_dict`'s output."""
        if not isinstance(state, dict) or state.get("format") != _ESTIMATOR_FORMAT:
            raise AutalkError(f"{source} is not a keras-autalk geometric AU estimator.")
        if state.get("version") != _ESTIMATOR_VERSION or list(
            state.get("feature_names", ())
        ) != list(GEOMETRIC_FEATURES):
            raise AutalkError(
                f"{source} was made by another version of keras-autalk; calibrate it again."
            )
        try:
            estimator = cls(
                state["action_units"],
                ridge=state["ridge"],
                clip_baseline=state["clip_baseline"],
                baseline_percentile=state["baseline_percentile"],
            )
            inputs = len(estimator.input_names)
            estimator.feature_mean = np.asarray(state["feature_mean"], dtype=np.float64)
            estimator.feature_scale = np.asarray(state["feature_scale"], dtype=np.float64)
            estimator.weights = np.asarray(state["weights"], dtype=np.float64)
            estimator.bias = np.asarray(state["bias"], dtype=np.float64)
        except (KeyError, TypeError, ValueError) as error:
            raise AutalkError(f"{source} is incomplete ({error}).") from None
        shapes_ok = (
            estimator.feature_mean.shape == (inputs,)
            and estimator.feature_scale.shape == (inputs,)
            and estimator.weights.shape == (inputs, len(estimator.action_units))
            and estimator.bias.shape == (len(estimator.action_units),)
        )
        if not shapes_ok:
            raise AutalkError(f"{source} has weights of the wrong shape.")
        estimator.calibration = dict(state.get("calibration", {}))
        return estimator

    def save(self, path):
        """Write the estimator as JSON (atomically). Returns the path."""
        text = json.dumps(self.to_dict(), indent=1)
        with atomic_output(path, "estimator file") as partial:
            partial.write_text(text + "\n", encoding="utf-8")
        return pathlib.Path(path)

    @classmethod
    def load(cls, path):
        """Read an estimator written by `save`.

        Raises:
            InputFileError: missing, empty or not JSON.
            AutalkError: not an estimator, or from another package version.
        """
        path = check_input_file(path, "estimator file")
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise InputFileError(f"The estimator file '{path}' is not valid JSON.") from None
        return cls.from_dict(state, source=f"The file '{path}'")


def calibrate(
    landmarks_list,
    au_list,
    action_units=DEFAULT_ACTION_UNITS,
    masks=None,
    ridge=1.0,
    clip_baseline=True,
    progress=False,
):
    """Fit a `GeometricAUEstimator` on clips with known AU intensities.

    Args:
        landmarks_list: one `(T_i, 68, 2)` landmark array per clip.
        au_list: matching `(T_i, len(action_units))` intensities.
        action_units: the AU numbers of `au_list`'s columns.
        masks: optional matching `(T_i,)` arrays (0 leaves a frame out, e.g.
            where no face was found).
        ridge, clip_baseline: see `GeometricAUEstimator`.
        progress: show a progress bar over the clips.

    Returns:
        The fitted estimator; its `calibration` dict records the number of
        clips and frames and the per-AU correlation on the calibration data.

    Example:
    ```python
    estimator = calibrate([clip.landmarks for clip in clips],
                          [clip.au_intensity for clip in clips], (10, 14, 20, 25, 26))
    estimator.calibration["correlation"]  # {"AU10": 0.8, ...}
    ```
    """
    landmarks_list, au_list = list(landmarks_list), list(au_list)
    if len(landmarks_list) != len(au_list):
        raise AutalkError(f"Got {len(landmarks_list)} landmark clips but {len(au_list)} AU clips.")
    masks = [None] * len(au_list) if masks is None else list(masks)
    estimator = GeometricAUEstimator(action_units, ridge=ridge, clip_baseline=clip_baseline)
    features = [
        geometric_features(landmarks)
        for landmarks in tqdm(
            landmarks_list, desc="Landmark features", unit="clip", disable=not progress
        )
    ]
    weights = [
        np.ones(len(clip)) if mask is None else np.asarray(mask, dtype=np.float64)
        for clip, mask in zip(features, masks)
    ]
    estimator.fit(features, [np.asarray(a, dtype=np.float64) for a in au_list], weights)
    predicted = np.concatenate([estimator.predict_features(clip) for clip in features])
    targets = np.concatenate([np.asarray(a, dtype=np.float64) for a in au_list])
    usable = np.concatenate(weights) > 0
    usable &= np.all(np.isfinite(np.concatenate(features)), axis=1)
    estimator.calibration = {
        "num_clips": len(features),
        "num_frames": int(usable.sum()),
        "correlation": per_au_correlation(predicted, targets, estimator.action_units, mask=usable),
    }
    return estimator


def load_default_estimator():
    """The calibrated estimator shipped with the package.

    Raises:
        MissingDependencyError: the package ships none (it is made by
            calibrating on the demo corpus).

    Example:
    ```python
    intensities = load_default_estimator().predict(landmarks)
    ```
    """
    if not DEFAULT_ESTIMATOR_PATH.is_file():
        raise MissingDependencyError(
            f"No calibrated geometric AU estimator is installed at '{DEFAULT_ESTIMATOR_PATH}'."
        )
    return GeometricAUEstimator.load(DEFAULT_ESTIMATOR_PATH)
