"""The losses of the `AUTalker` GAN, as pure functions.

Every function returns one value per frame `(B, T)` or per image `(N,)`;
`masked_frame_mean` turns per-frame values into one value per example
`(B,)`, averaged over the frames whose mask is 1. The model averages the
per-example values over the *global* batch, which is what keeps a
distributed step equal to a single-device step on the same batch.

Images are in [0, 1]; landmarks are dlib's 68 points in crop pixels, `(x, y)`
with pixel `(row i, column j)` centred at `(j, i)`; AU intensities are on
OpenFace's 0-5 scale.
"""

from keras import ops

# dlib 68-point indices of the mouth: outer lip 48-59, inner lip 60-67.
MOUTH_LANDMARKS = tuple(range(48, 68))
# Adversarial formulations `discriminator_loss` and `generator_adversarial_loss` know.
ADVERSARIAL_LOSSES = ("lsgan", "hinge", "non_saturating")


def masked_frame_mean(values, mask):
    """Per-example mean of per-frame values over the frames where `mask` is 1.

    Args:
        values: `(B, T)` per-frame values.
        mask: `(B, T)` weights, 1 for frames that count, 0 for the rest.

    Returns:
        `(B,)`: the mask-weighted mean over time; 0 for an example with no
        valid frame (it then adds nothing to the batch loss).

    Example:
    ```python
    masked_frame_mean([[1.0, 3.0, 5.0]], [[1.0, 1.0, 0.0]])  # [2.0]
    ```
    """
    values = ops.convert_to_tensor(values)
    mask = ops.cast(mask, values.dtype)
    return ops.divide_no_nan(ops.sum(values * mask, axis=1), ops.sum(mask, axis=1))


def mouth_boxes(landmarks, margin=0.25):
    """Axis-aligned boxes around the mouth landmarks (48-67), padded by a margin.

    Args:
        landmarks: `(..., 68, 2)` landmark `(x, y)` positions in pixels.
        margin: padding on every side, as a fraction of the mouth's width
            (its height changes with the jaw; the width is a steadier scale).

    Returns:
        `(..., 4)`: `(x_min, y_min, x_max, y_max)` in pixels.

    Example:
    ```python
    boxes = mouth_boxes(targets["landmarks"])  # (B, T, 4)
    ```
    """
    landmarks = ops.convert_to_tensor(landmarks)
    mouth = ops.take(landmarks, list(MOUTH_LANDMARKS), axis=-2)
    low = ops.min(mouth, axis=-2)
    high = ops.max(mouth, axis=-2)
    pad = margin * (high[..., :1] - low[..., :1])
    return ops.concatenate([low - pad, high + pad], axis=-1)


def mouth_region(landmarks, height, width, margin=0.25):
    """A 0/1 image that is 1 on the pixels inside each frame's mouth box.

    Args:
        landmarks: `(B, T, 68, 2)` landmarks in pixels.
        height: image height in pixels.
        width: image width in pixels.
        margin: see `mouth_boxes`.

    Returns:
        `(B, T, height, width, 1)` float32.

    Example:
    ```python
    region = mouth_region(targets["landmarks"], 128, 128)
    ```
    """
    boxes = ops.cast(mouth_boxes(landmarks, margin), "float32")
    columns = ops.arange(width, dtype="float32")
    rows = ops.arange(height, dtype="float32")
    inside_x = (columns >= boxes[..., 0:1]) & (columns <= boxes[..., 2:3])  # (B, T, W)
    inside_y = (rows >= boxes[..., 1:2]) & (rows <= boxes[..., 3:4])  # (B, T, H)
    region = ops.logical_and(inside_y[..., :, None], inside_x[..., None, :])
    return ops.cast(region, "float32")[..., None]


def l1_per_frame(real, fake):
    """Mean absolute pixel difference of each frame.

    Args:
        real: `(B, T, H, W, C)` target frames.
        fake: `(B, T, H, W, C)` generated frames.

    Returns:
        `(B, T)`.

    Example:
    ```python
    loss = masked_frame_mean(l1_per_frame(frames, generated), face_mask)
    ```
    """
    difference = ops.abs(ops.cast(real, "float32") - ops.cast(fake, "float32"))
    return ops.mean(difference, axis=(2, 3, 4))


