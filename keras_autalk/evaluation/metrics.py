"""Image, landmark, AU and identity metrics of generated talking-head frames.

Pure numpy / scipy / scikit-image functions (dlib for landmarks and face
embeddings), plus two `keras.metrics.Mean` wrappers for use in `fit`.

Conventions:
- Images are float in [0, 1], shaped `(..., H, W, 3)`; every per-image
  metric returns an array of the leading shape `(...)` (float64).
- Frames are aligned face crops (`keras_autalk.media.face.align_face`), so
  the face sits where the template puts it.
- Landmarks are dlib's 68 points in crop pixels, `(x, y)` with pixel
  `(row i, column j)` centred at `(j, i)`.
- AU intensities are on OpenFace's 0-5 scale.

Example:
```python
psnr(generated, frames).mean()                        # dB
landmarks, found = crop_landmarks(generated)
landmark_distance(landmarks, reference_landmarks).mean()  # LMD, pixels
```
"""

import dataclasses

from keras_autalk.native import import_tensorflow

tf = import_tensorflow()

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import ops  # noqa: E402
from scipy import ndimage  # noqa: E402
from skimage import feature as skfeature  # noqa: E402

from keras_autalk.config import FaceConfig  # noqa: E402
from keras_autalk.errors import AutalkError  # noqa: E402
from keras_autalk.media import face  # noqa: E402
from keras_autalk.models import losses  # noqa: E402
from keras_autalk.stats import pearson  # noqa: E402

# dlib 68-point indices of the mouth (outer lip 48-59, inner lip 60-67).
MOUTH_POINTS = losses.MOUTH_LANDMARKS
FACE_POINTS = tuple(range(68))

# SSIM as in Wang et al. 2004: an 11-tap Gaussian window (sigma 1.5,
# truncated at 3.5 sigma) and the usual stabilising constants.
SSIM_SIGMA = 1.5
SSIM_TRUNCATE = 3.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03

# CPBD constants (Narvekar & Karam 2011).
CPBD_BLOCK = 64
CPBD_EDGE_BLOCK_FRACTION = 0.002
CPBD_BETA = 3.6
CPBD_LOW_CONTRAST = 50
CPBD_JNB_WIDTH_LOW_CONTRAST = 5.0
CPBD_JNB_WIDTH_HIGH_CONTRAST = 3.0
# The "just noticeable" probability: 1 - exp(-1) = 0.632, reached when an
# edge is exactly the just-noticeable width. Probabilities are binned to
# whole percent as in the reference implementation.
CPBD_PERCENT = 63
CPBD_MAX_SIDE_WIDTH = 100

# dlib's HOG detector, run on the two bundled photos, returns a box about as
# wide as the 68 landmarks' horizontal extent that starts about 12 % of that
# width above the eyebrows. That box, placed on the template, is where the
# shape predictor is run on an aligned crop.
CROP_BOX_ABOVE_BROWS = 0.12


