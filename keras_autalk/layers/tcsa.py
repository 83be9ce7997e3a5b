"""The TCSA fusion block: dilated non-causal temporal convolution + temporal
self-attention, each with a residual connection and LayerNorm.

`TCSABlock` is one block, `TCSAStack` a stack of blocks with growing
dilation, `receptive_field` the number of frames the convolutions of a stack
see. Every layer takes an optional (B, T) frame `mask` (true = real frame):
masked frames are zeroed before each convolution and never attended to, so
they cannot change the output at any real frame.
"""

import keras

from keras_autalk.layers.arguments import divisible, positive_integer, rate
from keras_autalk.layers.temporal_attention import TemporalSelfAttention
from keras_autalk.layers.temporal_conv import TemporalConv

# Epsilon of the LayerNorms (transformer convention).
_NORM_EPSILON = 1e-5
# Hidden width of the position-wise feed-forward, in units of `channels`,
# when `feedforward_channels` is not given.
_FEEDFORWARD_EXPANSION = 2


def receptive_field(kernel_size, dilations):
    """Frames seen by one output frame of a stack of temporal convolutions.

    Each convolution with `kernel_size` taps and dilation d widens the field
    by `(kernel_size - 1) * d` frames; with symmetric padding and an odd
    kernel half of that lies before the frame and half after it.

    Args:
        kernel_size: taps of each convolution.
        dilations: dilation of each convolution (an int for a single one).

    Returns:
        The receptive field in frames (int), the frame itself included.

    Example:
    ```python
    receptive_field(3, (1, 2, 4, 8))  # 31: frames t-15 .. t+15
    ```
    """
    if isinstance(dilations, int):
        dilations = (dilations,)
    return 1 + (int(kernel_size) - 1) * sum(int(d) for d in dilations)


@keras.saving.register_keras_serializable(package="keras_autalk")
class TCSABlock(keras.layers.Layer):
    """One temporal convolutional self-attention block on (B, T, C) features.

    x -> (Dense to `channels` if C differs) -> dilated non-causal
    `TemporalConv` + GELU -> residual + LayerNorm -> `TemporalSelfAttention`
    -> residual + LayerNorm -> position-wise feed-forward (GELU) -> residual
    + LayerNorm. Dropout (rate `dropout`, training only) follows the
    convolution, the attention and the feed-forward. With
    `use_attention=False` the attention sub-block is left out: the plain
    temporal convolution block of the ablation, whose output at frame t
    depends only on frames within `receptive_field(kernel_size,
    dilation_rate)` of t.

    Args:
        channels: output channels (and width of every sub-block).
        kernel_size: taps of the temporal convolution.
        dilation_rate: dilation of the temporal convolution.
        num_heads: attention heads (key size `channels // num_heads`).
        dropout: dropout rate.
        use_attention: include the temporal self-attention sub-block.
        feedforward_channels: hidden width of the feed-forward; None =
            `2 * channels`.
        **kwargs: standard `keras.layers.Layer` arguments.

    Example:
    ```python
    block = TCSABlock(32, kernel_size=3, dilation_rate=2, num_heads=4)
    fused = block(keras.random.normal((2, 8, 48)))  # (2, 8, 32)
    ```
    """

    def __init__(
        self,
        channels,
        kernel_size=3,
        dilation_rate=1,
        num_heads=4,
        dropout=0.0,
        use_attention=True,
        feedforward_channels=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.channels = positive_integer("channels", channels)
        self.kernel_size = positive_integer("kernel_size", kernel_size)
        self.dilation_rate = positive_integer("dilation_rate", dilation_rate)
        self.num_heads = positive_integer("num_heads", num_heads)
        self.dropout = rate("dropout", dropout)
        self.use_attention = bool(use_attention)
        if self.use_attention:
            divisible("channels", self.channels, "num_heads", self.num_heads)
        self.feedforward_channels = (
            None
            if feedforward_channels is None
            else positive_integer("feedforward_channels", feedforward_channels)
        )
        self.supports_masking = True

        self.projection = None  # created in build when C != channels
        self.conv = TemporalConv(
            self.channels, self.kernel_size, self.dilation_rate, activation="gelu", name="conv"
        )
        self.conv_dropout = keras.layers.Dropout(self.dropout)
        self.conv_norm = keras.layers.LayerNormalization(epsilon=_NORM_EPSILON, name="conv_norm")
        if self.use_attention:
            self.attention = TemporalSelfAttention(
                self.num_heads,
                max(1, self.channels // self.num_heads),
                dropout=self.dropout,
                name="attention",
            )
            self.attention_dropout = keras.layers.Dropout(self.dropout)
            self.attention_norm = keras.layers.LayerNormalization(
                epsilon=_NORM_EPSILON, name="attention_norm"
            )
        hidden = self.feedforward_channels or (_FEEDFORWARD_EXPANSION * self.channels)
        self.feedforward_hidden = keras.layers.Dense(
            hidden, activation="gelu", name="feedforward_hidden"
        )
        self.feedforward_output = keras.layers.Dense(self.channels, name="feedforward_output")
        self.feedforward_dropout = keras.layers.Dropout(self.dropout)
        self.feedforward_norm = keras.layers.LayerNormalization(
            epsilon=_NORM_EPSILON, name="feedforward_norm"
        )

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        if input_shape[-1] != self.channels:
            self.projection = keras.layers.Dense(self.channels, name="projection")
            self.projection.build(input_shape)
        shape = input_shape[:-1] + (self.channels,)
        self.conv.build(shape)
        self.conv_norm.build(shape)
        if self.use_attention:
            self.attention.build(shape)
            self.attention_norm.build(shape)
        self.feedforward_hidden.build(shape)
        self.feedforward_output.build(input_shape[:-1] + (self.feedforward_hidden.units,))
        self.feedforward_norm.build(shape)

    def call(self, inputs, mask=None, training=None):
        features = inputs
        if self.projection is not None:
            features = self.projection(features)
        update = self.conv(features, mask=mask)
        update = self.conv_dropout(update, training=training)
        features = self.conv_norm(features + update)
        if self.use_attention:
            update = self.attention(features, mask=mask, training=training)
            update = self.attention_dropout(update, training=training)
            features = self.attention_norm(features + update)
        update = self.feedforward_output(self.feedforward_hidden(features))
        update = self.feedforward_dropout(update, training=training)
        return self.feedforward_norm(features + update)

    def compute_mask(self, inputs, mask=None):
        return mask

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.channels,)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "channels": self.channels,
                "kernel_size": self.kernel_size,
                "dilation_rate": self.dilation_rate,
                "num_heads": self.num_heads,
                "dropout": self.dropout,
                "use_attention": self.use_attention,
                "feedforward_channels": self.feedforward_channels,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="keras_autalk")
