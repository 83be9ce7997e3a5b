"""Animate a face photo's mouth: the frames of the offline demo corpus.

A photo becomes an `Identity`: the face placed in a GRID-sized camera frame
(360 x 288) with its 68 dlib landmarks, optionally recoloured, relit,
rescaled, tilted, mirrored or morphed with another photo. `render_frames`
then animates it from a track of mouth-shape parameters
(`keras_autalk.config.MOUTH_PARAMETERS`, each 0..1 per frame):

1. `mouth_landmarks` moves the mouth points (48-67) and the lower jaw line
   (4-12) in the face's own frame, in units of the inter-ocular distance, so
   the same parameters give the same expression on every face.
2. A triangle mesh over the face (the landmarks plus a fixed ring around the
   jaw and above the brows) is warped piecewise-affinely from the neutral
   to the displaced landmarks by a small numpy rasteriser (per-triangle
   bounding boxes, barycentric coordinates, bilinear sampling), so the
   chin, cheeks and lips stretch smoothly and nothing outside the ring moves.
3. The mouth opening (inside the inner-lip contour) is painted: a dark
   cavity, the upper teeth fixed to the skull just under the upper lip, the
   lower teeth and tongue riding on the jaw, with antialiased edges and a
   dark seam where closed lips meet.
4. Optional head motion and blinks. The face moves by a similarity
   transform (sub-pixel jitter plus a slow drift of at most a few pixels,
   a fraction of a degree and under 1 % in scale); the rest of the frame
   (hair, body, backdrop) follows the drift in whole pixels and the ring
   around the face absorbs the difference. Blinks slide the upper eyelids
   down over the eyes and draw a lash line.

The input photo's own mouth may be open (astronaut smiles with her teeth
showing): parameters all zero mean lips closed, so the renderer first closes
the inner lips and paints the opening only where the parameters open it.

Example:
```python
rng = np.random.default_rng(0)
identity = identity_bank(1, seed=0)[0]
mouth = np.zeros((25, len(MOUTH_PARAMETERS)), np.float32)
mouth[10:15, MOUTH_PARAMETERS.index("jaw_drop")] = 0.8
frames, landmarks = render_frames(identity, mouth, rng)
frames.shape  # (25, 288, 360, 3)
```
"""

import numpy as np
from scipy import ndimage

from keras_autalk.config import MOUTH_PARAMETERS, AudioConfig
from keras_autalk.corpora.demo.face_mesh import (
    CORNER_EXTENSIONS,
    EYELIDS,
    EYES,
    INNER_PAIRS,
    JAW_MOVING,
    LOWER_INNER,
    LOWER_OUTER,
    OPENING_TRIANGLES,
    OUTER_LIPS,
    OUTER_PAIRS,
    SOFT_FOLLOW,
    SOFT_PAIRS,
    UPPER_INNER,
    UPPER_OUTER,
    corner_extensions,
    corner_steps,
    face_frame,
    from_local,
    ring_points,
    soft_points,
    to_local,
    triangulate,
)
from keras_autalk.corpora.demo.identities import apply, similarity
from keras_autalk.corpora.demo.mesh import bilinear, rasterise
from keras_autalk.errors import AutalkError

_PARAM = {name: index for index, name in enumerate(MOUTH_PARAMETERS)}


# The opening's triangles get their own copies of the inner-lip points, whose
# source lies inside the lips (toward these outer-lip points): wherever the
# painted interior does not cover them they show lip, never the photo's own
# teeth or mouth corners.
_OPENING_SOURCE_TOWARD = np.array([48, 50, 51, 52, 54, 56, 57, 58])


_OPENING_SOURCE_DEPTH = 0.35


# How far the parameters move the mouth and where the teeth sit, in
# inter-ocular distances (IOD), positive down: jaw_drop and lip_part at 1
# part the lips by about 0.4 IOD (a wide-open "aa"; the mouth is about
# 0.9 IOD wide).
_JAW_CHIN = 0.30  # chin drop at jaw_drop = 1


_JAW_LOWER_LIP = 0.27  # lower lip drop at jaw_drop = 1


_TEETH_BELOW_REST = 0.06  # upper incisors' edge below the closed-lip line


_LOWER_TEETH_UNDER_LIP = 0.02  # lower incisors' edge under the lower lip moved by the jaw alone