def _same_shape(generated, reference):
    """Both image arrays as float64, checked to share an `(..., H, W, C)` shape."""
    generated = np.asarray(generated, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    if generated.shape != reference.shape:
        raise AutalkError(
            f"The generated and reference images differ in shape "
            f"({generated.shape} vs {reference.shape})."
        )
    if generated.ndim < 3:
        raise AutalkError(
            f"Expected images shaped (..., height, width, channels), got {generated.shape}."
        )
    return generated, reference


def psnr(generated, reference, max_value=1.0):
    """Peak signal-to-noise ratio of each image, in dB.

    Args:
        generated: `(..., H, W, C)` images.
        reference: the same shape.
        max_value: the largest possible pixel value (1 for [0, 1] images).

    Returns:
        `(...)` float64; `+inf` where the images are identical.

    Example:
    ```python
    psnr(np.zeros((2, 8, 8, 3)), np.full((2, 8, 8, 3), 0.1))  # [20., 20.]
    ```
    """
    generated, reference = _same_shape(generated, reference)
    mse = np.mean((generated - reference) ** 2, axis=(-3, -2, -1))
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(max_value**2 / mse)


def _ssim_map(generated, reference, max_value):
    """Per-pixel, per-channel SSIM, the window's border already cropped."""
    sigma = [0.0] * (generated.ndim - 3) + [SSIM_SIGMA, SSIM_SIGMA, 0.0]

    def blur(values):
        return ndimage.gaussian_filter(values, sigma, truncate=SSIM_TRUNCATE, mode="reflect")

    mean_x, mean_y = blur(generated), blur(reference)
    var_x = blur(generated * generated) - mean_x**2
    var_y = blur(reference * reference) - mean_y**2
    covariance = blur(generated * reference) - mean_x * mean_y
    c1 = (SSIM_K1 * max_value) ** 2
    c2 = (SSIM_K2 * max_value) ** 2
    ssim_map = ((2 * mean_x * mean_y + c1) * (2 * covariance + c2)) / (
        (mean_x**2 + mean_y**2 + c1) * (var_x + var_y + c2)
    )
    # Only pixels whose whole window lies inside the image count, as in
    # scikit-image and tf.image.ssim.
    pad = int(SSIM_TRUNCATE * SSIM_SIGMA + 0.5)
    return ssim_map[..., pad:-pad, pad:-pad, :]


def ssim(generated, reference, max_value=1.0):
    """Mean structural similarity of each image, per channel then averaged.

    Each colour channel is compared separately (Gaussian window, sigma 1.5,
    K1 = 0.01, K2 = 0.03, population covariances), the SSIM map is averaged
    over the pixels whose whole 11x11 window lies in the image, and the
    channels are averaged: the convention of
    `skimage.metrics.structural_similarity(..., gaussian_weights=True,
    sigma=1.5, use_sample_covariance=False, channel_axis=-1)` and of
    `tf.image.ssim`.

    Args:
        generated: `(..., H, W, C)` images, H and W at least 11.
        reference: the same shape.
        max_value: the data range (1 for [0, 1] images).

    Returns:
        `(...)` float64 in [-1, 1]; 1 for identical images.

    Example:
    ```python
    ssim(frames, frames)  # all ones
    ```
    """
    generated, reference = _same_shape(generated, reference)
    pad = int(SSIM_TRUNCATE * SSIM_SIGMA + 0.5)
    if min(generated.shape[-3:-1]) <= 2 * pad:
        raise AutalkError(
            f"SSIM needs images larger than {2 * pad}x{2 * pad} pixels, "
            f"got {generated.shape[-3]}x{generated.shape[-2]}."
        )
    return _ssim_map(generated, reference, max_value).mean(axis=(-3, -2, -1))


def _mouth_boxes(landmarks, height, width, margin):
    """Integer `(..., 4)` boxes `(x0, y0, x1, y1)`, end-exclusive, clipped to the image.

    The box holds exactly the pixels `mouth_region` (the training loss's
    mouth mask) sets to 1: columns `x` with `x_min <= x <= x_max`.
    """
    boxes = np.asarray(losses.mouth_boxes(np.asarray(landmarks, dtype=np.float32), margin))
    x0 = np.clip(np.ceil(boxes[..., 0]), 0, width)
    y0 = np.clip(np.ceil(boxes[..., 1]), 0, height)
    x1 = np.clip(np.floor(boxes[..., 2]) + 1, x0, width)
    y1 = np.clip(np.floor(boxes[..., 3]) + 1, y0, height)
    return np.stack([x0, y0, x1, y1], axis=-1).astype(np.int64)


def mouth_box(landmarks, image_size, margin=0.25):
    """The mouth's box in pixels: landmarks 48-67 plus a margin.

    The same region the training loss weights (`losses.mouth_region`).

    Args:
        landmarks: `(68, 2)` landmark `(x, y)` positions in pixels.
        image_size: `size` or `(height, width)` of the image; the box is
            clipped to it.
        margin: padding on every side as a fraction of the mouth's width.

    Returns:
        `(x0, y0, x1, y1)` ints, end-exclusive: the mouth is
        `image[y0:y1, x0:x1]`. Empty (`x0 == x1` or `y0 == y1`) when the
        mouth lies outside the image.

    Example:
    ```python
    x0, y0, x1, y1 = mouth_box(landmarks, 128)
    mouth = frame[y0:y1, x0:x1]
    ```
    """
    landmarks = np.asarray(landmarks)
    if landmarks.shape != (68, 2):
        raise AutalkError(f"Expected (68, 2) landmarks, got {landmarks.shape}.")
    height, width = (image_size, image_size) if np.isscalar(image_size) else image_size
    return tuple(int(v) for v in _mouth_boxes(landmarks, height, width, margin))


def _mouth_metric(metric, generated, reference, reference_landmarks, margin, max_value):
    generated, reference = _same_shape(generated, reference)
    lead = generated.shape[:-3]
    height, width, channels = generated.shape[-3:]
    reference_landmarks = np.asarray(reference_landmarks, dtype=np.float64)
    if reference_landmarks.shape != lead + (68, 2):
        raise AutalkError(
            f"Expected reference landmarks shaped {lead + (68, 2)}, "
            f"got {reference_landmarks.shape}."
        )
    boxes = _mouth_boxes(reference_landmarks, height, width, margin).reshape(-1, 4)
    generated = generated.reshape((-1, height, width, channels))
    reference = reference.reshape((-1, height, width, channels))
    values = np.full(len(boxes), np.nan)
    for index, (x0, y0, x1, y1) in enumerate(boxes):
        try:
            values[index] = metric(
                generated[index, y0:y1, x0:x1], reference[index, y0:y1, x0:x1], max_value
            )
        except AutalkError:
            pass  # an empty (or, for SSIM, too small) box has no value
    return values.reshape(lead)


def mouth_psnr(generated, reference, reference_landmarks, margin=0.25, max_value=1.0):
    """PSNR inside the mouth box of each reference frame.

    Args:
        generated: `(..., H, W, 3)` frames.
        reference: the same shape.
        reference_landmarks: `(..., 68, 2)` landmarks of the reference
            frames, in pixels.
        margin: see `mouth_box`.
        max_value: see `psnr`.

    Returns:
        `(...)` float64; NaN where the box holds no pixel.

    Example:
    ```python
    mouth_psnr(generated, frames, frame_landmarks).mean()
    ```
    """

    def metric(first, second, peak):
        if first.size == 0:
            raise AutalkError("empty box")
        return psnr(first, second, peak)

    return _mouth_metric(metric, generated, reference, reference_landmarks, margin, max_value)


def mouth_ssim(generated, reference, reference_landmarks, margin=0.25, max_value=1.0):
    """SSIM inside the mouth box of each reference frame (see `ssim`).

    Args:
        generated: `(..., H, W, 3)` frames.
        reference: the same shape.
        reference_landmarks: `(..., 68, 2)` landmarks of the reference
            frames, in pixels.
        margin: see `mouth_box`.
        max_value: see `ssim`.

    Returns:
        `(...)` float64; NaN where the box is smaller than the 11x11 window.

    Example:
    ```python
    mouth_ssim(generated, frames, frame_landmarks).mean()
    ```
    """
    return _mouth_metric(ssim, generated, reference, reference_landmarks, margin, max_value)


def landmark_distance(landmarks, reference_landmarks, points="mouth"):
    """Mean Euclidean distance between corresponding landmarks of each frame.

    LMD (landmark distance, Chen et al. 2018) is the mean of this over the
    frames of a test set.

    Args:
        landmarks: `(..., 68, 2)` landmarks of the generated frames, pixels.
        reference_landmarks: the same shape, of the real frames.
        points: "mouth" (dlib points 48-67) or "face" (all 68).

    Returns:
        `(...)` float64, in pixels.

    Example:
    ```python
    lmd = landmark_distance(generated_landmarks, frame_landmarks).mean()
    ```
    """
    selected = {"mouth": MOUTH_POINTS, "face": FACE_POINTS}.get(points)
    if selected is None:
        raise ValueError(f"points must be 'mouth' or 'face', got {points!r}.")
    landmarks = np.asarray(landmarks, dtype=np.float64)
    reference_landmarks = np.asarray(reference_landmarks, dtype=np.float64)
    if landmarks.shape != reference_landmarks.shape or landmarks.shape[-2:] != (68, 2):
        raise AutalkError(
            f"Expected two landmark arrays shaped (..., 68, 2), got {landmarks.shape} "
            f"and {reference_landmarks.shape}."
        )
    difference = landmarks[..., selected, :] - reference_landmarks[..., selected, :]
    return np.linalg.norm(difference, axis=-1).mean(axis=-1)


def _to_uint8(image):
    image = np.asarray(image)
    if image.dtype == np.uint8:
        return np.ascontiguousarray(image)
    return np.ascontiguousarray(np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8))