def mouth_l1_per_frame(real, fake, landmarks, margin=0.25):
    """Mean absolute pixel difference inside each frame's mouth box.

    Averaged over the box's pixels (not the whole image), so the loss does
    not shrink when the mouth is small: added to `l1_per_frame` it weights
    every mouth pixel `1 + H W / box area` times more than the rest.

    Args:
        real: `(B, T, H, W, C)` target frames.
        fake: `(B, T, H, W, C)` generated frames.
        landmarks: `(B, T, 68, 2)` landmarks of the *target* frames, pixels.
        margin: see `mouth_boxes`.

    Returns:
        `(B, T)`; 0 for a frame whose box holds no pixel.

    Example:
    ```python
    loss = masked_frame_mean(mouth_l1_per_frame(frames, generated, landmarks), face_mask)
    ```
    """
    real = ops.cast(real, "float32")
    height, width, channels = real.shape[2], real.shape[3], real.shape[4]
    region = mouth_region(landmarks, height, width, margin)
    difference = ops.abs(real - ops.cast(fake, "float32")) * region
    pixels = ops.sum(region, axis=(2, 3, 4)) * channels
    return ops.divide_no_nan(ops.sum(difference, axis=(2, 3, 4)), pixels)


def au_l1_per_frame(target, predicted):
    """Mean absolute AU intensity error of each frame.

    L1 rather than squared error because the labels are noisy (OpenFace or
    the geometric estimator) and L1 is robust to their outliers.

    Args:
        target: `(B, T, A)` AU intensities.
        predicted: `(B, T, A)` AU intensities.

    Returns:
        `(B, T)`, in AU intensity units.

    Example:
    ```python
    loss = masked_frame_mean(au_l1_per_frame(au_intensity, predicted), au_mask)
    ```
    """
    difference = ops.abs(ops.cast(target, "float32") - ops.cast(predicted, "float32"))
    return ops.mean(difference, axis=-1)


def _per_sample_mean(values):
    """Mean over every axis but the first: `(N, ...) -> (N,)`."""
    return ops.mean(ops.reshape(values, (ops.shape(values)[0], -1)), axis=1)


def _check_formulation(formulation):
    if formulation not in ADVERSARIAL_LOSSES:
        raise ValueError(
            f"adversarial loss must be one of {ADVERSARIAL_LOSSES}, got {formulation!r}."
        )


def discriminator_loss(real_logits, fake_logits, formulation="lsgan"):
    """The discriminator's loss on real and generated images, per image.

    Formulations (D = the patch logits, averaged over patches):
    - "lsgan" (least squares, Mao et al. 2017): `((D(real) - 1)^2 + D(fake)^2) / 2`.
    - "hinge": `relu(1 - D(real)) + relu(1 + D(fake))`.
    - "non_saturating": `softplus(-D(real)) + softplus(D(fake))` (the original
      GAN's cross-entropy).

    Args:
        real_logits: `(N, ...)` discriminator outputs on real images.
        fake_logits: `(N, ...)` discriminator outputs on generated images.
        formulation: one of `ADVERSARIAL_LOSSES`.

    Returns:
        `(N,)`.

    Example:
    ```python
    loss = discriminator_loss(discriminator([frames, identity]),
                              discriminator([generated, identity]))
    ```
    """
    _check_formulation(formulation)
    real = ops.cast(real_logits, "float32")
    fake = ops.cast(fake_logits, "float32")
    if formulation == "lsgan":
        values = 0.5 * (ops.square(real - 1.0) + ops.square(fake))
    elif formulation == "hinge":
        values = ops.relu(1.0 - real) + ops.relu(1.0 + fake)
    else:
        values = ops.softplus(-real) + ops.softplus(fake)
    return _per_sample_mean(values)


def generator_adversarial_loss(fake_logits, formulation="lsgan"):
    """The generator's adversarial loss on its images, per image.

    - "lsgan": `(D(fake) - 1)^2 / 2`.
    - "hinge": `-D(fake)`.
    - "non_saturating": `softplus(-D(fake))`.

    Args:
        fake_logits: `(N, ...)` discriminator outputs on generated images.
        formulation: one of `ADVERSARIAL_LOSSES`.

    Returns:
        `(N,)`.

    Example:
    ```python
    loss = generator_adversarial_loss(discriminator([generated, identity]))
    ```
    """
    _check_formulation(formulation)
    fake = ops.cast(fake_logits, "float32")
    if formulation == "lsgan":
        values = 0.5 * ops.square(fake - 1.0)
    elif formulation == "hinge":
        values = -fake
    else:
        values = ops.softplus(-fake)
    return _per_sample_mean(values)


__all__ = [
    "ADVERSARIAL_LOSSES",
    "MOUTH_LANDMARKS",
    "au_l1_per_frame",
    "discriminator_loss",
    "generator_adversarial_loss",
    "l1_per_frame",
    "masked_frame_mean",
    "mouth_boxes",
    "mouth_l1_per_frame",
    "mouth_region",
]
