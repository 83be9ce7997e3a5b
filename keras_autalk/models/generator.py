"""The frame decoder: fused per-frame features + identity -> video frames.

`IdentityUNetDecoder` is the trunk every decoder shares (identity skips,
per-frame FiLM); `FrameDecoder` redraws the crop on it and
`keras_autalk.models.flow_decoder.FlowDecoder` moves the photo's pixels.
"""

import keras
from keras import ops

from keras_autalk.models.encoders import merge_time, split_time


def blend(content, blend_mask, identity_image):
    """Pastes rendered content over the identity image through a soft mask.

    `blend_mask * content + (1 - blend_mask) * identity_image`: where the
    mask is 0 the output is exactly the user's own pixels, which is what keeps
    identity on faces never seen in training.

    Args:
        content: rendered frames (B, T, H, W, 3) in 0..1.
        blend_mask: (B, T, H, W, 1) in 0..1.
        identity_image: (B, H, W, 3) in 0..1 (broadcast over T).

    Returns:
        Frames (B, T, H, W, 3), in 0..1 when the inputs are.

    Example:
    >>> frames = blend(np.ones((1, 2, 4, 4, 3)), np.zeros((1, 2, 4, 4, 1)),
    ...                np.zeros((1, 4, 4, 3)))
    >>> float(ops.max(frames))
    0.0
    """
    identity = ops.expand_dims(identity_image, 1)
    return blend_mask * content + (1.0 - blend_mask) * identity


def _add_over_time(per_frame, per_clip, like):
    """per_frame (B*T, ...) + per_clip (B, ...) broadcast over T."""
    return merge_time(split_time(per_frame, like) + ops.expand_dims(per_clip, 1))


class IdentityUNetDecoder(keras.Model):
    """The trunk of the decoders: per-frame features at crop resolution.

    Per frame, the fused feature is projected to a
    `image_size / 2**len(filters)` square map with `filters[0]` channels.
    Each stage i then concatenates the identity skip of its resolution
    (U-Net style; low to high), applies two 3x3 convolutions with
    LeakyReLU(0.2), modulates the result with a per-frame scale and shift
    computed from the fused feature (FiLM, so the driving signal reaches every
    resolution, not only the bottleneck) and upsamples x2. At full
    resolution the identity image itself is concatenated and convolved once
    more; `features` returns that map, which a subclass's heads turn into
    frames.

    The skips and the identity image are the same for every frame of a clip,
    so their share of each concatenation's convolution is computed once per
    clip and broadcast over T (the same result as concatenating, T times
    cheaper).

    Subclasses create their heads after `super().__init__` and build them
    after `super().build`, on `self.feature_shape`.

    Args:
        filters: filters of each stage, low to high resolution; one stage per
            identity skip.
        image_size: side of the square output frames.
        **kwargs: `keras.Model` arguments.
    """

    def __init__(self, filters, image_size, **kwargs):
        super().__init__(**kwargs)
        self.filters = tuple(int(f) for f in filters)
        self.image_size = int(image_size)
        if self.image_size % (2 ** len(self.filters)):
            raise ValueError(
                f"image_size {self.image_size} is not divisible by 2 ** {len(self.filters)}."
            )
        self.base_size = self.image_size // 2 ** len(self.filters)
        self.feature_shape = (None, self.image_size, self.image_size, self.filters[-1])
        self.seed = keras.layers.Dense(
            self.base_size * self.base_size * self.filters[0], name="seed"
        )
        self.stage_layers = []
        for index, width in enumerate(self.filters):
            self.stage_layers.append(
                {
                    # conv(concat(x, skip)) == conv_x(x) + conv_skip(skip)
                    "frame_conv": keras.layers.Conv2D(
                        width, 3, padding="same", name=f"stage{index}_frame"
                    ),
                    "skip_conv": keras.layers.Conv2D(
                        width,
                        3,
                        padding="same",
                        use_bias=False,
                        name=f"stage{index}_skip",
                    ),
                    "conv": keras.layers.Conv2D(
                        width, 3, padding="same", name=f"stage{index}_conv"
                    ),
                    "film": keras.layers.Dense(
                        2 * width,
                        kernel_initializer="zeros",
                        name=f"stage{index}_film",
                    ),
                }
            )
        self.activation = keras.layers.LeakyReLU(0.2, name="act")
        self.upsample = keras.layers.UpSampling2D(2, name="upsample")
        self.out_frame_conv = keras.layers.Conv2D(
            self.filters[-1], 3, padding="same", name="out_frame"
        )
        self.out_identity_conv = keras.layers.Conv2D(
            self.filters[-1],
            3,
            padding="same",
            use_bias=False,
            name="out_identity",
        )

    def build(self, input_shape):
        fused_shape, skip_shapes, image_shape = input_shape
        if len(skip_shapes) != len(self.filters):
            raise ValueError(
                f"{type(self).__name__} has {len(self.filters)} stages but "
                f"got {len(skip_shapes)} identity skips."
            )
        fused_shape = tuple(fused_shape)
        self.seed.build(fused_shape)
        size, channels = self.base_size, self.filters[0]
        for index, layers in enumerate(self.stage_layers):
            skip_shape = tuple(skip_shapes[len(self.filters) - 1 - index])
            if skip_shape[1] is not None and skip_shape[1] != size:
                raise ValueError(
                    f"Identity skip {skip_shape} does not match decoder "
                    f"stage {index} at {size}x{size}."
                )
            width = self.filters[index]
            layers["frame_conv"].build((None, size, size, channels))
            layers["skip_conv"].build(skip_shape)
            layers["conv"].build((None, size, size, width))
            layers["film"].build(fused_shape)
            size, channels = size * 2, width
        self.out_frame_conv.build((None, size, size, channels))
        self.out_identity_conv.build(tuple(image_shape))
        self.built = True

    def features(self, inputs):
        """The full-resolution feature map of each frame.

        Args:
            inputs: `[fused, skips, identity_image]`, as for `call`.

        Returns:
            (B*T, H, W, filters[-1]), frames of a clip consecutive
            (`split_time(features, fused)` gives (B, T, ...)).
        """
        fused, skips, identity_image = inputs
        per_frame = merge_time(fused)
        x = ops.reshape(
            self.seed(per_frame),
            (-1, self.base_size, self.base_size, self.filters[0]),
        )
        x = self.activation(x)
        for index, layers in enumerate(self.stage_layers):
            skip = skips[len(self.filters) - 1 - index]
            x = _add_over_time(layers["frame_conv"](x), layers["skip_conv"](skip), fused)
            x = self.activation(layers["conv"](self.activation(x)))
            scale, shift = ops.split(layers["film"](per_frame), 2, axis=-1)
            x = x * (1.0 + scale[:, None, None, :]) + shift[:, None, None, :]
            x = self.upsample(x)
        identity = identity_image * 2.0 - 1.0
        x = _add_over_time(self.out_frame_conv(x), self.out_identity_conv(identity), fused)
        return self.activation(x)

    def compute_output_shape(self, input_shape):
        fused_shape = tuple(input_shape[0])
        frame = (self.image_size, self.image_size)
        return (
            fused_shape[:2] + frame + (3,),
            fused_shape[:2] + frame + (1,),
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "filters": list(self.filters),
                "image_size": self.image_size,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="keras_autalk")
