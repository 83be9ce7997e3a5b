"""The flow decoder: moves the photo's own pixels instead of redrawing them.

`FrameDecoder` redraws the face crop, so a face never seen in training comes
out blurred. `FlowDecoder` predicts, per frame, where each pixel of the lower
face comes from in the identity image (a dense backward flow) and only
generates what the photo does not hold: the inside of the mouth.
"""

import keras
import numpy as np
from keras import ops

from keras_autalk.models.encoders import merge_time, split_time
from keras_autalk.models.generator import IdentityUNetDecoder

# The lower face of the aligned crop, in fractions of its side (x, y):
# `keras_autalk.media.paste.lower_face_polygon` of the template the crop is
# aligned to (`media.face.template_points` at the default `FaceConfig`), the
# region `FacePaster` pastes back. `models` may not import `media`, so the
# numbers are written here; tests/models/test_flow_decoder.py checks that
# they still agree.
LOWER_FACE_POLYGON = (
    (0.182481, 0.502807),
    (0.199309, 0.588093),
    (0.227368, 0.669627),
    (0.271372, 0.741708),
    (0.338714, 0.797848),
    (0.411891, 0.840895),
    (0.499999, 0.852214),
    (0.588108, 0.840895),
    (0.661285, 0.797848),
    (0.728626, 0.741707),
    (0.772632, 0.669626),
    (0.800692, 0.588092),
    (0.817519, 0.502806),
    (0.696213, 0.516705),
    (0.574907, 0.530604),
    (0.538357, 0.541863),
    (0.500000, 0.551285),
    (0.461643, 0.541863),
    (0.425092, 0.530604),
    (0.303787, 0.516705),
)
# Width of the region's soft edge inside the polygon, as a fraction of the
# crop side: `media.paste.MASK_FEATHER_IOD` inter-ocular distances of the
# template (0.3154 of the crop side).
LOWER_FACE_FEATHER = 0.069393

# The occlusion mask's starting logit: sigmoid(-3) = 0.047, mostly closed, so
# the flow, not the generated content, first explains how the mouth moves.
# The content is a residual on the warped photo that starts at zero, so the
# untrained output is the photo whatever the mask.
CLOSED_MASK_LOGIT = -3.0


def lower_face_region(image_size, polygon=LOWER_FACE_POLYGON, feather=LOWER_FACE_FEATHER):
    """The fixed lower-face region of the aligned crop, float32 in [0, 1].

    0 outside `polygon`, 1 deeper inside than `feather` of the side, a
    raised cosine of the distance to the polygon's edge in between (the
    shape of `media.paste.lower_face_mask`). Pixel (row, col) is the point
    (col, row), as in `lower_face_mask`.

    Args:
        image_size: side of the square crop in pixels.
        polygon: the region's vertices (x, y) in fractions of the side.
        feather: width of the soft edge, a fraction of the side.

    Returns:
        `(image_size, image_size)` float32.

    Example:
    >>> region = lower_face_region(32)
    >>> float(region[0, 0]), float(region[22, 16])
    (0.0, 1.0)
    """
    vertices = np.asarray(polygon, dtype=np.float64) * image_size
    start, end = vertices, np.roll(vertices, -1, axis=0)
    rows, cols = np.mgrid[0:image_size, 0:image_size]
    points = np.stack([cols.ravel(), rows.ravel()], axis=1).astype(np.float64)
    x, y = points[:, :1], points[:, 1:]
    # Even-odd rule: count the edges a ray to the right of each point crosses.
    straddles = (start[:, 1] > y) != (end[:, 1] > y)
    rise = np.where(straddles, end[:, 1] - start[:, 1], 1.0)
    crossing = start[:, 0] + (y - start[:, 1]) * (end[:, 0] - start[:, 0]) / rise
    inside = np.count_nonzero(straddles & (x < crossing), axis=1) % 2 == 1
    # Distance to the nearest point of any edge.
    edge = end - start
    along = np.clip(
        ((points[:, None, :] - start) * edge).sum(axis=-1) / (edge**2).sum(axis=-1),
        0.0,
        1.0,
    )
    nearest = start + along[..., None] * edge
    distance = np.linalg.norm(points[:, None, :] - nearest, axis=-1).min(axis=1)
    ramp = np.where(inside, np.clip(distance / max(feather * image_size, 1.0), 0.0, 1.0), 0.0)
    region = 0.5 - 0.5 * np.cos(np.pi * ramp)
    return region.reshape(image_size, image_size).astype(np.float32)


