"""The demo corpus's identities: real face photos placed in a GRID-sized camera frame.

`make_identity` places a photo's face (with its 68 dlib landmarks) in the
360 x 288 frame, optionally recoloured, relit, rescaled, tilted or
mirrored; `morph_identities` blends two identities; `identity_bank` makes
the corpus's set of identities from the photos installed packages ship.
"""

import dataclasses
import functools

import numpy as np
from matplotlib.path import Path
from scipy import ndimage

from keras_autalk.corpora.demo.face_mesh import (
    FRAME_SIZE,
    MIRROR_68,
    face_frame,
    ring_points,
    soft_points,
    triangulate,
)
from keras_autalk.corpora.demo.mesh import warp_piecewise_affine
from keras_autalk.errors import AutalkError


@dataclasses.dataclass
class Identity:
    """A face placed in a camera frame, ready to animate.

    Attributes:
        image: `(height, width, 3)` uint8 camera frame with the face at rest.
        landmarks: `(68, 2)` float dlib landmarks `(x, y)` in `image`.
        name: a short label, e.g. "astronaut" or "morph-04".
    """

    image: np.ndarray
    landmarks: np.ndarray
    name: str = "identity"


@functools.lru_cache(maxsize=None)
def photo_face(name):
    from keras_autalk.media.face import find_face
    from keras_autalk.media.photos import load_photo

    photo = load_photo(name)
    photo.flags.writeable = False
    landmarks = find_face(photo).landmarks
    landmarks.flags.writeable = False
    return photo, landmarks


def similarity(scale, angle, centre_from, centre_to):
    """Matrix of a rotation+scale about `centre_from`, then moved to `centre_to`."""
    cos, sin = np.cos(angle) * scale, np.sin(angle) * scale
    linear = np.array([[cos, -sin], [sin, cos]])
    return np.hstack([linear, (np.asarray(centre_to) - linear @ centre_from)[:, None]])


def apply(matrix, points):
    return np.asarray(points) @ matrix[:2, :2].T + matrix[:2, 2]


def warp_affine(image, matrix, output_shape):
    """Bilinear warp with `matrix` mapping source pixels to output pixels."""
    full = np.vstack([matrix, [0.0, 0.0, 1.0]])
    inverse = np.linalg.inv(full)
    scale = np.sqrt(abs(np.linalg.det(matrix[:, :2])))
    source = image.astype(np.float32)
    if scale < 0.95:  # shrinking: low-pass first so the photo does not alias
        sigma = 0.5 * (1.0 / scale - 1.0)
        source = ndimage.gaussian_filter(source, sigma=(sigma, sigma, 0))
    # ndimage works in (row, column) = (y, x) order.
    swap = np.array([[0, 1], [1, 0]])
    linear = swap @ inverse[:2, :2] @ swap
    offset = swap @ inverse[:2, 2]
    out = np.empty(tuple(output_shape) + (3,), dtype=np.float32)
    for channel in range(3):
        ndimage.affine_transform(
            source[..., channel],
            linear,
            offset=offset,
            output_shape=tuple(output_shape),
            output=out[..., channel],
            order=1,
            mode="reflect",
        )
    return out


def augment_colour(image, rng):
    """White balance, saturation, contrast, brightness, gamma and a light gradient."""
    height, width = image.shape[:2]
    image = image / 255.0
    gains = np.clip(rng.normal(1.0, 0.06, size=3), 0.85, 1.15)
    image = image * gains / gains.mean()
    grey = image.mean(axis=2, keepdims=True)
    image = grey + (image - grey) * rng.uniform(0.7, 1.25)
    mean = image.mean()
    image = mean + (image - mean) * rng.uniform(0.8, 1.2) + rng.uniform(-0.07, 0.07)
    angle = rng.uniform(0, 2 * np.pi)
    ys, xs = np.mgrid[0:height, 0:width]
    ramp = ((xs - width / 2) * np.cos(angle) + (ys - height / 2) * np.sin(angle)) / max(
        height, width
    )
    image = image * (1.0 + rng.uniform(0.0, 0.35) * ramp)[..., None]
    image = np.clip(image, 0.0, 1.0) ** rng.uniform(0.85, 1.15)
    return image * 255.0


def make_identity(
    photo, landmarks, rng, frame_size=FRAME_SIZE, augment=True, name="identity", face_width=None
):
    """Place a photo's face in a camera frame, optionally augmented.

    The face is scaled so that its jaw line spans `face_width` pixels
    (random in 100..130 when augmenting, else 115), levelled, and centred.
    Augmentation keeps the landmarks exact: colour and white balance,
    saturation, brightness and contrast, a lighting gradient, gamma, scale,
    a small in-plane rotation (about +-4 degrees), a small shift and a
    horizontal mirror (landmarks renumbered).

    Args:
        photo: `(h, w, 3)` uint8 RGB photo.
        landmarks: its `(68, 2)` dlib landmarks.
        rng: `numpy.random.Generator` for the augmentation.
        frame_size: `(height, width)` of the camera frame.
        augment: False places the face without any augmentation.
        name: the identity's label.
        face_width: jaw-line width in pixels (overrides the default).

    Returns:
        An `Identity`.

    Example:
    ```python
    photo = load_photo("grace_hopper")
    identity = make_identity(photo, find_face(photo).landmarks,
                             np.random.default_rng(3))
    ```
    """
    photo = np.asarray(photo)
    landmarks = np.asarray(landmarks, dtype=np.float64)
    if photo.ndim != 3 or photo.shape[2] != 3 or photo.dtype != np.uint8:
        raise AutalkError("The photo must be an (h, w, 3) uint8 RGB array.")
    if landmarks.shape != (68, 2):
        raise AutalkError(f"Landmarks must have shape (68, 2), got {landmarks.shape}.")
    height, width = frame_size
    if augment and rng.random() < 0.5:
        photo = photo[:, ::-1]
        landmarks = landmarks[MIRROR_68].copy()
        landmarks[:, 0] = photo.shape[1] - 1 - landmarks[:, 0]
    origin, across, _, _ = face_frame(landmarks)
    tilt = np.arctan2(across[1], across[0])
    current_width = np.linalg.norm(landmarks[16] - landmarks[0])
    if face_width is None:
        face_width = rng.uniform(100.0, 130.0) if augment else 115.0
    angle = -tilt + (np.deg2rad(rng.uniform(-4.0, 4.0)) if augment else 0.0)
    shift = rng.uniform(-8.0, 8.0, size=2) if augment else np.zeros(2)
    centre_from = (landmarks.min(axis=0) + landmarks.max(axis=0)) / 2.0
    centre_to = np.array([width / 2.0, height * 0.48]) + shift
    matrix = similarity(face_width / current_width, angle, centre_from, centre_to)
    image = warp_affine(photo, matrix, (height, width))
    if augment:
        image = augment_colour(image, rng)
    image = np.clip(np.rint(image), 0, 255).astype(np.uint8)
    return Identity(image=image, landmarks=apply(matrix, landmarks), name=name)


