"""`TemporalSelfAttention`: multi-head self-attention over frames."""

import math

import keras
from keras import ops

from keras_autalk.layers.arguments import positive_integer, rate
from keras_autalk.layers.temporal_conv import mask_frames

# Added to the scores of masked keys; softmax in float32 turns it into an
# exact zero weight, yet a fully masked row stays finite (uniform, no NaN).
_MASKED_SCORE = -1e9


@keras.saving.register_keras_serializable(package="keras_autalk")
class TemporalSelfAttention(keras.layers.Layer):
    """Multi-head self-attention over the time axis of (B, T, C) features.

    Every frame attends to every frame of the window (past and future).
    With a key padding `mask` (B, T) the masked frames are never attended
    to: their attention weight is exactly zero, so their inputs cannot
    change the output of any other frame. The outputs *at* masked frames
    are computed too but carry no meaning. The output has the input's C
    channels (queries, keys and values are projected to `num_heads` heads
    of `key_dim`, the heads are projected back to C).

    Args:
        num_heads: attention heads.
        key_dim: size of each head's queries, keys and values.
        dropout: dropout rate on the attention weights (training only).
        **kwargs: standard `keras.layers.Layer` arguments.

    Example:
    ```python
    attention = TemporalSelfAttention(num_heads=2, key_dim=8)
    features = keras.random.normal((2, 8, 16))
    mask = ops.array([[1] * 8, [1] * 5 + [0] * 3], "bool")
    outputs = attention(features, mask=mask)  # (2, 8, 16)
    ```
    """

    def __init__(self, num_heads, key_dim, dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        self.num_heads = positive_integer("num_heads", num_heads)
        self.key_dim = positive_integer("key_dim", key_dim)
        self.dropout = rate("dropout", dropout)
        self.attention_dropout = keras.layers.Dropout(self.dropout)
        self.supports_masking = True

    def build(self, input_shape):
        channels = input_shape[-1]
        heads = (self.num_heads, self.key_dim)
        for name in ("query", "key", "value"):
            setattr(
                self,
                name + "_kernel",
                self.add_weight(
                    name=name + "_kernel", shape=(channels,) + heads, initializer="glorot_uniform"
                ),
            )
            setattr(
                self,
                name + "_bias",
                self.add_weight(name=name + "_bias", shape=heads, initializer="zeros"),
            )
        self.output_kernel = self.add_weight(
            name="output_kernel", shape=heads + (channels,), initializer="glorot_uniform"
        )
        self.output_bias = self.add_weight(
            name="output_bias", shape=(channels,), initializer="zeros"
        )

    def call(self, inputs, mask=None, training=None):
        features = mask_frames(inputs, mask)
        query = ops.einsum("btc,chd->bthd", features, self.query_kernel)
        key = ops.einsum("btc,chd->bthd", features, self.key_kernel)
        value = ops.einsum("btc,chd->bthd", features, self.value_kernel)
        query = query + self.query_bias
        key = key + self.key_bias
        value = value + self.value_bias

        scores = ops.einsum("bqhd,bkhd->bhqk", query, key)
        scores = ops.cast(scores, "float32") / math.sqrt(self.key_dim)
        if mask is not None:
            keep = ops.cast(mask, "bool")[:, None, None, :]
            scores = ops.where(keep, scores, _MASKED_SCORE)
        # Softmax written out: `ops.softmax` warns on a one-frame window.
        weights = ops.exp(scores - ops.max(scores, axis=-1, keepdims=True))
        weights = weights / ops.sum(weights, axis=-1, keepdims=True)
        weights = ops.cast(weights, self.compute_dtype)
        weights = self.attention_dropout(weights, training=training)

        context = ops.einsum("bhqk,bkhd->bqhd", weights, value)
        outputs = ops.einsum("bqhd,hdc->bqc", context, self.output_kernel)
        return outputs + self.output_bias

    def compute_mask(self, inputs, mask=None):
        return mask

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "key_dim": self.key_dim,
                "dropout": self.dropout,
            }
        )
        return config