def warp_with_flow(images, flow):
    """Backward bilinear warp: `out[y, x] = images[y + dy, x + dx]`.

    Samples each image at its pixel grid moved by the flow, bilinearly, with
    coordinates clamped to the border (edge pixels repeat). Built from
    `keras.ops` gathers on the flattened images, so it runs inside
    `tf.function`, XLA, a SavedModel and TFLite. At whole-pixel flow (zero
    included) the weights are exactly 1 and 0 and the output is the input
    pixel, bit for bit.

    Args:
        images: (N, H, W, C), H, W, C known.
        flow: (N, H, W, 2) float, (dx, dy) in pixels.

    Returns:
        (N, H, W, C), the dtype of `flow`.

    Example:
    >>> image = np.arange(16, dtype="float32").reshape(1, 4, 4, 1)
    >>> right = np.zeros((1, 4, 4, 2), "float32"); right[..., 0] = 1.0
    >>> [float(v) for v in warp_with_flow(image, right)[0, 0, :, 0]]
    [1.0, 2.0, 3.0, 3.0]
    """
    images = ops.cast(images, flow.dtype)
    height, width, channels = images.shape[1:]
    x = ops.clip(ops.cast(ops.arange(width), flow.dtype) + flow[..., 0], 0.0, width - 1.0)
    y = ops.clip(
        ops.cast(ops.arange(height), flow.dtype)[:, None] + flow[..., 1],
        0.0,
        height - 1.0,
    )
    left, top = ops.floor(x), ops.floor(y)
    right_share = ops.expand_dims(x - left, -1)
    bottom_share = ops.expand_dims(y - top, -1)
    left, top = ops.cast(left, "int32"), ops.cast(top, "int32")
    right = ops.minimum(left + 1, width - 1)
    bottom = ops.minimum(top + 1, height - 1)
    pixels = ops.reshape(images, (-1, channels))
    first = ops.reshape(
        ops.arange(ops.shape(images)[0], dtype="int32") * (height * width),
        (-1, 1, 1),
    )

    def sample(row, col):
        return ops.take(pixels, first + row * width + col, axis=0)

    upper = sample(top, left) * (1.0 - right_share) + sample(top, right) * right_share
    lower = sample(bottom, left) * (1.0 - right_share) + sample(bottom, right) * right_share
    return upper * (1.0 - bottom_share) + lower * bottom_share