_TEETH_HALF_WIDTH = 0.42  # visible teeth arch, either side of the centre


_TEETH_CROWN = 0.16  # visible height of the upper incisors


# Head motion bounds in pixels: the slow drift, and drift plus jitter.
_MAX_DRIFT, _MAX_SHIFT = 2.5, 3.0


def _close_lips(local):
    """Move the inner lips together (and the outer lips half as far)."""
    closed = local.copy()
    for upper, lower in INNER_PAIRS:
        middle = (local[upper, 1] + local[lower, 1]) / 2.0
        shift_up, shift_low = middle - local[upper, 1], middle - local[lower, 1]
        closed[upper, 1] = closed[lower, 1] = middle
        # The outer lip above/below the pair follows half way.
        column = np.argmin(np.abs(local[OUTER_PAIRS[:, 0], 0] - local[upper, 0]))
        closed[OUTER_PAIRS[column, 0], 1] += 0.5 * shift_up
        closed[OUTER_PAIRS[column, 1], 1] += 0.5 * shift_low
    return closed


def _mouth_displacement(local, params):
    """Displacements `(T, 68, 2)` in IOD units for parameters `(T, P)`."""
    p = {name: params[:, index][:, None] for name, index in _PARAM.items()}
    jaw, part, pucker, stretch = p["jaw_drop"], p["lip_part"], p["pucker"], p["stretch"]
    up, down, raise_, press = (
        p["corner_up"],
        p["corner_down"],
        p["upper_lip_raise"],
        p["lip_press"],
    )
    num_frames = params.shape[0]
    displacement = np.zeros((num_frames, 68, 2))

    mouth = local[48:68]
    centre_a = local[OUTER_LIPS, 0].mean()
    # Position across the lips: -1 and 1 at the corners of each contour.
    inner = np.arange(48, 68) >= 60
    left = np.where(inner, local[60, 0], local[48, 0])
    right = np.where(inner, local[64, 0], local[54, 0])
    u = np.clip((2.0 * mouth[:, 0] - left - right) / np.maximum(right - left, 1e-3), -1.0, 1.0)
    # 1 at the middle of the lips, 0 at the corners: a rounded opening, the
    # lower lip (hanging on the jaw) U-shaped.
    profile = np.sqrt(1.0 - u**2)[None, :]
    lower_profile = (1.0 - u**2)[None, :]

    # Horizontal: the mouth narrows (pucker, wide jaw) or widens (stretch).
    outer_width = (
        0.24 * stretch - 0.32 * pucker + 0.07 * up - 0.05 * jaw + 0.03 * press - 0.02 * down
    )
    inner_width = outer_width - 0.18 * pucker
    width = np.where(inner[None, :], inner_width, outer_width)
    displacement[:, 48:68, 0] = (mouth[:, 0] - centre_a)[None, :] * width

    # Vertical: the corner value blends into a value at the middle of each lip.
    corner = 0.10 * jaw + 0.015 * part - 0.01 * stretch
    middles = {
        "upper_outer": -0.035 * part - 0.045 * pucker + 0.015 * stretch + 0.03 * press,
        "upper_inner": -0.06 * part - 0.01 * pucker + 0.01 * press,
        "lower_inner": _JAW_LOWER_LIP * jaw + 0.075 * part + 0.01 * pucker - 0.01 * press,
        "lower_outer": _JAW_LOWER_LIP * jaw
        + 0.045 * part
        + 0.045 * pucker
        - 0.015 * stretch
        - 0.045 * press,
    }
    groups = {
        "upper_outer": UPPER_OUTER,
        "upper_inner": UPPER_INNER,
        "lower_inner": LOWER_INNER,
        "lower_outer": LOWER_OUTER,
    }
    for key, indices in groups.items():
        weight = (lower_profile if key.startswith("lower") else profile)[:, indices - 48]
        displacement[:, indices, 1] = corner + (middles[key] - corner) * weight
    # The upper-lip raiser lifts the middle of the lip most.
    displacement[:, UPPER_OUTER, 1] -= 0.10 * raise_ * lower_profile[:, UPPER_OUTER - 48]
    displacement[:, UPPER_INNER, 1] -= 0.11 * raise_ * lower_profile[:, UPPER_INNER - 48]
    # Raised or lowered corners curve the whole mouth, more toward the corners.
    displacement[:, 48:68, 1] += (0.08 * down - 0.08 * up) * np.abs(u)[None, :]
    # Puckering rounds the mouth: the corners move toward the lips' centre
    # line (this also undoes most of a smiling photo's raised corners).
    centre_b = local[60:68, 1].mean()
    corner_line = np.interp(u, [-1.0, 1.0], [local[48, 1], local[54, 1]])
    displacement[:, 48:68, 1] += 0.8 * pucker * (centre_b - corner_line)[None, :] * (1.0 - profile)

    # Jaw line: points below the nose follow the chin, more the lower they are.
    pivot = local[30, 1]
    reach = max(1e-3, local[8, 1] - pivot)
    weight = np.clip((local[JAW_MOVING, 1] - pivot) / reach, 0.0, 1.0) ** 1.5
    displacement[:, JAW_MOVING, 1] += (_JAW_CHIN * jaw - 0.05 * press) * weight[None, :]
    return displacement


