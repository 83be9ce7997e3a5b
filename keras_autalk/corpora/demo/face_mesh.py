"""The face mesh the demo corpus's renderer warps: landmark groups, the face's frame, triangles.

dlib's 68 landmarks grouped (lips, jaw, eyelids), the face's own frame
(origin between the eyes, unit the inter-ocular distance), extra mesh
points (a fixed ring outside the jaw and brows, soft cheek points, lip
corner extensions) and the triangulation, with the mouth triangulated by
hand so that no triangle spans the opening.
"""

import numpy as np
from matplotlib.path import Path
from scipy.spatial import Delaunay

from keras_autalk.errors import AutalkError

# GRID's camera frame, (height, width).
FRAME_SIZE = (288, 360)


# Indices of dlib's 68 points after a horizontal mirror (iBUG 300-W scheme).
MIRROR_68 = np.array(
    list(range(16, -1, -1))  # jaw
    + list(range(26, 16, -1))  # brows
    + [27, 28, 29, 30, 35, 34, 33, 32, 31]  # nose
    + [45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40]  # eyes
    + [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55]  # outer lips
    + [64, 63, 62, 61, 60, 67, 66, 65]  # inner lips
)


# Landmark groups.
OUTER_LIPS = np.arange(48, 60)


UPPER_OUTER = np.array([48, 49, 50, 51, 52, 53, 54])


LOWER_OUTER = np.array([55, 56, 57, 58, 59])


UPPER_INNER = np.array([60, 61, 62, 63, 64])


LOWER_INNER = np.array([65, 66, 67])


INNER_PAIRS = np.array([[61, 67], [62, 66], [63, 65]])


OUTER_PAIRS = np.array([[49, 59], [50, 58], [51, 57], [52, 56], [53, 55]])


JAW_MOVING = np.arange(4, 13)


EYELIDS = np.array([[37, 41], [38, 40], [43, 47], [44, 46]])  # (upper, lower)


EYES = (np.array([36, 37, 38, 39]), np.array([42, 43, 44, 45]))  # upper lid curves


# The mouth is triangulated by hand so that no triangle ever spans the
# opening: the upper lip band, the lower lip band and the opening itself.
MOUTH_TRIANGLES = np.array(
    [
        # upper lip: outer 48-54 over inner 60-64
        (48, 49, 60),
        (60, 49, 61),
        (49, 50, 61),
        (50, 51, 62),
        (50, 62, 61),
        (51, 52, 62),
        (52, 63, 62),
        (52, 53, 63),
        (53, 64, 63),
        (53, 54, 64),
        # lower lip: outer 54-59, 48 under inner 64-67, 60
        (54, 55, 64),
        (64, 55, 65),
        (55, 56, 65),
        (56, 57, 66),
        (56, 66, 65),
        (57, 58, 66),
        (58, 67, 66),
        (58, 59, 67),
        (59, 60, 67),
        (59, 48, 60),
    ]
)


OPENING_TRIANGLES = np.array(
    [
        (60, 61, 67),
        (61, 66, 67),
        (61, 62, 66),
        (62, 63, 66),
        (63, 65, 66),
        (63, 64, 65),
    ]
)


# Extra mesh points in the cheeks, midway between two landmarks, following
# the pair's mean displacement this much: they keep the mesh from linking
# the mouth corners straight to the eyes.
SOFT_PAIRS = np.array([[2, 31], [3, 48], [14, 35], [13, 54]])


SOFT_FOLLOW = np.array([0.0, 0.5, 0.0, 0.5])


# And one point just outside each lip corner, in line with the mouth, as far
# out as this fraction of the corner's distance to its neighbour on the upper
# lip: dlib puts 48 and 54 slightly inside the visible corners, and these
# points carry the corners' crease along (shrinking it when the lips purse).
CORNER_EXTENSIONS = np.array([[48, 49], [54, 53]])


CORNER_CREASE = 0.7


# Mesh ring: fixed points this far outside the jaw (sides, chin) and brows.
RING_SIDE, RING_CHIN, RING_TOP = 0.3, 0.7, 0.3