def morph_identities(first, second, alpha, name=None):
    """Blend two identities into a new face.

    Both images are warped piecewise-affinely onto the blended landmarks
    `(1 - alpha) * first + alpha * second` (the face mesh plus the frame's
    border); inside the face (jaw line to brows, soft edge) they are
    cross-dissolved with weight `alpha`, outside `first`'s hair, clothes and
    background are kept so nothing ghosts.

    Args:
        first, second: `Identity` objects with frames of the same size.
        alpha: 0 gives `first`'s shape and look, 1 `second`'s.
        name: label of the result (default "first+second").

    Returns:
        An `Identity`.

    Example:
    ```python
    astronaut, hopper = identity_bank(2, seed=0)
    blend = morph_identities(astronaut, hopper, 0.5)
    ```
    """
    if first.image.shape != second.image.shape:
        raise AutalkError("Identities to morph must have frames of the same size.")
    height, width = first.image.shape[:2]
    target = (1.0 - alpha) * first.landmarks + alpha * second.landmarks
    border = []
    for fraction in np.linspace(0.0, 1.0, 7):
        border += [
            (fraction * (width - 1), 0),
            (fraction * (width - 1), height - 1),
            (0, fraction * (height - 1)),
            (width - 1, fraction * (height - 1)),
        ]
    border = np.unique(np.array(border), axis=0)

    def mesh_points(landmarks):
        return np.concatenate([landmarks, soft_points(landmarks), ring_points(landmarks), border])

    target_points = mesh_points(target)
    triangles = triangulate(target_points, keep_static=True)
    warped = []
    for identity in (first, second):
        source_points = mesh_points(identity.landmarks)
        warped.append(
            warp_piecewise_affine(identity.image, source_points, target_points, triangles).astype(
                np.float32
            )
        )
    # Only the face (jaw line to brows) is blended, with a soft edge: hair,
    # clothes and background come from `first`, so nothing ghosts.
    outline = np.concatenate([target[0:17], target[26:16:-1]])
    ys, xs = np.mgrid[0:height, 0:width]
    inside = Path(outline).contains_points(np.stack([xs.ravel(), ys.ravel()], axis=1))
    iod = face_frame(target)[3]
    mask = ndimage.gaussian_filter(
        inside.reshape(height, width).astype(np.float32), sigma=0.08 * iod
    )[..., None]
    image = warped[0] + alpha * mask * (warped[1] - warped[0])
    return Identity(
        image=np.clip(np.rint(image), 0, 255).astype(np.uint8),
        landmarks=target,
        name=name or f"{first.name}+{second.name}",
    )


def identity_bank(
    num_identities, seed, frame_size=FRAME_SIZE, photos=("astronaut", "grace_hopper")
):
    """`num_identities` distinct identities, deterministic for a seed.

    The first identities are the photos themselves placed without
    augmentation; then augmented copies and morphs alternate (every third
    one a morph of two augmented photos with a blend weight in 0.3..0.7).
    Identity `k` depends only on `(seed, k)`, so a larger bank extends a
    smaller one.

    Args:
        num_identities: how many identities.
        seed: integer seed.
        frame_size: `(height, width)` of the camera frames.
        photos: names understood by `keras_autalk.media.photos.load_photo`.

    Returns:
        A list of `Identity`.

    Example:
    ```python
    bank = identity_bank(6, seed=0)
    [identity.name for identity in bank][:2]  # ['astronaut', 'grace_hopper']
    ```
    """
    if num_identities < 0:
        raise AutalkError("The number of identities cannot be negative.")
    faces = [(name,) + photo_face(name) for name in photos]
    bank = []
    for index in range(num_identities):
        rng = np.random.default_rng([seed, index])
        if index < len(faces):
            name, photo, landmarks = faces[index]
            bank.append(make_identity(photo, landmarks, rng, frame_size, augment=False, name=name))
        elif index % 3 == 2 and len(faces) > 1:
            pair = rng.choice(len(faces), size=2, replace=False)
            parts = [make_identity(faces[k][1], faces[k][2], rng, frame_size) for k in pair]
            bank.append(
                morph_identities(
                    parts[0], parts[1], rng.uniform(0.3, 0.7), name=f"morph-{index:02d}"
                )
            )
        else:
            name, photo, landmarks = faces[index % len(faces)]
            bank.append(
                make_identity(photo, landmarks, rng, frame_size, name=f"{name}-{index:02d}")
            )
    return bank