def mouth_landmarks(neutral_landmarks, mouth_params):
    """Displace the mouth and lower-jaw landmarks by mouth-shape parameters.

    The face at rest is first given closed lips; then each parameter
    (`keras_autalk.config.MOUTH_PARAMETERS`, 0..1) moves points in the face's
    own frame, scaled by the inter-ocular distance: `jaw_drop` lowers the
    chin, jaw line and lower lip; `lip_part` separates the inner lips;
    `pucker` narrows and rounds the lips; `stretch` widens them;
    `corner_up` / `corner_down` move the lip corners; `upper_lip_raise`
    lifts the upper lip; `lip_press` thins the lips and raises the chin.

    Args:
        neutral_landmarks: `(68, 2)` landmarks of the face at rest.
        mouth_params: `(P,)` or `(T, P)` parameters, P = len(MOUTH_PARAMETERS).

    Returns:
        `(68, 2)` or `(T, 68, 2)` float64 landmarks in the same image frame.

    Example:
    ```python
    params = np.zeros(len(MOUTH_PARAMETERS))
    params[MOUTH_PARAMETERS.index("jaw_drop")] = 1.0
    opened = mouth_landmarks(identity.landmarks, params)
    opened[8, 1] > identity.landmarks[8, 1]  # True: the chin went down
    ```
    """
    neutral = np.asarray(neutral_landmarks, dtype=np.float64)
    if neutral.shape != (68, 2):
        raise AutalkError(f"Landmarks must have shape (68, 2), got {neutral.shape}.")
    params = np.asarray(mouth_params, dtype=np.float64)
    single = params.ndim == 1
    params = np.atleast_2d(params)
    if params.ndim != 2 or params.shape[1] != len(MOUTH_PARAMETERS):
        raise AutalkError(
            f"Mouth parameters must have {len(MOUTH_PARAMETERS)} columns "
            f"({', '.join(MOUTH_PARAMETERS)}), got shape {np.shape(mouth_params)}."
        )
    params = np.clip(params, 0.0, 1.0)
    frame = face_frame(neutral)
    local = _close_lips(to_local(neutral, frame))
    moved = local[None] + _mouth_displacement(local, params)
    # Pressing can push the lower inner lip above the upper: meet in the middle.
    for upper, lower in INNER_PAIRS:
        crossed = moved[:, lower, 1] < moved[:, upper, 1]
        middle = (moved[:, lower, 1] + moved[:, upper, 1]) / 2.0
        moved[crossed, upper, 1] = middle[crossed]
        moved[crossed, lower, 1] = middle[crossed]
    result = from_local(moved, frame)
    return result[0] if single else result


def _smooth_curve(points, samples=6):
    """A Catmull-Rom curve through `points` (n, 2), `samples` per segment."""
    extended = np.concatenate(
        [2 * points[:1] - points[1:2], points, 2 * points[-1:] - points[-2:-1]]
    )
    t = np.linspace(0.0, 1.0, samples, endpoint=False)[:, None]
    p0, p1, p2, p3 = (extended[i : i + len(points) - 1] for i in range(4))
    curve = 0.5 * (
        (2 * p1)[:, None]
        + (p2 - p0)[:, None] * t
        + (2 * p0 - 5 * p1 + 4 * p2 - p3)[:, None] * t**2
        + (3 * p1 - p0 - 3 * p2 + p3)[:, None] * t**3
    )
    return np.concatenate([curve.reshape(-1, 2), points[-1:]])


