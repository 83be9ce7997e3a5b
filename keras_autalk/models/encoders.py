"""Encoders: audio windows, the identity photo and AU curves to features.

Every network here is a registered, serialisable `keras.Model` subclass:
`__init__` stores the config and creates the sub-layers, `build` builds them
from the input shape, `call` computes, `get_config` returns exactly the
constructor arguments.
"""

import keras
from keras import ops

from keras_autalk.models.blocks import downsampling_stage


def merge_time(x):
    """(B, T, ...) -> (B*T, ...), so per-frame layers see one frame each."""
    return ops.reshape(x, (-1,) + tuple(x.shape[2:]))


def split_time(x, like):
    """(B*T, ...) -> (B, T, ...), B and T read off `like` (B, T, ...)."""
    shape = ops.shape(like)
    return ops.reshape(x, (-1, shape[1]) + tuple(x.shape[1:]))


def _merged_shape(shape):
    """The per-frame shape (None, ...) of a (B, T, ...) shape."""
    return (None,) + tuple(shape[2:])


def _build_chain(layers, shape):
    """Builds `layers` one after the other from `shape`; the final shape."""
    for layer in layers:
        layer.build(shape)
        shape = layer.compute_output_shape(shape)
    return shape


@keras.saving.register_keras_serializable(package="keras_autalk")
class AudioEncoder(keras.Model):
    """Per-frame audio windows to per-frame audio features.

    Each frame's log-mel window (context steps x mel bins) goes through three
    stride-2 3x3 convolutions with LayerNorm and GELU, is flattened (the
    frequency position of a formant matters, so it is not pooled away) and
    projected to `channels`. Frames are encoded independently; the temporal
    context comes later, from the non-causal temporal stacks.

    Args:
        channels: feature size per frame.
        **kwargs: `keras.Model` arguments (e.g. `name`).

    Example:
    >>> encoder = AudioEncoder(channels=32)
    >>> tuple(encoder(np.zeros((2, 8, 20, 80), "float32")).shape)
    (2, 8, 32)
    """

    def __init__(self, channels, **kwargs):
        super().__init__(**kwargs)
        self.channels = int(channels)
        widths = (
            max(self.channels // 4, 8),
            max(self.channels // 2, 8),
            self.channels,
        )
        self.convs = []
        for index, width in enumerate(widths):
            self.convs += [
                keras.layers.Conv2D(
                    width,
                    3,
                    strides=2,
                    padding="same",
                    name=f"conv{index}",
                ),
                keras.layers.LayerNormalization(name=f"norm{index}"),
                keras.layers.Activation("gelu", name=f"gelu{index}"),
            ]
        self.flatten = keras.layers.Flatten(name="flatten")
        self.projection = keras.layers.Dense(self.channels, name="projection")

    def build(self, input_shape):
        shape = _merged_shape(input_shape) + (1,)
        shape = _build_chain(self.convs + [self.flatten], shape)
        self.projection.build(shape)
        self.built = True

    def call(self, audio_features, training=None):
        x = ops.expand_dims(merge_time(audio_features), -1)
        for layer in self.convs:
            x = layer(x)
        x = self.projection(self.flatten(x))
        return split_time(x, audio_features)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:2]) + (self.channels,)

    def get_config(self):
        config = super().get_config()
        config.update({"channels": self.channels})
        return config


@keras.saving.register_keras_serializable(package="keras_autalk")
class IdentityEncoder(keras.Model):
    """The identity photo to an embedding and U-Net skip features.

    One stage per entry of `filters`: a stride-2 4x4 convolution and a 3x3
    convolution, each with LeakyReLU(0.2). The input (0..1) is mapped to
    -1..1 first. The embedding is the global average of the last stage,
    projected to `embedding_dim`.

    Args:
        filters: filters of each stage; each stage halves the resolution.
        embedding_dim: size of the identity embedding.
        **kwargs: `keras.Model` arguments.

    Returns (from `call`):
        `(embedding, skips)`: embedding (B, embedding_dim) and skips, the
        feature map of every stage from high to low resolution,
        skips[i] is (B, H / 2**(i+1), W / 2**(i+1), filters[i]).

    Example:
    >>> encoder = IdentityEncoder(filters=(8, 16), embedding_dim=32)
    >>> embedding, skips = encoder(np.zeros((2, 32, 32, 3), "float32"))
    >>> tuple(embedding.shape), [tuple(s.shape) for s in skips]
    ((2, 32), [(2, 16, 16, 8), (2, 8, 8, 16)])
    """

    def __init__(self, filters, embedding_dim, **kwargs):
        super().__init__(**kwargs)
        self.filters = tuple(int(f) for f in filters)
        self.embedding_dim = int(embedding_dim)
        self.stages = []
        for index, width in enumerate(self.filters):
            self.stages.append(downsampling_stage(width, index))
        self.pool = keras.layers.GlobalAveragePooling2D(name="pool")
        self.embedding = keras.layers.Dense(self.embedding_dim, name="embedding")

    def build(self, input_shape):
        shape = tuple(input_shape)
        for stage in self.stages:
            shape = _build_chain(stage, shape)
        self.embedding.build(self.pool.compute_output_shape(shape))
        self.built = True

    def call(self, identity_image, training=None):
        x = identity_image * 2.0 - 1.0
        skips = []
        for stage in self.stages:
            for layer in stage:
                x = layer(x)
            skips.append(x)
        return self.embedding(self.pool(x)), skips

    def compute_output_shape(self, input_shape):
        batch, height, width = input_shape[:3]
        skips = []
        for index, channels in enumerate(self.filters):
            factor = 2 ** (index + 1)
            skips.append(
                (
                    batch,
                    None if height is None else height // factor,
                    None if width is None else width // factor,
                    channels,
                )
            )
        return (batch, self.embedding_dim), skips

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "filters": list(self.filters),
                "embedding_dim": self.embedding_dim,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="keras_autalk")
class AUEncoder(keras.Model):
    """Per-frame AU intensities (0..5) to per-frame AU features.

    Intensities are scaled to 0..1, then two dense layers (GELU between)
    map them to `channels`.

    Args:
        channels: feature size per frame.
        **kwargs: `keras.Model` arguments.

    Example:
    >>> encoder = AUEncoder(channels=16)
    >>> tuple(encoder(np.zeros((2, 8, 5), "float32")).shape)
    (2, 8, 16)
    """

    def __init__(self, channels, **kwargs):
        super().__init__(**kwargs)
        self.channels = int(channels)
        self.hidden = keras.layers.Dense(self.channels, activation="gelu", name="hidden")
        self.projection = keras.layers.Dense(self.channels, name="projection")

    def build(self, input_shape):
        _build_chain([self.hidden, self.projection], tuple(input_shape))
        self.built = True

    def call(self, au_intensity, training=None):
        return self.projection(self.hidden(au_intensity / 5.0))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.channels,)

    def get_config(self):
        config = super().get_config()
        config.update({"channels": self.channels})
        return config