def face_frame(landmarks):
    """Origin (eye centre), unit `across` and `down` axes, inter-ocular distance."""
    left_eye = landmarks[36:42].mean(axis=0)
    right_eye = landmarks[42:48].mean(axis=0)
    vector = right_eye - left_eye
    iod = float(np.linalg.norm(vector))
    if iod <= 1e-6:
        raise AutalkError("The face's landmarks have both eyes in one place.")
    across = vector / iod
    down = np.array([-across[1], across[0]])
    return (left_eye + right_eye) / 2.0, across, down, iod


def to_local(points, frame):
    origin, across, down, iod = frame
    centred = np.asarray(points, dtype=np.float64) - origin
    return np.stack([centred @ across, centred @ down], axis=-1) / iod


def from_local(local, frame):
    origin, across, down, iod = frame
    return origin + iod * (local[..., :1] * across + local[..., 1:] * down)


def ring_points(landmarks):
    """Fixed points around the face: outside the jaw line and above the brows."""
    frame = face_frame(landmarks)
    local = to_local(landmarks, frame)
    jaw = local[0:17]
    tangent = np.gradient(jaw, axis=0)
    normal = np.stack([tangent[:, 1], -tangent[:, 0]], axis=1)
    normal /= np.linalg.norm(normal, axis=1, keepdims=True) + 1e-12
    centre = local[27:36].mean(axis=0)
    outward = np.sign(np.sum((jaw - centre) * normal, axis=1, keepdims=True))
    normal *= np.where(outward == 0, 1.0, outward)
    closeness = 1.0 - np.abs(np.arange(17) - 8) / 8.0
    margin = RING_SIDE + (RING_CHIN - RING_SIDE) * closeness**1.5
    ring = [jaw + normal * margin[:, None]]
    brows = local[17:27].copy()
    brows[:, 1] -= RING_TOP
    ring.append(brows)
    return from_local(np.concatenate(ring), frame)


def corner_steps(landmarks, across):
    """Signed distance across the face from each lip corner's neighbour to the corner."""
    corners = landmarks[..., CORNER_EXTENSIONS[:, 0], :]
    return (corners - landmarks[..., CORNER_EXTENSIONS[:, 1], :]) @ across


def corner_extensions(landmarks, across, rest_steps=None):
    """Points just outside the lip corners, `(..., 2, 2)`, for `(..., 68, 2)` landmarks.

    With `rest_steps` (the face at rest's `corner_steps`), the crease may
    shrink (pursed lips) but never grow (a stretched mouth would push the
    points into the cheek's triangles).
    """
    steps = corner_steps(landmarks, across)
    if rest_steps is not None:
        steps = np.sign(rest_steps) * np.minimum(np.abs(steps), np.abs(rest_steps))
    corners = landmarks[..., CORNER_EXTENSIONS[:, 0], :]
    return corners + CORNER_CREASE * steps[..., None] * across


def soft_points(landmarks):
    """The extra (cheek and corner) mesh points of one face at rest, `(6, 2)`."""
    across = face_frame(landmarks)[1]
    return np.concatenate(
        [landmarks[SOFT_PAIRS].mean(axis=1), corner_extensions(landmarks, across)]
    )


def triangulate(
    points,
    num_moving=68 + len(SOFT_PAIRS) + len(CORNER_EXTENSIONS),
    opening_offset=60,
    keep_static=False,
):
    """Triangles over `points` with the hand-made mouth.

    `points` holds the 68 landmarks, then other points that may move, then
    static ones (the ring; `num_moving` points come before them). The
    opening's triangles use the inner-lip points 60-67, or their copies at
    `opening_offset`..`opening_offset + 7`. Triangles between static points
    only are dropped unless `keep_static`.
    """
    keep = np.setdiff1d(np.arange(len(points)), np.arange(60, 68))
    delaunay = Delaunay(points[keep])
    triangles = keep[delaunay.simplices]
    inside = Path(points[OUTER_LIPS]).contains_points(points[triangles].mean(axis=1))
    triangles = triangles[~inside]
    # Triangles between ring points only never move relative to the frame.
    if not keep_static:
        triangles = triangles[(triangles < num_moving).any(axis=1)]
    opening = OPENING_TRIANGLES - 60 + opening_offset
    return np.concatenate([triangles, MOUTH_TRIANGLES, opening]).astype(np.int64)
