"""`TemporalConv`: a dilated, non-causal 1-D convolution over frames."""

import keras
from keras import ops

from keras_autalk.layers.arguments import positive_integer


def mask_frames(features, mask):
    """Set the features of masked frames to zero.

    `where` rather than a product, so that even NaN or inf in a padded frame
    cannot leak into the frames that are kept.

    Args:
        features: (B, T, C) tensor.
        mask: (B, T) boolean or 0/1 tensor (true/1 = keep), or None.

    Returns:
        `features` with the frames where `mask` is false replaced by zeros.

    Example:
    ```python
    kept = mask_frames(ops.ones((1, 4, 2)), ops.array([[1, 1, 0, 0]]))
    ```
    """
    if mask is None:
        return features
    keep = ops.cast(mask, "bool")[:, :, None]
    return ops.where(keep, features, ops.zeros_like(features))


@keras.saving.register_keras_serializable(package="keras_autalk")
class TemporalConv(keras.layers.Layer):
    """1-D convolution over time with symmetric ("same") padding.

    The input (B, T, C) is zero-padded by `(kernel_size - 1) * dilation_rate`
    frames, half before and half after, so the output keeps T frames and
    frame t sees frames `t - r .. t + r` with `r = (kernel_size - 1) *
    dilation_rate // 2`: past **and** future (non-causal). With an even
    `kernel_size` the extra frame goes to the future side. Masked frames
    (`mask` false) are zeroed before the convolution, exactly like the
    padding at the sequence ends, so they cannot influence any output.

    Args:
        filters: output channels.
        kernel_size: taps of the temporal kernel.
        dilation_rate: spacing of the taps in frames.
        activation: activation applied to the output (name or callable);
            None = linear.
        **kwargs: standard `keras.layers.Layer` arguments (name, dtype, ...).

    Example:
    ```python
    conv = TemporalConv(16, kernel_size=3, dilation_rate=2, activation="gelu")
    features = conv(keras.random.normal((2, 8, 4)))  # (2, 8, 16)
    ```
    """

    def __init__(self, filters, kernel_size=3, dilation_rate=1, activation=None, **kwargs):
        super().__init__(**kwargs)
        self.filters = positive_integer("filters", filters)
        self.kernel_size = positive_integer("kernel_size", kernel_size)
        self.dilation_rate = positive_integer("dilation_rate", dilation_rate)
        self.activation = keras.activations.get(activation)
        self.supports_masking = True

    def build(self, input_shape):
        input_channels = input_shape[-1]
        self.kernel = self.add_weight(
            name="kernel",
            shape=(self.kernel_size, input_channels, self.filters),
            initializer="glorot_uniform",
        )
        self.bias = self.add_weight(name="bias", shape=(self.filters,), initializer="zeros")

    @property
    def padding(self):
        """Frames of zero padding (before, after) the sequence."""
        total = (self.kernel_size - 1) * self.dilation_rate
        return total // 2, total - total // 2

    def call(self, inputs, mask=None, training=None):
        features = mask_frames(inputs, mask)
        features = ops.pad(features, ((0, 0), self.padding, (0, 0)))
        outputs = ops.conv(
            features, self.kernel, strides=1, padding="valid", dilation_rate=self.dilation_rate
        )
        return self.activation(outputs + self.bias)

    def compute_mask(self, inputs, mask=None):
        return mask

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.filters,)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "filters": self.filters,
                "kernel_size": self.kernel_size,
                "dilation_rate": self.dilation_rate,
                "activation": keras.activations.serialize(self.activation),
            }
        )
        return config
