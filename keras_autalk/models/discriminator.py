"""The frame discriminator: is this frame a real video frame of this person?"""

import keras
from keras import ops

from keras_autalk.models.blocks import downsampling_stage
from keras_autalk.models.encoders import _build_chain


@keras.saving.register_keras_serializable(package="keras_autalk")
class FrameDiscriminator(keras.Model):
    """A PatchGAN that judges frames given the identity image.

    The frame and the identity image (both 0..1) are concatenated on the
    channel axis (the conditioning), mapped to -1..1, and pass one stride-2
    4x4 convolution with LeakyReLU(0.2) per entry of `filters`, a 3x3
    convolution at the last width and a 3x3 convolution to one logit per
    patch. No batch statistics are used, so a distributed step matches a
    single-device one. The logits are raw (apply the loss's own
    activation).

    Args:
        filters: filters of each stride-2 stage.
        **kwargs: `keras.Model` arguments.

    Returns (from `call`):
        patch logits (N, H / 2**len(filters), W / 2**len(filters), 1).

    Example:
    >>> discriminator = FrameDiscriminator(filters=(8, 16))
    >>> frames = np.zeros((2, 32, 32, 3), "float32")
    >>> tuple(discriminator([frames, frames]).shape)
    (2, 8, 8, 1)
    """

    def __init__(self, filters, **kwargs):
        super().__init__(**kwargs)
        self.filters = tuple(int(f) for f in filters)
        self.body = []
        for index, width in enumerate(self.filters):
            self.body += downsampling_stage(width, index, refine=False)
        self.body += [
            keras.layers.Conv2D(self.filters[-1], 3, padding="same", name="conv"),
            keras.layers.LeakyReLU(0.2, name="conv_act"),
        ]
        self.logits = keras.layers.Conv2D(1, 3, padding="same", name="logits")

    def build(self, input_shape):
        frames_shape = tuple(input_shape[0])
        shape = frames_shape[:-1] + (frames_shape[-1] + input_shape[1][-1],)
        self.logits.build(_build_chain(self.body, shape))
        self.built = True

    def call(self, inputs, training=None):
        frames, identity_image = inputs
        x = ops.concatenate([frames, identity_image], axis=-1) * 2.0 - 1.0
        for layer in self.body:
            x = layer(x)
        return self.logits(x)

    def compute_output_shape(self, input_shape):
        batch, height, width = tuple(input_shape[0])[:3]
        factor = 2 ** len(self.filters)
        return (
            batch,
            None if height is None else -(-height // factor),
            None if width is None else -(-width // factor),
            1,
        )

    def get_config(self):
        config = super().get_config()
        config.update({"filters": list(self.filters)})
        return config