def _crop_config(size, config):
    if config.crop_size == size:
        return config
    return dataclasses.replace(config, crop_size=size)


def aligned_face_box(config=FaceConfig()):
    """Where the face detector's box lies on an aligned crop.

    The crops are aligned to the template, so the box dlib's detector would
    return is known: the landmarks' width, starting a little above the
    eyebrows (`CROP_BOX_ABOVE_BROWS`, measured on the bundled photos).

    Args:
        config: `FaceConfig` (crop size and template placement).

    Returns:
        `(left, top, right, bottom)` ints in crop pixels.

    Example:
    ```python
    aligned_face_box()  # (20, 15, 107, 102) for 128-pixel crops
    ```
    """
    template = face.template_points(config)
    left, top = template.min(axis=0)
    right = template[:, 0].max()
    width = right - left
    left, top, side = (int(round(v)) for v in (left, top - CROP_BOX_ABOVE_BROWS * width, width))
    return left, top, left + side, top + side


def _square_size(images, what):
    height, width = images.shape[-3:-1]
    if images.shape[-1] != 3 or height != width:
        raise AutalkError(
            f"Expected square RGB {what} shaped (..., size, size, 3), got {images.shape}."
        )
    return height


def crop_landmarks(frames, config=FaceConfig()):
    """dlib's 68 landmarks on aligned face crops, without detecting the face.

    The shape predictor runs inside `aligned_face_box`, which is faster than
    detection and steadier from frame to frame (the detector's box jitters
    with the mouth). Frames whose landmarks fail
    `keras_autalk.media.face.check_landmarks` (not a plausible face) are
    marked not found; their landmarks are still returned. This is a weak
    guard: started from the mean face in a known box, the predictor returns
    a face-like shape even on noise, a flat image or a rotated crop, so it
    flags only grossly distorted fits.

    Args:
        frames: `(..., S, S, 3)` aligned crops, float in [0, 1] or uint8.
        config: `FaceConfig` of the crops (the template is scaled to S).

    Returns:
        `(landmarks, found)`: `(..., 68, 2)` float32 crop pixels and `(...)`
        bool.

    Example:
    ```python
    landmarks, found = crop_landmarks(generated)  # (N, 68, 2), (N,)
    ```
    """
    frames = np.asarray(frames)
    size = _square_size(frames, "frames")
    lead = frames.shape[:-3]
    box = aligned_face_box(_crop_config(size, config))
    flat = frames.reshape((-1, size, size, 3))
    landmarks = np.zeros((len(flat), 68, 2), dtype=np.float32)
    found = np.zeros(len(flat), dtype=bool)
    for index, frame in enumerate(flat):
        points = face.fit_landmarks(_to_uint8(frame), box)
        landmarks[index] = points
        found[index] = face.check_landmarks(points, box) is None
    return landmarks.reshape(lead + (68, 2)), found.reshape(lead)


