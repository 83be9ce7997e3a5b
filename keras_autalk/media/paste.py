"""Paste generated face crops back into the user's photo.

`paste_back` warps one crop back through the inverse of the alignment
transform and blends it in with the feathered mask; `FacePaster` does the
same for a stream of crops, computing the geometry once per photo.

Given the photo's landmarks, `FacePaster` changes only what speech changes:
the lower face (`lower_face_mask`: mouth, chin, the jaw line and the cheeks
below the nose, feathered inwards from the photo's own jaw line), with the
generated pixels' colour matched to the photo's along the mask's soft edge.
Every pixel outside the mask is the photo's own, bit for bit.
"""

import dataclasses

import numpy as np
import scipy.ndimage
import scipy.sparse
from matplotlib.path import Path as PolygonPath

from keras_autalk.config import FaceConfig
from keras_autalk.media.face import (
    LEFT_EYE,
    RIGHT_EYE,
    apply_transform,
    feather_mask,
    invert_transform,
    warp,
)
from keras_autalk.media.warp import sample_bilinear


def covered_box(matrix, size, shape):
    """`(left, top, right, bottom)`: the photo pixels a `size` crop covers, one pixel wider, clipped.

    Args:
        matrix: the photo-to-crop transform (`AlignedFace.matrix`).
        size: the crop's side.
        shape: the photo's `(height, width)`.
    """
    height, width = shape[:2]
    corners = apply_transform(
        invert_transform(matrix), [[0, 0], [size, 0], [0, size], [size, size]]
    )
    left = int(max(0, np.floor(corners[:, 0].min()) - 1))
    top = int(max(0, np.floor(corners[:, 1].min()) - 1))
    right = int(min(width, np.ceil(corners[:, 0].max()) + 1))
    bottom = int(min(height, np.ceil(corners[:, 1].max()) + 1))
    return left, top, right, bottom


def paste_back(image, crop, matrix, config=FaceConfig()):
    """Put an (edited) aligned `crop` back into `image` with a feathered mask.

    Only the region the crop covers is warped, so this stays cheap on large
    photos.

    Args:
        image: the original `(h, w, 3)` uint8 photo.
        crop: `(size, size, 3)` uint8 crop in template coordinates.
        matrix: the image-to-crop transform from `align_face`.

    Returns:
        A new `(h, w, 3)` uint8 image.
    """
    height, width = image.shape[:2]
    size = crop.shape[0]
    left, top, right, bottom = covered_box(matrix, size, (height, width))
    result = image.copy()
    if right <= left or bottom <= top:
        return result
    # Transform from the region's own pixels to crop pixels.
    region_matrix = matrix.copy()
    region_matrix[:, 2] += matrix[:, :2] @ np.array([left, top], dtype=np.float64)
    to_region = invert_transform(region_matrix)
    region_shape = (bottom - top, right - left)
    mask = feather_mask(dataclasses.replace(config, crop_size=size))
    warped_crop = warp(crop.astype(np.float64), to_region, region_shape)
    warped_mask = warp(mask, to_region, region_shape)
    # Outside the crop, warp's edge mode repeats the mask's zero border.
    warped_mask = np.clip(warped_mask, 0.0, 1.0)[..., None]
    original = image[top:bottom, left:right].astype(np.float64)
    blended = warped_mask * warped_crop + (1.0 - warped_mask) * original
    result[top:bottom, left:right] = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
    return result


# The lower-face mask, in inter-ocular distances (IOD): its top edge runs
# this far below the nose tip (point 33, under the nostrils, is the middle)
# and the feathered band inside its edge is this wide.
MASK_TOP_BELOW_NOSE_IOD = 0.05
MASK_FEATHER_IOD = 0.22


