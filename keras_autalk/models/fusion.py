"""The multimodal fusion network: audio, AU and identity features per frame."""

import keras
from keras import ops

from keras_autalk.layers.tcsa import TCSAStack


@keras.saving.register_keras_serializable(package="keras_autalk")
class FusionNetwork(keras.Model):
    """Fuses audio features, AU features and the identity embedding.

    The present per-frame features and the identity embedding (broadcast
    over T) are concatenated on the channel axis and pass a `TCSAStack`
    (dilated non-causal temporal convolutions with temporal self-attention;
    `fusion="conv"` leaves the attention out, the ablation). Either driving
    stream may be `None` (the "audio" and "au" drive ablations), not both.

    Args:
        channels: width of the stack and of the fused feature per frame.
        dilations: dilation of each TCSA block.
        kernel_size: taps of the temporal convolutions.
        num_heads: attention heads per block.
        dropout: dropout rate inside the blocks.
        fusion: "tcsa" (with attention) or "conv" (without).
        **kwargs: `keras.Model` arguments.

    Call arguments:
        inputs: `[audio_features, au_features, identity_embedding]`: audio
            (B, T, Ca) or None, AU (B, T, Cu) or None, identity (B, Ci).
        mask: optional (B, T) frame mask (true = real frame); padded frames
            cannot change the fused feature of real frames.
        training: enables dropout.

    Returns (from `call`):
        fused features (B, T, channels).

    Example:
    >>> fusion = FusionNetwork(channels=16, dilations=(1, 2), num_heads=2)
    >>> fused = fusion([np.zeros((2, 8, 12), "float32"), None,
    ...                 np.zeros((2, 10), "float32")])
    >>> tuple(fused.shape)
    (2, 8, 16)
    """

    FUSIONS = ("tcsa", "conv")

    def __init__(
        self,
        channels,
        dilations=(1, 2, 4, 8),
        kernel_size=3,
        num_heads=4,
        dropout=0.0,
        fusion="tcsa",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if fusion not in self.FUSIONS:
            raise ValueError(f"fusion must be one of {self.FUSIONS}, got {fusion!r}.")
        self.channels = int(channels)
        self.dilations = tuple(int(d) for d in dilations)
        self.kernel_size = int(kernel_size)
        self.num_heads = int(num_heads)
        self.dropout = float(dropout)
        self.fusion = fusion
        # A (B, T) frame mask passes through: the output is per frame too.
        self.supports_masking = True
        self.stack = TCSAStack(
            self.channels,
            dilations=self.dilations,
            kernel_size=self.kernel_size,
            num_heads=self.num_heads,
            dropout=self.dropout,
            use_attention=fusion == "tcsa",
            name="tcsa_stack",
        )

    @staticmethod
    def _streams(inputs):
        audio, au, identity = inputs
        streams = [s for s in (audio, au) if s is not None]
        if not streams:
            raise ValueError(
                "FusionNetwork needs audio features, AU features or both; got neither."
            )
        return streams, identity

    def build(self, input_shape):
        streams, identity_shape = self._streams(input_shape)
        time_shape = tuple(streams[0])[:2]
        channels = sum(s[-1] for s in streams) + identity_shape[-1]
        self.stack.build(time_shape + (channels,))
        self.built = True

    @staticmethod
    def _frame_mask(mask):
        # Keras fills `mask` with the inputs' own Keras masks (one per input,
        # usually all None); a frame mask is one (B, T) tensor.
        if isinstance(mask, (list, tuple)):
            masks = [m for m in mask if m is not None]
            return masks[0] if masks else None
        return mask

    def call(self, inputs, mask=None, training=None):
        mask = self._frame_mask(mask)
        streams, identity = self._streams(inputs)
        time_steps = ops.shape(streams[0])[1]
        identity = ops.repeat(ops.expand_dims(identity, 1), time_steps, axis=1)
        features = ops.concatenate(streams + [identity], axis=-1)
        return self.stack(features, mask=mask, training=training)

    def compute_mask(self, inputs, mask=None):
        return self._frame_mask(mask)

    def compute_output_shape(self, input_shape):
        streams, _ = self._streams(input_shape)
        return tuple(streams[0])[:2] + (self.channels,)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "channels": self.channels,
                "dilations": list(self.dilations),
                "kernel_size": self.kernel_size,
                "num_heads": self.num_heads,
                "dropout": self.dropout,
                "fusion": self.fusion,
            }
        )
        return config