class TCSAStack(keras.layers.Layer):
    """A stack of `TCSABlock`s, one per dilation (the fusion network's core).

    The first block projects the input to `channels` if needed. With
    `use_attention=False` (the "conv" ablation) the output at frame t
    depends exactly on input frames within `receptive_field // 2` of t
    (odd `kernel_size`), past and future.

    Args:
        channels: width of every block and of the output.
        dilations: dilation of each block's temporal convolution.
        kernel_size: taps of the temporal convolutions.
        num_heads: attention heads per block.
        dropout: dropout rate.
        use_attention: include temporal self-attention in every block.
        **kwargs: standard `keras.layers.Layer` arguments.

    Example:
    ```python
    stack = TCSAStack(32, dilations=(1, 2), num_heads=4)
    fused = stack(keras.random.normal((2, 8, 48)))  # (2, 8, 32)
    stack.receptive_field  # 7
    ```
    """

    def __init__(
        self,
        channels,
        dilations=(1, 2, 4, 8),
        kernel_size=3,
        num_heads=4,
        dropout=0.0,
        use_attention=True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.channels = positive_integer("channels", channels)
        self.dilations = tuple(positive_integer("dilations", d) for d in dilations)
        if not self.dilations:
            raise ValueError(
                f"`dilations` needs at least one dilation rate. Received: dilations={dilations!r}"
            )
        self.kernel_size = positive_integer("kernel_size", kernel_size)
        self.num_heads = positive_integer("num_heads", num_heads)
        self.dropout = rate("dropout", dropout)
        self.use_attention = bool(use_attention)
        if self.use_attention:
            divisible("channels", self.channels, "num_heads", self.num_heads)
        self.supports_masking = True
        self.blocks = [
            TCSABlock(
                self.channels,
                self.kernel_size,
                dilation,
                self.num_heads,
                self.dropout,
                self.use_attention,
                name=f"block_{index}",
            )
            for index, dilation in enumerate(self.dilations)
        ]

    @property
    def receptive_field(self):
        """Frames seen through the convolutions of the stack."""
        return receptive_field(self.kernel_size, self.dilations)

    def build(self, input_shape):
        shape = tuple(input_shape)
        for block in self.blocks:
            block.build(shape)
            shape = block.compute_output_shape(shape)

    def call(self, inputs, mask=None, training=None):
        features = inputs
        for block in self.blocks:
            features = block(features, mask=mask, training=training)
        return features

    def compute_mask(self, inputs, mask=None):
        return mask

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.channels,)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "channels": self.channels,
                "dilations": self.dilations,
                "kernel_size": self.kernel_size,
                "num_heads": self.num_heads,
                "dropout": self.dropout,
                "use_attention": self.use_attention,
            }
        )
        return config