class FrameDecoder(IdentityUNetDecoder):
    """Renders each frame from its fused feature and the identity skips.

    On the `IdentityUNetDecoder` trunk, two 3x3 heads give the content and
    a soft blend mask (sigmoid, 1 channel); the frame is
    `mask * content + (1 - mask) * identity_image`.

    The content is a residual on the identity image,
    `clip(identity_image + tanh(head(x)), 0, 1)`, and the content head starts
    at zero, so an untrained decoder returns the photo unchanged. This keeps
    the mask open: were the content rendered from scratch, it would start as
    noise worse than the photo everywhere, and the pixel losses would close
    the mask before the content could learn (measured on the demo corpus: the
    mask fell to 3e-6 within 300 steps and the output stayed the photo).

    Args:
        filters: filters of each stage, low to high resolution; one stage per
            identity skip.
        image_size: side of the square output frames.
        **kwargs: `keras.Model` arguments.

    Call arguments:
        inputs: `[fused, skips, identity_image]`: fused (B, T, F), skips the
            `IdentityEncoder`'s list from high to low resolution, identity
            image (B, H, W, 3) in 0..1.

    Returns (from `call`):
        `(frames, blend_mask)`: frames (B, T, H, W, 3) in 0..1, blend mask
        (B, T, H, W, 1) in 0..1.

    Example:
    >>> decoder = FrameDecoder(filters=(16, 8), image_size=32)
    >>> skips = [np.zeros((2, 16, 16, 8), "float32"),
    ...          np.zeros((2, 8, 8, 16), "float32")]
    >>> frames, mask = decoder([np.zeros((2, 4, 24), "float32"), skips,
    ...                         np.zeros((2, 32, 32, 3), "float32")])
    >>> tuple(frames.shape), tuple(mask.shape)
    ((2, 4, 32, 32, 3), (2, 4, 32, 32, 1))
    """

    def __init__(self, filters, image_size, **kwargs):
        super().__init__(filters, image_size, **kwargs)
        # Zero-initialised: training starts from content == identity image.
        self.content_head = keras.layers.Conv2D(
            3, 3, padding="same", activation="tanh", kernel_initializer="zeros", name="content"
        )
        self.mask_head = keras.layers.Conv2D(
            1, 3, padding="same", activation="sigmoid", name="blend_mask"
        )

    def build(self, input_shape):
        super().build(input_shape)
        self.content_head.build(self.feature_shape)
        self.mask_head.build(self.feature_shape)

    def decode(self, inputs, training=None):
        """The unblended content and the blend mask, each (B, T, H, W, C).

        Args:
            inputs: as for `call`.
            training: unused (no dropout or batch statistics).

        Returns:
            `(content, blend_mask)`; `call` returns
            `(blend(content, blend_mask, identity_image), blend_mask)`.
        """
        fused, _, identity_image = inputs
        x = self.features(inputs)
        residual = split_time(self.content_head(x), fused)
        content = ops.clip(ops.expand_dims(identity_image, 1) + residual, 0.0, 1.0)
        blend_mask = split_time(self.mask_head(x), fused)
        return content, blend_mask

    def call(self, inputs, training=None):
        content, blend_mask = self.decode(inputs, training=training)
        return blend(content, blend_mask, inputs[2]), blend_mask