def _block_view(values, block):
    """`(H, W)` -> `(rows, cols, block, block)`; partial blocks at the border are dropped."""
    rows, cols = values.shape[0] // block, values.shape[1] // block
    trimmed = values[: rows * block, : cols * block]
    return trimmed.reshape(rows, block, cols, block).swapaxes(1, 2)


def _grayscale_255(image):
    """Rec. 601 luma on the 0-255 scale, rounded to whole grey levels like an 8-bit image."""
    image = np.asarray(image)
    image = image / 255.0 if image.dtype == np.uint8 else image.astype(np.float64)
    if image.ndim == 3 and image.shape[-1] == 3:
        image = image @ np.array([0.299, 0.587, 0.114])
    elif image.ndim != 2:
        raise AutalkError(f"Expected an (H, W, 3) or (H, W) image, got {image.shape}.")
    return np.rint(np.clip(image, 0.0, 1.0) * 255.0)


def _run_lengths(steps):
    """For a boolean `(H, L)` array: runs of True ending at / starting at each index.

    Returns `(ending, starting)`: `ending[i, p]` counts consecutive Trues
    in `steps[i, :p + 1]` that end at `p`; `starting[i, p]` those in
    `steps[i, p:]` that start at `p`.
    """
    length = steps.shape[1]
    index = np.broadcast_to(np.arange(length), steps.shape)
    last_false = np.maximum.accumulate(np.where(steps, -1, index), axis=1)
    next_false = np.minimum.accumulate(np.where(steps, length, index)[:, ::-1], axis=1)[:, ::-1]
    return index - last_false, next_false - index