@keras.saving.register_keras_serializable(package="keras_autalk")
class FlowDecoder(IdentityUNetDecoder):
    """Renders each frame by moving the identity image's pixels.

    On the `IdentityUNetDecoder` trunk (the same as `FrameDecoder`'s),
    three 3x3 heads give, per frame at crop resolution:

    - a dense backward flow (dx, dy) in pixels,
      `region * max_flow * image_size * tanh(head)`, that warps the identity
      image bilinearly (`warp_with_flow`);
    - an occlusion mask, `region * sigmoid(head)`: where the warped photo has
      nothing to show (inside the mouth);
    - the mouth content that fills it (teeth, tongue, the cavity), a
      residual on the warped photo, `clip(warped + tanh(head), 0, 1)`.

    The frame is `mask * mouth_content + (1 - mask) * warped`; the mask is
    returned as the blend mask. `region` is `lower_face_region`, a constant
    of the aligned crop, not a weight: outside the lower face the flow and
    the mask are exactly 0, so those pixels are the identity image's own, bit
    for bit, whatever the weights.

    The flow and content heads start at zero and the mask at
    `CLOSED_MASK_LOGIT`, so an untrained decoder returns the photo unchanged:
    were the content rendered from scratch it would start worse than the
    photo and the pixel losses would close the mask before it could learn
    (see `FrameDecoder`).

    Args:
        filters: filters of each stage, low to high resolution; one stage per
            identity skip.
        image_size: side of the square output frames.
        max_flow: the largest displacement, a fraction of `image_size`.
        **kwargs: `keras.Model` arguments.

    Call arguments:
        inputs: `[fused, skips, identity_image]`: fused (B, T, F), skips the
            `IdentityEncoder`'s list from high to low resolution, identity
            image (B, H, W, 3) in 0..1.

    Returns (from `call`):
        `(frames, blend_mask, flow)`: frames (B, T, H, W, 3) in 0..1, blend
        mask (the occlusion mask) (B, T, H, W, 1) in 0..1, and the flow
        (B, T, H, W, 2), (dx, dy) in crop pixels, backward: inference warps
        the photo itself with it at the photo's resolution
        (`media.paste.FacePaster.paste_motion`).

    Example:
    >>> decoder = FlowDecoder(filters=(16, 8), image_size=32)
    >>> skips = [np.zeros((2, 16, 16, 8), "float32"),
    ...          np.zeros((2, 8, 8, 16), "float32")]
    >>> frames, mask, flow = decoder([np.zeros((2, 4, 24), "float32"), skips,
    ...                               np.zeros((2, 32, 32, 3), "float32")])
    >>> tuple(frames.shape), tuple(mask.shape), tuple(flow.shape)
    ((2, 4, 32, 32, 3), (2, 4, 32, 32, 1), (2, 4, 32, 32, 2))
    """

    def __init__(self, filters, image_size, max_flow=0.1, **kwargs):
        super().__init__(filters, image_size, **kwargs)
        self.max_flow = float(max_flow)
        if self.max_flow <= 0.0:
            raise ValueError(f"max_flow must be positive, got {max_flow!r}.")
        # A plain array: a constant of the graph, never trained or saved.
        self.region = lower_face_region(self.image_size)
        self.flow_head = keras.layers.Conv2D(
            2,
            3,
            padding="same",
            activation="tanh",
            kernel_initializer="zeros",
            name="flow",
        )
        self.mask_head = keras.layers.Conv2D(
            1,
            3,
            padding="same",
            activation="sigmoid",
            kernel_initializer="zeros",
            bias_initializer=keras.initializers.Constant(CLOSED_MASK_LOGIT),
            name="occlusion_mask",
        )
        self.content_head = keras.layers.Conv2D(
            3,
            3,
            padding="same",
            activation="tanh",
            kernel_initializer="zeros",
            name="mouth_content",
        )

    def build(self, input_shape):
        super().build(input_shape)
        for head in (self.flow_head, self.mask_head, self.content_head):
            head.build(self.feature_shape)

    def _render(self, inputs):
        """flow, mask, mouth content and the warped photo, each (B*T, ...)."""
        fused, _, identity_image = inputs
        x = self.features(inputs)
        region = ops.convert_to_tensor(self.region[None, :, :, None])
        flow = region * (self.max_flow * self.image_size) * self.flow_head(x)
        mask = region * self.mask_head(x)
        # One copy of the clip's photo per frame, the flow's batch.
        photos = merge_time(
            ops.broadcast_to(
                ops.expand_dims(identity_image, 1),
                ops.shape(fused)[:2] + tuple(identity_image.shape[1:]),
            )
        )
        warped = warp_with_flow(photos, flow)
        mouth_content = ops.clip(warped + self.content_head(x), 0.0, 1.0)
        return flow, mask, mouth_content, warped

    def motion(self, inputs):
        """What `call` renders each frame from, before the blend.

        Inference upsamples these to the photo's resolution and warps the
        photo itself there (`keras_autalk.media.warp`).

        Args:
            inputs: as for `call`.

        Returns:
            `(flow, mask, mouth_content)`: flow (B, T, H, W, 2), (dx, dy) in
            pixels of the crop, backward (`warp_with_flow`); mask
            (B, T, H, W, 1) in 0..1; mouth content (B, T, H, W, 3) in 0..1.
        """
        fused = inputs[0]
        flow, mask, mouth_content, _ = self._render(inputs)
        return tuple(split_time(value, fused) for value in (flow, mask, mouth_content))

    def call(self, inputs, training=None):
        fused = inputs[0]
        flow, mask, mouth_content, warped = self._render(inputs)
        frames = ops.clip(mask * mouth_content + (1.0 - mask) * warped, 0.0, 1.0)
        return (split_time(frames, fused), split_time(mask, fused), split_time(flow, fused))

    def compute_output_shape(self, input_shape):
        frames, mask = super().compute_output_shape(input_shape)
        return frames, mask, frames[:-1] + (2,)

    def get_config(self):
        config = super().get_config()
        config["max_flow"] = self.max_flow
        return config