def _curve_height(a, curve):
    """Height of a left-to-right curve at horizontal positions `a`."""
    return np.interp(a, np.maximum.accumulate(curve[:, 0]), curve[:, 1])


def _close_eyes(landmarks, closure):
    """Slide the upper eyelids down (and the lower ones up a little)."""
    closed = landmarks.copy()
    amount = np.asarray(closure, dtype=np.float64)[:, None]
    for upper, lower in EYELIDS:
        top, bottom = landmarks[:, upper], landmarks[:, lower]
        closed[:, upper] = top + 0.88 * amount * (bottom - top)
        closed[:, lower] = bottom + 0.12 * amount * (top - bottom)
    return closed


def _head_motion(num_frames, rng, fps):
    """Per frame `(dx, dy, angle, scale, body_dx, body_dy)`.

    The face moves by a slow drift (a few pixels, a fraction of a degree,
    under 1 % in scale) plus sub-pixel jitter. The rest of the frame (hair,
    body, backdrop) follows the drift's translation in whole pixels, with
    hysteresis so it does not flicker between two positions.
    """
    time = np.arange(num_frames) / fps
    motion = np.zeros((num_frames, 6))
    amplitudes = (1.2, 0.9, np.deg2rad(0.6), 0.006)
    for column, amplitude in enumerate(amplitudes):
        for _ in range(2):
            frequency = rng.uniform(0.08, 0.4)
            phase = rng.uniform(0, 2 * np.pi)
            motion[:, column] += (
                amplitude * rng.uniform(0.3, 1.0) * np.sin(2 * np.pi * frequency * time + phase)
            )
    drift = np.clip(motion[:, :2], -_MAX_DRIFT, _MAX_DRIFT)
    body = np.zeros(2)
    for index in range(num_frames):
        far = np.abs(drift[index] - body) > 0.75
        body = np.where(far, np.round(drift[index]), body)
        motion[index, 4:] = body
    jitter = ndimage.uniform_filter1d(rng.normal(0.0, 0.25, size=(num_frames, 2)), 2, axis=0)
    motion[:, :2] = np.clip(drift + jitter, -_MAX_SHIFT, _MAX_SHIFT)
    motion[:, 3] += 1.0
    return motion


def _blink_closure(num_frames, rng, fps):
    """Eyelid closure 0..1 per frame: a blink every 2-6 s, ~0.25 s long."""
    time = np.arange(num_frames) / fps
    closure = np.zeros(num_frames)
    end = num_frames / fps
    start = rng.uniform(0.3, 3.0)
    while start < end:
        relative = time - start
        closing = np.clip(relative / 0.08, 0.0, 1.0)
        opening = np.clip(1.0 - (relative - 0.1) / 0.16, 0.0, 1.0)
        shape = np.where(relative < 0.1, closing, opening) * (relative >= 0)
        closure = np.maximum(closure, shape)
        start += rng.uniform(2.0, 6.0)
    return closure