def _width_edges(gray):
    """Sobel edge map (MATLAB's `edge(I, 'sobel')` rule) for width measurement.

    Strength is the squared Sobel gradient; edges are pixels stronger than
    four times its mean, thinned to the local maximum along the dominant
    gradient axis (a plateau keeps its first pixel).
    """
    gradient_x = ndimage.sobel(gray, axis=1) / 8.0
    gradient_y = ndimage.sobel(gray, axis=0) / 8.0
    strength = gradient_x**2 + gradient_y**2
    mean_strength = strength.mean()
    if mean_strength <= 0:
        return np.zeros(gray.shape, dtype=bool)
    padded = np.pad(strength, 1)
    centre = padded[1:-1, 1:-1]
    across = (centre > padded[1:-1, :-2]) & (centre >= padded[1:-1, 2:])
    down = (centre > padded[:-2, 1:-1]) & (centre >= padded[2:, 1:-1])
    vertical_edge = np.abs(gradient_x) >= np.abs(gradient_y)
    thin = np.where(vertical_edge, across, down)
    return thin & (strength > 4.0 * mean_strength)


def edge_widths(gray, edges):
    """Widths of the near-vertical edges, measured along the row (Marziliano et al.).

    At each edge pixel whose gradient points left or right (quantised to
    0 or 180 degrees), the width is the distance between the intensity
    extrema on either side: counting from the pixel, steps that keep rising
    (falling, for a falling edge) are followed left and right, at most 100
    each way. As in the reference implementation the two steps next to the
    edge pixel always count, so a one-step jump is 2 wide and a linear ramp
    of `n >= 2` steps is `n` wide.

    Args:
        gray: `(H, W)` grey levels.
        edges: `(H, W)` bool edge map.

    Returns:
        `(H, W)` float64: the width at measured edge pixels, 0 elsewhere.

    Example:
    ```python
    edge_widths(gray, gray_edges)[edge_row, edge_column]
    ```
    """
    gray = np.asarray(gray, dtype=np.float64)
    height, width = gray.shape
    widths = np.zeros_like(gray)
    if width < 3 or height < 3:
        return widths
    gradient_y, gradient_x = np.gradient(gray)
    angle = np.degrees(np.arctan2(gradient_y, gradient_x))
    # np.round-style quantisation to 45 degrees: ties at 22.5 go to 0 and
    # those at 157.5 to 180.
    rising = np.abs(angle) <= 22.5
    falling = np.abs(angle) >= 157.5
    interior = np.zeros_like(edges, dtype=bool)
    interior[1:-1, 1:-1] = True
    steps = np.diff(gray, axis=1)  # steps[:, p] = gray[:, p + 1] - gray[:, p]
    columns = np.arange(width)
    for direction, mask in ((steps > 0, rising), (steps < 0, falling)):
        ending, starting = _run_lengths(direction)
        # Steps left of pixel c, going outwards, start at index c - 2; steps
        # right of it start at index c + 1.
        left_index = np.clip(columns - 2, 0, width - 2)
        right_index = np.clip(columns + 1, 0, width - 2)
        left = np.where(columns - 2 >= 0, ending[:, left_index], 0)
        right = np.where(columns + 1 <= width - 2, starting[:, right_index], 0)
        measured = (
            2 + np.minimum(left, CPBD_MAX_SIDE_WIDTH) + np.minimum(right, CPBD_MAX_SIDE_WIDTH)
        )
        selected = edges & mask & interior
        widths[selected] = measured[selected]
    return widths


def _cpbd_single(image):
    gray = _grayscale_255(image)
    # Canny edges (scikit-image's defaults on the 0-255 scale, as in the
    # widely used Python port) decide which blocks hold edges; Sobel edges
    # are where widths are measured.
    block_edges = skfeature.canny(gray, sigma=1.0, low_threshold=0.1, high_threshold=0.2)
    widths = edge_widths(gray, _width_edges(gray))
    edge_blocks = _block_view(block_edges, CPBD_BLOCK)
    width_blocks = _block_view(widths, CPBD_BLOCK)
    gray_blocks = _block_view(gray, CPBD_BLOCK)
    sharp, total = 0, 0
    for row in range(edge_blocks.shape[0]):
        for col in range(edge_blocks.shape[1]):
            if edge_blocks[row, col].sum() <= CPBD_EDGE_BLOCK_FRACTION * CPBD_BLOCK**2:
                continue
            block_widths = width_blocks[row, col]
            block_widths = block_widths[block_widths > 0]
            contrast = gray_blocks[row, col].max() - gray_blocks[row, col].min()
            jnb_width = (
                CPBD_JNB_WIDTH_LOW_CONTRAST
                if contrast <= CPBD_LOW_CONTRAST
                else CPBD_JNB_WIDTH_HIGH_CONTRAST
            )
            probability = 1.0 - np.exp(-((block_widths / jnb_width) ** CPBD_BETA))
            sharp += int(np.sum(np.round(probability * 100) <= CPBD_PERCENT))
            total += block_widths.size
    return sharp / total if total else 0.0


