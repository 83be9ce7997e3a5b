"""Move an image's pixels by a dense flow field, in NumPy.

`FlowDecoder` (keras_autalk.models.flow_decoder) predicts a backward flow at
the crop's resolution; inference upsamples it (`upsample_flow`) and warps the
photo at its own resolution (`warp_with_flow`), so the moved pixels are the
photo's own, not the crop's. The sampling is the same as the model's
`warp_with_flow`: bilinear, coordinates clamped to the border.
"""

import numpy as np
from skimage import transform as sktransform


def warp_with_flow(image, flow):
    """Backward bilinear warp: `out[y, x] = image[y + dy, x + dx]`.

    Coordinates outside the image are clamped to its border (edge pixels
    repeat). Where the flow is a whole number of pixels (zero included) the
    output is the input pixel exactly.

    Args:
        image: `(H, W)` or `(H, W, C)`, uint8 or float.
        flow: `(H, W, 2)`, (dx, dy) in pixels.

    Returns:
        The warped image, the shape and dtype of `image` (uint8 rounded).

    Example:
    >>> image = np.arange(16, dtype=np.float32).reshape(4, 4)
    >>> right = np.zeros((4, 4, 2)); right[..., 0] = 1.0
    >>> warp_with_flow(image, right)[0].tolist()
    [1.0, 2.0, 3.0, 3.0]
    """
    image = np.asarray(image)
    flow = np.asarray(flow, dtype=np.float64)
    height, width = image.shape[:2]
    if flow.shape != (height, width, 2):
        raise ValueError(
            f"flow must be (H, W, 2) = {(height, width, 2)} for an image of "
            f"shape {image.shape}, got {flow.shape}."
        )
    values = image.astype(np.float64)
    if values.ndim == 2:
        values = values[..., None]
    rows, cols = np.mgrid[0:height, 0:width]
    warped = sample_bilinear(values, cols + flow[..., 0], rows + flow[..., 1])
    warped = warped.reshape(image.shape)
    if image.dtype == np.uint8:
        return np.clip(np.rint(warped), 0, 255).astype(np.uint8)
    return warped.astype(image.dtype)


def sample_bilinear(values, x, y):
    """`values` sampled bilinearly at `(x, y)`, coordinates clamped to its border.

    The arithmetic is in the dtype `values * x` gives (a uint8 image and
    float32 coordinates: float32), so callers choose their precision.

    Args:
        values: `(H, W, C)` array.
        x, y: arrays of one shape `S`: columns and rows, in pixels.

    Returns:
        `S + (C,)`.

    Example:
    >>> image = np.arange(12, dtype=np.float64).reshape(3, 4, 1)
    >>> sample_bilinear(image, np.array([0.5, 9.0]), np.array([1.0, 0.0]))[:, 0].tolist()
    [4.5, 3.0]
    """
    height, width = values.shape[:2]
    x = np.clip(x, 0.0, width - 1.0)
    y = np.clip(y, 0.0, height - 1.0)
    left, top = np.floor(x), np.floor(y)
    right_share = (x - left)[..., None]
    bottom_share = (y - top)[..., None]
    left, top = left.astype(np.intp), top.astype(np.intp)
    # Gathers by one flat index (row * width + column) are about twice as
    # fast as by a pair of index arrays, for the same values.
    flat = values.reshape((height * width,) + values.shape[2:])
    upper_left = top * width + left
    right_step = (left < width - 1).astype(np.intp)
    down_step = np.where(top < height - 1, width, 0)
    lower_left = upper_left + down_step
    upper = flat[upper_left] * (1.0 - right_share) + flat[upper_left + right_step] * right_share
    lower = flat[lower_left] * (1.0 - right_share) + flat[lower_left + right_step] * right_share
    return upper * (1.0 - bottom_share) + lower * bottom_share


def upsample_flow(flow, size):
    """A flow field resized to another image size, its vectors scaled with it.

    The field is resized bilinearly with pixel centres aligned (the crop's
    pixel i covers the big image's pixels around `(i + 0.5) * ratio - 0.5`)
    and each vector multiplied by the size ratio of its axis, so it still
    points at the same content.

    Args:
        flow: `(h, w, 2)`, (dx, dy) in pixels of the `(h, w)` image.
        size: `(H, W)` of the image it is for, or one side for a square.

    Returns:
        `(H, W, 2)` float64, (dx, dy) in pixels of the `(H, W)` image.

    Example:
    >>> flow = np.ones((4, 4, 2))
    >>> big = upsample_flow(flow, 8)
    >>> big.shape, float(big[3, 5, 0])
    ((8, 8, 2), 2.0)
    """
    flow = np.asarray(flow, dtype=np.float64)
    if flow.ndim != 3 or flow.shape[-1] != 2:
        raise ValueError(f"flow must be (h, w, 2), got {flow.shape}.")
    height, width = (size, size) if np.isscalar(size) else tuple(size)
    resized = sktransform.resize(
        flow,
        (height, width, 2),
        order=1,
        mode="edge",
        anti_aliasing=False,
        preserve_range=True,
    )
    return resized * np.array([width / flow.shape[1], height / flow.shape[0]])