def lower_face_polygon(landmarks):
    """The lower face as a polygon in image pixels, `(n, 2)`.

    Along the photo's own jaw line (points 2-14) to the chin and up the other
    side, then across under the nose: from the jaw at the height of the nose
    bottom, through the cheeks beside the nostrils (points 31-35 lowered a
    little) back to the start. The eyes, brows, nose and upper cheeks are
    outside.
    """
    landmarks = np.asarray(landmarks, dtype=np.float64)
    left_eye = landmarks[LEFT_EYE].mean(axis=0)
    right_eye = landmarks[RIGHT_EYE].mean(axis=0)
    across = right_eye - left_eye
    interocular = float(np.linalg.norm(across))
    down = np.array([-across[1], across[0]]) / max(interocular, 1e-9)
    lowered = MASK_TOP_BELOW_NOSE_IOD * interocular * down
    nose = landmarks[[35, 34, 33, 32, 31]] + lowered
    # The cheeks between the jaw and the nose wings, at the nose's bottom.
    right_cheek = landmarks[14] + 0.5 * (landmarks[35] + lowered - landmarks[14])
    left_cheek = landmarks[2] + 0.5 * (landmarks[31] + lowered - landmarks[2])
    return np.vstack([landmarks[2:15], right_cheek, nose, left_cheek])


def lower_face_mask(shape, landmarks, box=None):
    """The lower-face blend mask, float32 in [0, 1], over `box` of an image of `shape`.

    1 well inside `lower_face_polygon`, 0 outside it, rising smoothly (a
    raised cosine) over `MASK_FEATHER_IOD` inside the edge, so the edge
    itself is the photo's own and the jaw line stays where the photo has it.

    Args:
        shape: the image's `(height, width, ...)`.
        landmarks: its `(68, 2)` landmarks.
        box: `(left, top, right, bottom)` of the region wanted; default the
            whole image.

    Returns:
        `(bottom - top, right - left)` float32.
    """
    height, width = shape[:2]
    left, top, right, bottom = box if box is not None else (0, 0, width, height)
    landmarks = np.asarray(landmarks, dtype=np.float64)
    interocular = float(
        np.linalg.norm(landmarks[RIGHT_EYE].mean(axis=0) - landmarks[LEFT_EYE].mean(axis=0))
    )
    rows, cols = np.mgrid[top:bottom, left:right]
    inside = (
        PolygonPath(lower_face_polygon(landmarks))
        .contains_points(np.stack([cols.ravel(), rows.ravel()], axis=1))
        .reshape(rows.shape)
    )
    # Distance to the nearest pixel outside, with the region's border counted
    # as outside only where the polygon reaches it.
    padded = np.pad(inside, 1, constant_values=False)
    distance = scipy.ndimage.distance_transform_edt(padded)[1:-1, 1:-1]
    ramp = np.clip(distance / max(MASK_FEATHER_IOD * interocular, 1.0), 0.0, 1.0)
    return (0.5 - 0.5 * np.cos(np.pi * ramp)).astype(np.float32)


# Levels (0-255) the generated mouth's chroma may go beyond the photo's own lower face.
CHROMA_MARGIN = 12.0
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def _chroma(rgb):
    """`(N, 2)` BT.601 colour differences (B - Y, R - Y) of `(N, 3)` RGB."""
    luma = rgb @ _LUMA
    return np.stack([rgb[:, 2] - luma, rgb[:, 0] - luma], axis=1)


def _within_chroma(rgb, low, high):
    """`(N, 3)` RGB with its chroma clamped to `[low, high]`, its luma kept.

    Example:
    >>> green = np.array([[40.0, 220.0, 40.0]], np.float32)
    >>> _within_chroma(green, np.array([-20.0, 0.0]), np.array([5.0, 40.0])).round().tolist()
    [[146.0, 150.0, 126.0]]
    """
    luma = rgb @ _LUMA
    blue_diff, red_diff = np.clip(_chroma(rgb), low, high).T
    red, blue = luma + red_diff, luma + blue_diff
    green = (luma - _LUMA[0] * red - _LUMA[2] * blue) / _LUMA[1]
    return np.clip(np.stack([red, green, blue], axis=1), 0.0, 255.0).astype(np.float32)