class _Renderer:
    """Everything about one identity that does not change from frame to frame."""

    def __init__(self, identity):
        image = np.asarray(identity.image)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise AutalkError("An identity's image must be an (h, w, 3) uint8 array.")
        self.height, self.width = image.shape[:2]
        self.image = image
        self.flat = image.reshape(-1, 3).astype(np.float32)
        self.pad = int(np.ceil(_MAX_DRIFT)) + 1
        self.padded = np.pad(
            image, ((self.pad, self.pad), (self.pad, self.pad), (0, 0)), mode="edge"
        )
        self.neutral = np.asarray(identity.landmarks, dtype=np.float64)
        self.frame = face_frame(self.neutral)
        self.iod = self.frame[3]
        # Mesh vertices: landmarks, cheek points, the static ring, and the
        # opening's own copies of the inner-lip points.
        self.ring = ring_points(self.neutral)
        self.soft = soft_points(self.neutral)
        self.num_moving = 68 + len(self.soft)
        self.ring_slice = slice(self.num_moving, self.num_moving + len(self.ring))
        self.source = self._vertices(self.neutral[None])[0]
        self.source[-8:] += _OPENING_SOURCE_DEPTH * (
            self.neutral[_OPENING_SOURCE_TOWARD] - self.neutral[60:68]
        )
        self.triangles = triangulate(
            self.source[:-8], num_moving=self.num_moving, opening_offset=len(self.source) - 8
        )
        moving = np.zeros(len(self.source), bool)
        soft = (
            68
            + np.r_[
                np.flatnonzero(SOFT_FOLLOW > 0), len(SOFT_PAIRS) + np.arange(len(CORNER_EXTENSIONS))
            ]
        )
        moving[np.r_[JAW_MOVING, 48:68, soft, len(moving) - 8 : len(moving)]] = True
        self.mouth_triangles = self.triangles[moving[self.triangles].any(axis=1)]
        # Triangles that must keep their orientation (the opening may collapse).
        self.folding_triangles = self.triangles[: -len(OPENING_TRIANGLES)]
        eyes = np.zeros(len(self.source), bool)
        eyes[EYELIDS.ravel()] = True
        self.eye_triangles = self.triangles[eyes[self.triangles].any(axis=1)]
        self.rest = mouth_landmarks(self.neutral, np.zeros(len(MOUTH_PARAMETERS)))
        self.rest_local = to_local(self.rest, self.frame) * self.iod
        self.centre = self.neutral[27:68].mean(axis=0)
        self._colours()

    def _colours(self):
        """Mouth-interior colours matched to the face's skin tone and white balance."""
        # Cheeks beside the mouth and the sides of the nose.
        samples = (self.neutral[[3, 13, 29, 31, 35]] + self.neutral[[48, 54, 30, 48, 54]]) / 2.0
        skin = bilinear(self.flat, self.height, self.width, samples[:, 0], samples[:, 1])
        skin = skin.mean(axis=0).astype(np.float64)
        luminance = float(np.clip(skin.mean() / 150.0, 0.35, 1.3))
        # The photo's colour cast relative to a typical skin tone, softened.
        tint = skin / max(skin.mean(), 1.0) / np.array([1.2, 0.95, 0.85])
        tint = np.clip(tint, 0.9, 1.1)
        self.teeth = np.clip(
            np.array([232.0, 216.0, 192.0]) * min(0.95, 0.85 * luminance) * (0.5 + 0.5 * tint),
            0,
            255,
        ).astype(np.float32)
        self.cavity = (np.array([58.0, 18.0, 22.0]) * luminance * tint).astype(np.float32)
        self.tongue = (np.array([178.0, 82.0, 90.0]) * luminance * tint).astype(np.float32)

    def _vertices(self, landmarks):
        """Mesh vertices `(T, n, 2)` for landmarks `(T, 68, 2)` in the still frame."""
        count = len(landmarks)
        moved = landmarks[:, SOFT_PAIRS].mean(axis=2) - self.neutral[SOFT_PAIRS].mean(axis=1)
        cheeks = self.soft[: len(SOFT_PAIRS)] + SOFT_FOLLOW[:, None] * moved
        corners = corner_extensions(
            landmarks, self.frame[1], corner_steps(self.neutral, self.frame[1])
        )
        return np.concatenate(
            [
                landmarks,
                cheeks,
                corners,
                np.broadcast_to(self.ring, (count,) + self.ring.shape),
                landmarks[:, 60:68],
            ],
            axis=1,
        )

    def _signed_areas(self, landmarks):
        """Signed areas `(T, m)` of the mesh's lip and face triangles (not the opening)."""
        corners = self._vertices(landmarks)[:, self.folding_triangles]
        first, second = corners[:, :, 1] - corners[:, :, 0], corners[:, :, 2] - corners[:, :, 0]
        return first[..., 0] * second[..., 1] - first[..., 1] * second[..., 0]

    def unfold(self, targets):
        """Pull back mouth displacements that would fold a triangle over.

        Extreme combinations of parameters on a face whose landmarks sit
        close together can turn a thin triangle inside out (a tear in the
        frame). Such frames get the largest fraction of their displacement
        from the closed-lip rest shape that keeps every triangle's
        orientation.
        """
        if len(targets) == 0:
            return targets
        orientation = np.sign(self._signed_areas(self.source[None, :68])[0])

        def folded(landmarks):
            return (self._signed_areas(landmarks) * orientation < 0).any(axis=1)

        bad = np.flatnonzero(folded(targets))
        if len(bad) == 0:
            return targets
        targets = targets.copy()
        rest = np.broadcast_to(self.rest, targets[bad].shape).copy()
        rest[:, 36:48] = targets[bad, 36:48]  # eyelids are not part of the problem
        low, high = np.zeros(len(bad)), np.ones(len(bad))
        for _ in range(10):
            middle = (low + high) / 2.0
            trial = rest + middle[:, None, None] * (targets[bad] - rest)
            fold = folded(trial)
            high = np.where(fold, middle, high)
            low = np.where(fold, low, middle)
        targets[bad] = rest + low[:, None, None] * (targets[bad] - rest)
        return targets

    def _face_matrix(self, motion):
        dx, dy, angle, scale = motion[:4]
        return similarity(scale, angle, self.centre, self.centre + np.array([dx, dy]))

    def _background(self, frame, dx, dy):
        """Write the whole frame shifted by whole pixels `(dx, dy)` into `frame`."""
        pad = self.pad
        kx = int(np.clip(-dx, -pad, pad))
        ky = int(np.clip(-dy, -pad, pad))
        frame[:] = self.padded[pad + ky : pad + ky + self.height, pad + kx : pad + kx + self.width]

    def frame_at(self, frame, target, params, closure, motion):
        """Render one frame into `frame` (H, W, 3) uint8; return its landmarks."""
        moved = motion is not None
        matrix = self._face_matrix(motion) if moved else None
        out_landmarks = apply(matrix, target) if moved else target
        if moved:
            self._background(frame, motion[4], motion[5])
        else:
            frame[:] = self.image
        vertices = self._vertices(target[None])[0]
        if moved:
            ring = vertices[self.ring_slice] + motion[4:6]
            vertices = apply(matrix, vertices)
            vertices[self.ring_slice] = ring
            triangles = self.triangles
        else:
            triangles = (
                np.concatenate([self.mouth_triangles, self.eye_triangles])
                if closure > 0
                else self.mouth_triangles
            )
        index, source_x, source_y = rasterise(
            vertices, self.source, triangles, self.height, self.width
        )
        flat = frame.reshape(-1, 3)
        values = bilinear(self.flat, self.height, self.width, source_x, source_y)
        flat[index] = (values + 0.5).astype(np.uint8)
        self._paint_mouth(frame, target, out_landmarks, params, matrix)
        if closure > 0.05:
            self._paint_lashes(frame, target, out_landmarks, closure, matrix)
        return out_landmarks

    def _local_grid(self, out_points, matrix, margin=2):
        """Pixel block around `out_points` and its coordinates in the face frame (px)."""
        low = np.floor(out_points.min(axis=0)).astype(int) - margin
        high = np.ceil(out_points.max(axis=0)).astype(int) + margin
        low = np.maximum(low, 0)
        high = np.minimum(high, [self.width - 1, self.height - 1])
        if np.any(high < low):
            return None
        ys, xs = np.mgrid[low[1] : high[1] + 1, low[0] : high[0] + 1]
        points = np.stack([xs, ys], axis=-1).astype(np.float64)
        if matrix is not None:
            points = apply(np.linalg.inv(np.vstack([matrix, [0, 0, 1]]))[:2], points)
        local = to_local(points, self.frame) * self.iod
        return (slice(low[1], high[1] + 1), slice(low[0], high[0] + 1)), local

    def _paint_mouth(self, frame, target, out_landmarks, params, matrix):
        """Paint the opening inside the inner lips: cavity, teeth, tongue, seam."""
        block = self._local_grid(out_landmarks[60:68], matrix)
        if block is None:
            return
        region, local = block
        a, b = local[..., 0], local[..., 1]
        inner = to_local(target[60:68], self.frame) * self.iod
        upper = inner[[0, 1, 2, 3, 4]]
        lower = inner[[0, 7, 6, 5, 4]]
        left, right = upper[0, 0], upper[-1, 0]
        # Smooth lip edges rather than the landmarks' polygon.
        y_up = _curve_height(a, _smooth_curve(upper))
        y_low = np.maximum(_curve_height(a, _smooth_curve(lower)), y_up)
        across = np.clip(np.minimum(a - left, right - a) + 0.5, 0.0, 1.0)
        coverage = np.clip(np.minimum(b + 0.5, y_low) - np.maximum(b - 0.5, y_up), 0.0, 1.0)
        alpha = (across * coverage)[..., None]
        gap = np.maximum(y_low - y_up, 0.0)
        seam = (
            0.45
            * across
            * np.clip(1.0 - gap / 1.5, 0.0, 1.0)
            * np.clip(1.0 - np.abs(b - (y_up + y_low) / 2.0) / 0.9, 0.0, 1.0)
        )[..., None]
        if alpha.max() <= 0.0 and seam.max() <= 0.0:
            return

        iod = self.iod
        rest_upper = self.rest_local[[60, 61, 62, 63, 64]]
        rest_line = _curve_height(a, _smooth_curve(rest_upper))
        centre = (rest_upper[0, 0] + rest_upper[-1, 0]) / 2.0
        jaw, pucker = params[_PARAM["jaw_drop"]], params[_PARAM["pucker"]]
        # Teeth recede into shadow away from the front.
        side = np.clip(np.abs(a - centre) / (_TEETH_HALF_WIDTH * iod), 0.0, 1.5)
        # Protruded (puckered) lips leave the teeth further back, in shadow.
        teeth_light = np.clip(1.0 - 0.8 * side**2, 0.1, 1.0) * (1.0 - 0.45 * pucker)
        # Gaps between the incisors, faint.
        spacing = 0.085 * iod
        gaps = 1.0 - 0.12 * np.cos(np.pi * (a - centre) / spacing) ** 30
        depth = np.clip(np.minimum(b - y_up, y_low - b) / max(1.0, 0.06 * iod), 0.0, 1.0)

        colour = self.cavity * (1.15 - 0.35 * depth)[..., None]
        lower_teeth_top = rest_line + (_JAW_LOWER_LIP * jaw + _LOWER_TEETH_UNDER_LIP) * iod
        tongue_top = lower_teeth_top + 0.015 * iod
        tongue_edge = np.clip((b - tongue_top) / max(1.0, 0.05 * iod), 0.0, 1.0)
        tongue_shape = np.clip(1.0 - (np.abs(a - centre) / (0.3 * iod)) ** 2, 0.0, 1.0)
        tongue = (tongue_edge * tongue_shape)[..., None]
        colour = colour * (1 - tongue) + self.tongue * (0.75 + 0.25 * tongue) * tongue
        lower_teeth = (np.clip(b - lower_teeth_top + 0.5, 0.0, 1.0) * (side < 1.0))[..., None]

        # Shaded teeth fade toward the cavity's colour, not toward grey.
        def shaded_teeth(light):
            return self.cavity + (self.teeth - self.cavity) * light[..., None]

        colour = colour * (1 - lower_teeth) + shaded_teeth(0.8 * teeth_light * gaps) * lower_teeth
        upper_edge = rest_line + _TEETH_BELOW_REST * (1.0 - 0.6 * pucker) * iod
        upper_teeth = np.clip(upper_edge - b + 0.5, 0.0, 1.0)[..., None]
        # Above the crowns (a strongly raised upper lip): the gum.
        gum = np.clip(upper_edge - _TEETH_CROWN * iod - b + 0.5, 0.0, 1.0)[..., None]
        lip_shadow = np.clip((b - y_up) / max(1.0, 0.035 * iod), 0.0, 1.0) * 0.35 + 0.65
        teeth = shaded_teeth(teeth_light * gaps * lip_shadow)
        colour = colour * (1 - upper_teeth) + teeth * upper_teeth
        colour = colour * (1 - gum) + self.tongue * 0.85 * gum

        pixels = frame[region].astype(np.float32)
        pixels = pixels * (1.0 - alpha) + colour * alpha
        pixels = pixels * (1.0 - seam) + self.cavity * 0.8 * seam
        frame[region] = np.clip(pixels + 0.5, 0, 255).astype(np.uint8)

    def _paint_lashes(self, frame, target, out_landmarks, closure, matrix):
        """A dark lash line along each closing upper eyelid."""
        for lid in EYES:
            block = self._local_grid(out_landmarks[lid], matrix)
            if block is None:
                continue
            region, local = block
            a, b = local[..., 0], local[..., 1]
            curve = to_local(target[lid], self.frame) * self.iod
            y_lid = _curve_height(a, _smooth_curve(curve))
            inside = np.clip(np.minimum(a - curve[0, 0], curve[-1, 0] - a) + 0.5, 0.0, 1.0)
            line = np.clip(1.0 - np.abs(b - y_lid - 0.3) / 1.1, 0.0, 1.0)
            alpha = (0.6 * closure * inside * line)[..., None]
            pixels = frame[region].astype(np.float32)
            pixels = pixels * (1.0 - alpha) + self.cavity * 0.6 * alpha
            frame[region] = np.clip(pixels + 0.5, 0, 255).astype(np.uint8)