def cpbd(image):
    """Sharpness: the cumulative probability of blur detection (CPBD).

    Narvekar & Karam, "A no-reference image blur metric based on the
    cumulative probability of blur detection (CPBD)", IEEE TIP 2011. The
    image is turned into 8-bit grey levels and cut into 64x64 blocks
    (partial blocks at the border are left out); a block is an edge block
    when more than 0.2 % of its pixels are Canny edges. In each edge block
    the width `w` of every near-vertical Sobel edge is measured along its
    row (`edge_widths`), and the probability that its blur is seen is
    `P = 1 - exp(-(w / w_JNB) ** 3.6)`, with the just-noticeable width
    `w_JNB` 5 in blocks of contrast (max - min grey level) up to 50 and 3
    above. CPBD is the fraction of measured edges whose `P`, binned to whole
    percent like the reference code, is at most 63 % (so an edge exactly
    `w_JNB` wide, `P = 0.632`, counts as sharp).

    Args:
        image: `(H, W, 3)` RGB or `(H, W)` grey image, float in [0, 1]
            (or uint8); or a batch `(..., H, W, 3)`.

    Returns:
        A float in [0, 1] (higher is sharper); 0 for an image with no edge
        block. For a batch, a `(...)` float64 array.

    Example:
    ```python
    cpbd(frame)  # 0.25-0.65 on sharp aligned crops of the bundled photos
    ```
    """
    image = np.asarray(image)
    if image.ndim <= 3 and not (image.ndim == 3 and image.shape[-1] != 3):
        return float(_cpbd_single(image))
    if image.shape[-1] != 3:
        raise AutalkError(f"Expected RGB images shaped (..., H, W, 3), got {image.shape}.")
    flat = image.reshape((-1,) + image.shape[-3:])
    return np.array([_cpbd_single(frame) for frame in flat]).reshape(image.shape[:-3])


def _au_names(action_units, count):
    names = [
        unit if isinstance(unit, str) and unit.upper().startswith("AU") else f"AU{int(unit)}"
        for unit in action_units
    ]
    if len(names) != count:
        raise AutalkError(
            f"{len(names)} action units were named but the intensities have {count} columns."
        )
    return names


def _f1(predicted_on, target_on):
    true_positive = np.sum(predicted_on & target_on)
    errors = np.sum(predicted_on != target_on)
    if 2 * true_positive + errors == 0:
        return 1.0  # no occurrence, none predicted
    return float(2 * true_positive / (2 * true_positive + errors))