class FacePaster:
    """Pastes generated crops back into the photo, fast, frame after frame.

    Computes once what `paste_back` computes per call (the region
    the crop covers, where each of its pixels samples the crop, the warped
    feathered mask, the photo's share of the blend), so each frame costs one
    sparse product (4 bilinear weights per pixel the mask touches). Pixels the mask does
    not touch are the photo's own, bit for bit.

    With `landmarks` (the photo's own), only the lower face is pasted
    (`lower_face_mask`) and each frame's generated pixels are shifted in
    colour so that, along the mask's soft edge, they match the photo on
    average: no rim where the two meet.

    Args:
        photo: the `(h, w, 3)` uint8 photo.
        matrix: the photo-to-crop transform (`AlignedFace.matrix`).
        crop_size: side of the crops.
        config: `FaceConfig` (its `feather`, for the whole-crop mask).
        landmarks: the photo's `(68, 2)` landmarks: paste the lower face
            only. None: the whole crop, through its feathered square mask.

    Attributes:
        box: `(left, top, right, bottom)`: the photo pixels the crop covers.
        changed_box: `(left, top, right, bottom)`: the smallest box holding
            every pixel a paste may change (never empty); outside it each
            frame is the photo.

    Each frame is a new array unless `out` is given: a frame (or a
    `changed_box` region, `new_region`) from an earlier paste, in which
    only the pixels a paste changes are rewritten, the same pixels every
    frame, so a stream of frames costs what the face costs, not the photo.

    Example:
    ```python
    paster = FacePaster(photo, aligned.matrix, 128)
    frame = paster.paste(crop)   # crop float in [0, 1]
    region = paster.new_region()
    for crop in crops:
        paster.paste(crop, out=region)   # region: photo[changed_box] with crop pasted
    ```
    """

    def __init__(self, photo, matrix, crop_size, config=FaceConfig(), landmarks=None):
        self.photo = np.ascontiguousarray(photo)
        height, width = photo.shape[:2]
        size = int(crop_size)
        left, top, right, bottom = covered_box(matrix, size, (height, width))
        self.box = (left, top, right, bottom)
        self.size = size
        rows, cols = np.mgrid[top : max(top, bottom), left : max(left, right)]
        # Where each photo pixel of the region falls in the crop (pixel centres
        # on integers, as skimage's warp), sampled bilinearly with edge clamping.
        source = apply_transform(matrix, np.stack([cols.ravel(), rows.ravel()], axis=1))
        mask = feather_mask(dataclasses.replace(config, crop_size=size))
        x0, y0 = np.floor(source[:, 0]), np.floor(source[:, 1])
        fx, fy = source[:, 0] - x0, source[:, 1] - y0
        x0 = x0.astype(np.int64)
        y0 = y0.astype(np.int64)
        xs = (np.clip(x0, 0, size - 1), np.clip(x0 + 1, 0, size - 1))
        ys = (np.clip(y0, 0, size - 1), np.clip(y0 + 1, 0, size - 1))
        weights = ((1 - fy) * (1 - fx), (1 - fy) * fx, fy * (1 - fx), fy * fx)
        indices = (
            ys[0] * size + xs[0],
            ys[0] * size + xs[1],
            ys[1] * size + xs[0],
            ys[1] * size + xs[1],
        )
        warped_mask = sum(w * mask.ravel()[i] for w, i in zip(weights, indices))
        warped_mask = np.clip(warped_mask, 0.0, 1.0)
        if landmarks is not None:
            # The lower face only, and only where the crop reaches.
            lower = lower_face_mask(self.photo.shape, landmarks, self.box).ravel()
            warped_mask = np.where(warped_mask > 0, lower, 0.0)
        active = warped_mask > 0
        self._pixels = np.flatnonzero(active)
        count = len(self._pixels)
        # One sparse row per touched pixel holding its 4 bilinear weights:
        # warping a crop is then a single sparse product.
        self._sampling = scipy.sparse.csr_matrix(
            (
                np.stack([w[active] for w in weights], axis=1).ravel().astype(np.float32),
                np.stack([i[active] for i in indices], axis=1).ravel(),
                np.arange(0, 4 * count + 1, 4),
            ),
            shape=(count, size * size),
        )
        self._mask = warped_mask[active].astype(np.float32)[:, None]
        region = self.photo[top:bottom, left:right].reshape(-1, 3).astype(np.float32)
        self._photo_share = (1.0 - self._mask) * region[self._pixels]
        self._match_colours(region[self._pixels], lower_face=landmarks is not None)
        # The same pixels as indices into the whole (flattened) photo.
        self._photo_pixels = (
            (top + self._pixels // max(1, right - left)) * width
            + left
            + self._pixels % max(1, right - left)
        )
        # ... and into the smallest box holding them (one pixel where there are none).
        changed_x, changed_y = self._photo_pixels % width, self._photo_pixels // width
        if count:
            self.changed_box = (
                int(changed_x.min()),
                int(changed_y.min()),
                int(changed_x.max()) + 1,
                int(changed_y.max()) + 1,
            )
        else:
            self.changed_box = (0, 0, 1, 1)
        changed_left, changed_top, changed_right, _ = self.changed_box
        self._region_pixels = (
            (changed_y - changed_top) * (changed_right - changed_left) + changed_x - changed_left
        )
        # For `paste_motion`: each touched pixel's (x, y) in the photo, and the
        # linear map taking a displacement in crop pixels to one in photo pixels.
        self._coords = np.stack(
            [self._photo_pixels % width, self._photo_pixels // width], axis=1
        ).astype(np.float32)
        self._crop_to_photo = np.linalg.inv(np.asarray(matrix, np.float64)[:2, :2]).astype(
            np.float32
        )

    def _match_colours(self, touched, lower_face):
        """The colour references of the lower face: its seam's mean and its chroma range.

        Args:
            touched: the photo's `(N, 3)` float32 pixels the paste changes.
            lower_face: whether only the lower face is pasted.
        """
        # The soft edge where colours are matched: neither photo nor generated alone.
        self._seam = None
        # The chroma the photo's own lower face spans: generated mouth pixels are
        # kept inside it (`paste_motion`), so the drawn inside of the mouth cannot
        # take a colour the face does not have.
        self._chroma_range = None
        if not lower_face or not len(touched):
            return
        band = (self._mask[:, 0] > 0.05) & (self._mask[:, 0] < 0.6)
        if band.sum() >= 16:
            self._seam = np.flatnonzero(band)
            self._seam_photo = touched[self._seam].mean(axis=0)
        chroma = _chroma(touched[self._mask[:, 0] > 0.5])
        if len(chroma) >= 16:
            self._chroma_range = (
                np.percentile(chroma, 1, axis=0) - CHROMA_MARGIN,
                np.percentile(chroma, 99, axis=0) + CHROMA_MARGIN,
            )

    def new_region(self):
        """The photo's `changed_box` region, a new `(bottom - top, right - left, 3)` array.

        What `paste(..., out=)` and `paste_motion(..., out=)` rewrite in place.
        """
        left, top, right, bottom = self.changed_box
        return self.photo[top:bottom, left:right].copy()

    def _write(self, blended, out):
        """`out` (a new frame when None) with the changed pixels set to uint8 `blended`."""
        if out is None:
            out, pixels = self.photo.copy(), self._photo_pixels
        else:
            left, top, right, bottom = self.changed_box
            if not (
                isinstance(out, np.ndarray)
                and out.dtype == np.uint8
                and out.flags.c_contiguous
                and out.shape in (self.photo.shape, (bottom - top, right - left, 3))
            ):
                raise ValueError(
                    f"out must be a C-contiguous uint8 frame {self.photo.shape} or "
                    f"changed_box region {(bottom - top, right - left, 3)}; received "
                    f"{getattr(out, 'dtype', type(out).__name__)} "
                    f"{getattr(out, 'shape', '')}."
                )
            # The two shapes are one only where the box is the whole photo.
            pixels = self._photo_pixels if out.shape == self.photo.shape else self._region_pixels
        out.reshape(-1, 3)[pixels] = blended
        return out

    def paste(self, crop, out=None):
        """The photo with `crop` (`(S, S, 3)`, float in [0, 1] or uint8) pasted in.

        Args:
            crop: the generated crop.
            out: None, or a uint8 frame `(h, w, 3)` or `changed_box` region
                (`new_region`) that holds the photo wherever a paste does not
                write (a copy of it, or an earlier paste's `out`): rewritten
                in place and returned.

        Returns:
            A new `(h, w, 3)` uint8 frame, or `out`.
        """
        crop = np.asarray(crop)
        flat = crop.reshape(-1, 3).astype(np.float32)
        if crop.dtype != np.uint8:
            flat = np.clip(flat, 0.0, 1.0, out=flat) * np.float32(255.0)
        blended = self._sampling @ flat
        if self._seam is not None:
            blended += self._seam_photo - blended[self._seam].mean(axis=0)
            np.clip(blended, 0.0, 255.0, out=blended)
        blended *= self._mask
        blended += self._photo_share
        # A convex combination of values in 0..255: rounding half up stays in range.
        blended += 0.5
        return self._write(blended.astype(np.uint8), out)

    def paste_motion(self, crop, flow, occlusion, out=None):
        """The photo with its own pixels moved by a flow decoder's motion.

        The crop's backward flow is carried to every touched photo pixel
        (bilinearly, as the crop itself), turned into photo pixels through
        the alignment's inverse (rotation and scale), and the photo is
        sampled there bilinearly, at its own resolution: lips, skin and
        stubble stay the photo's own pixels. Only where the occlusion mask
        is on (the mouth's inside) do the generated crop's pixels show,
        enlarged from the crop, their chroma kept within the range the
        photo's own lower face spans (a little beyond it, `CHROMA_MARGIN`):
        an undertrained mouth can draw no colour the face does not have.
        Then the lower-face mask blends into the photo as `paste` does.

        Args:
            crop: the generated `(S, S, 3)` frame, float in [0, 1].
            flow: `(S, S, 2)` (dx, dy) in crop pixels (`FlowDecoder`).
            occlusion: `(S, S)` or `(S, S, 1)` in [0, 1].
            out: as `paste`'s.

        Returns:
            A new `(h, w, 3)` uint8 frame, or `out`.
        """
        # One sparse product carries frame, flow and occlusion to the photo's pixels.
        motion = np.concatenate(
            [
                np.asarray(crop, np.float32).reshape(-1, 3),
                np.asarray(flow, np.float32).reshape(-1, 2),
                np.asarray(occlusion, np.float32).reshape(-1, 1),
            ],
            axis=1,
        )
        carried = self._sampling @ motion
        moved = carried[:, 3:5] @ self._crop_to_photo.T
        blended = sample_bilinear(
            self.photo, self._coords[:, 0] + moved[:, 0], self._coords[:, 1] + moved[:, 1]
        )
        inside = np.clip(carried[:, 5:6], 0.0, 1.0)
        blended *= 1.0 - inside
        # The generated pixels count only where the occlusion mask is on: the
        # mouth's inside, a small part of the lower face.
        shown = np.flatnonzero(inside[:, 0] > 0.0)
        generated = np.clip(carried[shown, :3], 0.0, 1.0) * np.float32(255.0)
        if self._chroma_range is not None:
            generated = _within_chroma(generated, *self._chroma_range)
        blended[shown] += generated * inside[shown]
        blended *= self._mask
        blended += self._photo_share + 0.5
        return self._write(np.clip(blended, 0, 255).astype(np.uint8), out)


# ------------------------------------------------------------------- inputs
