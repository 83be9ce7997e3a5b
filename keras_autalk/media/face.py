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
from keras_autalk.media.face_template import TEMPLATE_68
from keras_autalk.errors import MissingDependencyError, NoFaceError

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

# A fitted shape farther than this from the template (RMS distance of the
# stable points in units of the inter-ocular distance, after similarity
# alignment) is not a face: the shape predictor returns a distorted face when
# run on a false detection. Real frontal faces measure about 0.02; a face
# squeezed to 70 % of its width (a strong head turn) about 0.13; the HOG
# false positive on astronaut's suit 0.16.
MAX_TEMPLATE_DISTANCE = 0.2
# Detections with a weaker score or a less face-like shape than these are
# double-checked by dlib's CNN detector on a crop around the box.
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
    """

    box: Tuple[int, int, int, int]
    score: float
    landmarks: np.ndarray
    num_faces: int = 1
    rejected: List[str] = dataclasses.field(default_factory=list)

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
    return float(np.sqrt(np.mean(np.sum(residual ** 2, axis=1))) / interocular)


def check_landmarks(landmarks, box):
    """Return `None` if the landmarks look like a face in `box`, else why not.

    Checks, in the face's own frame (so tilted heads pass): the eyes are a
    plausible fraction of the box apart, the mouth lies below the eyes and
    between them, the nose tip lies between eyes and mouth, nearly all
    points fall in the (slightly enlarged) box, and the shape as a whole is
    close to the template.
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
        (landmarks[:, 0] >= left - margin) & (landmarks[:, 0] <= right + margin)
        & (landmarks[:, 1] >= top - margin) & (landmarks[:, 1] <= bottom + margin)
    )
    if inside.mean() < 0.9:
        return "the landmarks fall outside the detected box"
    distance = template_distance(landmarks)
    if distance > MAX_TEMPLATE_DISTANCE:
        return f"the landmark shape is not face-like (template distance {distance:.2f})"
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
            rect.left() / scale + crop_left, rect.top() / scale + crop_top,
            rect.right() / scale + crop_left, rect.bottom() / scale + crop_top,
        )
        if box_overlap(found, box) > 0.3:
            return True
    return False


def find_face(image, config=FaceConfig()):
    """Detect faces, fit landmarks, and return the largest plausible `Face`.

    Every detection is checked with `check_landmarks`; a detection with a
    weak score or a less face-like shape must also be confirmed by dlib's
    CNN detector. False positives (on `astronaut`, the HOG detector also
    fires on the suit) are dropped and listed in `Face.rejected`. When
    several plausible faces remain the largest wins and `Face.num_faces`
    says how many there were.

    Raises:
        NoFaceError: no detection, or none that passes the checks.

    Example:
    ```python
    face = find_face(load_photo("astronaut"))
    face.landmarks.shape  # (68, 2)
    ```
    """
    candidates, rejected = [], []
    for box, score in detect_faces(image, config):
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
    if not candidates:
        detail = f" ({len(rejected)} detection(s) rejected: {rejected[0]})" if rejected else ""
        raise NoFaceError(f"No face was found in the image{detail}.")
    best = max(candidates, key=lambda face: face.area)
    best.num_faces = len(candidates)
    best.rejected = rejected
    return best


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
    variance = (source_centred ** 2).sum() / len(source)
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