def render_frames(identity, mouth, rng, head_motion=True, blinks=True, fps=AudioConfig.fps):
    """Animate an identity's mouth from a track of mouth-shape parameters.

    Args:
        identity: the `Identity` to animate.
        mouth: `(T, P)` parameters in 0..1, columns `MOUTH_PARAMETERS`.
        rng: `numpy.random.Generator` for head motion and blink times.
        head_motion: add sub-pixel jitter and a slow drift of a few pixels.
        blinks: close the eyes every few seconds.
        fps: frame rate the motion and blink timing are made for.

    Returns:
        `(frames, landmarks)`: `(T, H, W, 3)` uint8 frames and their
        `(T, 68, 2)` float32 landmarks (the warp's own targets).

    Example:
    ```python
    mouth = np.zeros((50, len(MOUTH_PARAMETERS)), np.float32)
    frames, landmarks = render_frames(identity, mouth, np.random.default_rng(0))
    ```
    """
    mouth = np.asarray(mouth, dtype=np.float64)
    if mouth.ndim != 2 or mouth.shape[1] != len(MOUTH_PARAMETERS):
        raise AutalkError(
            f"The mouth track must have shape (frames, {len(MOUTH_PARAMETERS)}), got {mouth.shape}."
        )
    if not np.all(np.isfinite(mouth)):
        raise AutalkError("The mouth track contains NaN or infinite values.")
    mouth = np.clip(mouth, 0.0, 1.0)
    num_frames = len(mouth)
    renderer = _Renderer(identity)
    targets = mouth_landmarks(renderer.neutral, mouth) if num_frames else np.zeros((0, 68, 2))
    closure = _blink_closure(num_frames, rng, fps) if blinks else np.zeros(num_frames)
    targets = renderer.unfold(_close_eyes(targets, closure))
    motion = _head_motion(num_frames, rng, fps) if head_motion else None
    frames = np.empty((num_frames, renderer.height, renderer.width, 3), dtype=np.uint8)
    landmarks = np.empty((num_frames, 68, 2), dtype=np.float32)
    for index in range(num_frames):
        landmarks[index] = renderer.frame_at(
            frames[index],
            targets[index],
            mouth[index],
            closure[index],
            motion[index] if motion is not None else None,
        )
    return frames, landmarks


def contact_sheet(rows, tile_box=None):
    """Tile frames into one image for looking at: `rows[r][c]` is a frame.

    Args:
        rows: a sequence of rows, each a sequence of equally sized frames.
        tile_box: optional `(left, top, right, bottom)` crop applied to
            every frame before tiling.

    Returns:
        One `(rows * h, columns * w, 3)` uint8 image with 2-px white gutters.

    Example:
    ```python
    sheet = contact_sheet([[frames[0], frames[10]]])
    ```
    """
    tiles = [
        [
            np.asarray(frame)
            if tile_box is None
            else np.asarray(frame)[tile_box[1] : tile_box[3], tile_box[0] : tile_box[2]]
            for frame in row
        ]
        for row in rows
    ]
    height, width = tiles[0][0].shape[:2]
    columns = max(len(row) for row in tiles)
    gutter = 2
    sheet = np.full(
        (len(tiles) * (height + gutter) - gutter, columns * (width + gutter) - gutter, 3),
        255,
        np.uint8,
    )
    for r, row in enumerate(tiles):
        for c, tile in enumerate(row):
            top, left = r * (height + gutter), c * (width + gutter)
            sheet[top : top + height, left : left + width] = tile
    return sheet