def au_metrics(predicted, target, action_units, threshold=1.0, mask=None):
    """Per-AU accuracy of predicted AU intensities.

    For each AU, over the valid frames:
    - "pearson": Pearson correlation of predicted and target intensity;
      NaN when either is constant (the correlation is undefined);
    - "mae": mean absolute error, in intensity units;
    - "f1": F1 score of occurrence, an AU occurring where its intensity is
      at least `threshold` (OpenFace's occurrence cut is about 1). With no
      occurrence in the target, F1 is 1.0 if none is predicted and 0.0
      otherwise.
    "mean_pearson", "mean_mae" and "mean_f1" average over the AUs (the
    Pearson mean skips NaNs; NaN if all are NaN).

    Args:
        predicted: `(N, A)` or `(B, T, A)` AU intensities.
        target: the same shape.
        action_units: the A AU numbers (e.g. `(10, 14, 20, 25, 26)`) or
            names ("AU10").
        threshold: intensity from which an AU counts as occurring.
        mask: optional `(N,)` / `(B, T)` weights, frames with 0 left out
            (or the full shape of `predicted` for a per-AU mask).

    Returns:
        A dict: `{"AU10": {"pearson", "mae", "f1"}, ..., "mean_pearson",
        "mean_mae", "mean_f1"}` of floats.

    Example:
    ```python
    au_metrics(predicted, au_intensity, (10, 14, 20, 25, 26), mask=au_mask)["mean_f1"]
    ```
    """
    predicted = np.asarray(predicted, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    if predicted.shape != target.shape or predicted.ndim < 2:
        raise AutalkError(
            f"Predicted and target AU intensities must share a (..., A) shape, "
            f"got {predicted.shape} and {target.shape}."
        )
    names = _au_names(action_units, predicted.shape[-1])
    if mask is None:
        valid = np.ones(predicted.shape, dtype=bool)
    else:
        mask = np.asarray(mask)
        if mask.shape == predicted.shape[:-1]:
            mask = mask[..., None]
        try:
            valid = np.broadcast_to(mask > 0, predicted.shape)
        except ValueError:
            raise AutalkError(
                f"The AU mask's shape {mask.shape} does not match the intensities' "
                f"{predicted.shape}."
            ) from None
    predicted = predicted.reshape(-1, len(names))
    target = target.reshape(-1, len(names))
    valid = valid.reshape(-1, len(names))
    results = {}
    for column, name in enumerate(names):
        keep = valid[:, column]
        if not keep.any():
            results[name] = {"pearson": float("nan"), "mae": float("nan"), "f1": float("nan")}
            continue
        prediction, truth = predicted[keep, column], target[keep, column]
        results[name] = {
            "pearson": pearson(prediction, truth),
            "mae": float(np.mean(np.abs(prediction - truth))),
            "f1": _f1(prediction >= threshold, truth >= threshold),
        }
    for key in ("pearson", "mae", "f1"):
        values = np.array([results[name][key] for name in names])
        finite = values[~np.isnan(values)]
        results[f"mean_{key}"] = float(finite.mean()) if finite.size else float("nan")
    return results


def _is_aligned_crop(image, config):
    return image.shape[0] == image.shape[1] == config.crop_size


def face_embeddings(images, aligned=None, config=FaceConfig(), landmarks=None):
    """dlib's 128-D face-recognition descriptors of face images.

    On an aligned crop the 68 landmarks are fitted inside `aligned_face_box`;
    on any other photo the face is found first (`face.find_face`, largest
    plausible face). dlib then cuts its own 150-pixel face chip from the
    landmarks and embeds it. Descriptors of one person lie within about 0.6
    of each other (dlib's usual threshold).

    Args:
        images: a `(N, H, W, 3)` array, a list of `(H, W, 3)` images of any
            sizes, or one `(H, W, 3)` image; float in [0, 1] or uint8.
        aligned: whether the images are aligned crops; by default, those
            whose size is `config.crop_size` square are.
        config: `FaceConfig` (crop size, template, detector).
        landmarks: optional `(N, 68, 2)` landmarks already fitted to the
            images (e.g. by a video's measure): used instead of finding the
            face again.

    Returns:
        `(N, 128)` float64.

    Raises:
        NoFaceError: a photo that is not an aligned crop holds no face.

    Example:
    ```python
    identity = face_embeddings(load_photo("grace_hopper"))  # (1, 128)
    ```
    """
    if isinstance(images, np.ndarray) and images.ndim == 3:
        images = [images]
    descriptors = []
    for index, image in enumerate(images):
        image = _to_uint8(image)
        if image.ndim != 3 or image.shape[-1] != 3:
            raise AutalkError(f"Expected RGB images shaped (H, W, 3), got {image.shape}.")
        is_crop = _is_aligned_crop(image, config) if aligned is None else aligned
        if landmarks is not None:
            points = np.asarray(landmarks[index], np.float64)
            box = (*points.min(axis=0), *points.max(axis=0))
            landmarks_here = points
        elif is_crop:
            box = aligned_face_box(_crop_config(_square_size(image, "crops"), config))
            landmarks_here = face.fit_landmarks(image, box)
        else:
            found = face.find_face(image, face.without_usability_limits(config))
            box, landmarks_here = found.box, found.landmarks
        descriptors.append(face.descriptor(image, box, landmarks_here))
    return np.stack(descriptors).astype(np.float64) if descriptors else np.zeros((0, 128))


def identity_distance(identity_image, frames, config=FaceConfig()):
    """Face-embedding distance of each frame to the identity photo.

    Args:
        identity_image: `(H, W, 3)` photo of the person (an aligned crop or
            any photo with one face).
        frames: `(..., S, S, 3)` aligned crops.
        config: `FaceConfig`.

    Returns:
        `(...)` float64 Euclidean distances; below about 0.6 dlib takes two
        faces for the same person.

    Example:
    ```python
    identity_distance(photo, generated).mean()
    ```
    """
    frames = np.asarray(frames)
    size = _square_size(frames, "frames")
    reference = face_embeddings(identity_image, config=config)[0]
    flat = frames.reshape((-1, size, size, 3))
    embeddings = face_embeddings(flat, aligned=True, config=config)
    return np.linalg.norm(embeddings - reference, axis=-1).reshape(frames.shape[:-3])


def _flatten_images(values):
    """`(..., H, W, C)` -> `(N, H, W, C)`."""
    shape = ops.shape(values)
    return ops.reshape(values, (-1,) + tuple(shape[-3:]))


def _flatten_weights(sample_weight):
    return None if sample_weight is None else ops.reshape(sample_weight, (-1,))


class _FrameMeanMetric(keras.metrics.Mean):
    """A mean over frames of one per-frame score; subclasses give `frame_values`."""

    def __init__(self, max_value=1.0, name=None, dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.max_value = max_value

    def frame_values(self, y_true, y_pred):
        """Per-frame scores `(N,)` of real and generated frames `(N, H, W, C)`."""
        raise NotImplementedError

    def update_state(self, y_true, y_pred, sample_weight=None):
        values = self.frame_values(
            _flatten_images(ops.cast(y_true, "float32")),
            _flatten_images(ops.cast(y_pred, "float32")),
        )
        return super().update_state(values, sample_weight=_flatten_weights(sample_weight))

    def get_config(self):
        return {**super().get_config(), "max_value": self.max_value}


@keras.saving.register_keras_serializable(package="keras_autalk")
class PSNRMetric(_FrameMeanMetric):
    """Mean PSNR (dB) of generated frames against the real ones.

    Each frame's PSNR is computed as in `psnr` (float32) and averaged over
    all frames seen; an identical frame contributes `+inf`.

    Args:
        max_value: the largest pixel value (1 for [0, 1] frames).
        name: the metric's name.
        dtype: the result's dtype.

    Example:
    ```python
    metric = PSNRMetric()
    metric.update_state(frames, generated)  # (B, T, H, W, 3) or (N, H, W, 3)
    metric.result()
    ```
    """

    def __init__(self, max_value=1.0, name="psnr", dtype=None):
        super().__init__(max_value=max_value, name=name, dtype=dtype)

    def frame_values(self, y_true, y_pred):
        mse = ops.mean(ops.square(y_true - y_pred), axis=(1, 2, 3))
        return 10.0 * ops.log10(float(self.max_value) ** 2 / mse)


@keras.saving.register_keras_serializable(package="keras_autalk")
class SSIMMetric(_FrameMeanMetric):
    """Mean SSIM of generated frames against the real ones.

    Each frame's SSIM is `tf.image.ssim` (11x11 Gaussian window, sigma 1.5,
    per channel then averaged: the same convention as `ssim`), averaged
    over all frames seen.

    Args:
        max_value: the data range (1 for [0, 1] frames).
        name: the metric's name.
        dtype: the result's dtype.

    Example:
    ```python
    metric = SSIMMetric()
    metric.update_state(frames, generated)
    metric.result()
    ```
    """

    def __init__(self, max_value=1.0, name="ssim", dtype=None):
        super().__init__(max_value=max_value, name=name, dtype=dtype)

    def frame_values(self, y_true, y_pred):
        return tf.image.ssim(
            y_true,
            y_pred,
            max_val=float(self.max_value),
            filter_size=11,
            filter_sigma=SSIM_SIGMA,
            k1=SSIM_K1,
            k2=SSIM_K2,
        )


__all__ = [
    "FACE_POINTS",
    "MOUTH_POINTS",
    "PSNRMetric",
    "SSIMMetric",
    "aligned_face_box",
    "au_metrics",
    "cpbd",
    "crop_landmarks",
    "edge_widths",
    "face_embeddings",
    "identity_distance",
    "landmark_distance",
    "mouth_box",
    "mouth_psnr",
    "mouth_ssim",
    "psnr",
    "ssim",
]
