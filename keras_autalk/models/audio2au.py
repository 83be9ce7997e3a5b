"""Audio-to-AU: per-frame AU intensities predicted from speech."""

import keras
from keras import ops

from keras_autalk.layers.tcsa import TCSAStack
from keras_autalk.models.encoders import AudioEncoder


@keras.saving.register_keras_serializable(package="keras_autalk")
class Audio2AU(keras.Model):
    """Predicts speech-related AU intensities (0..5) for every video frame.

    Its own `AudioEncoder` reads each frame's audio window; a stack of
    dilated non-causal temporal convolution blocks (a `TCSAStack` without
    attention unless `use_attention=True`) gives every frame the past and
    future speech around it, since the mouth moves ahead of and behind the
    sound (co-articulation); a dense head with 5*sigmoid gives one
    intensity per AU.

    Args:
        action_units: the AU numbers it predicts, in output order.
        channels: width of the audio features and the temporal blocks.
        dilations: dilation of each temporal block.
        kernel_size: taps of the temporal convolutions.
        num_heads: attention heads (used only with `use_attention`).
        dropout: dropout rate inside the temporal blocks.
        use_attention: add temporal self-attention to every block.
        **kwargs: `keras.Model` arguments.

    Call arguments:
        audio_features: (B, T, context, bins) log-mel windows.
        mask: optional (B, T) frame mask (true = real frame).
        training: enables dropout.

    Returns (from `call`):
        AU intensities (B, T, len(action_units)) in 0..5.

    Example:
    >>> audio2au = Audio2AU(action_units=(25, 26), channels=16,
    ...                     dilations=(1, 2))
    >>> tuple(audio2au(np.zeros((2, 8, 20, 80), "float32")).shape)
    (2, 8, 2)
    """

    def __init__(
        self,
        action_units,
        channels,
        dilations=(1, 2, 4, 8),
        kernel_size=3,
        num_heads=4,
        dropout=0.0,
        use_attention=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.action_units = tuple(int(au) for au in action_units)
        self.channels = int(channels)
        self.dilations = tuple(int(d) for d in dilations)
        self.kernel_size = int(kernel_size)
        self.num_heads = int(num_heads)
        self.dropout = float(dropout)
        self.use_attention = bool(use_attention)
        # A (B, T) frame mask passes through: the output is per frame too.
        self.supports_masking = True
        self.audio_encoder = AudioEncoder(self.channels, name="audio_encoder")
        self.temporal = TCSAStack(
            self.channels,
            dilations=self.dilations,
            kernel_size=self.kernel_size,
            num_heads=self.num_heads,
            dropout=self.dropout,
            use_attention=self.use_attention,
            name="temporal",
        )
        self.head = keras.layers.Dense(len(self.action_units), name="head")

    def build(self, input_shape):
        self.audio_encoder.build(input_shape)
        shape = self.audio_encoder.compute_output_shape(input_shape)
        self.temporal.build(shape)
        self.head.build(shape)
        self.built = True

    def call(self, audio_features, mask=None, training=None):
        x = self.audio_encoder(audio_features, training=training)
        x = self.temporal(x, mask=mask, training=training)
        return 5.0 * ops.sigmoid(self.head(x))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:2]) + (len(self.action_units),)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "action_units": list(self.action_units),
                "channels": self.channels,
                "dilations": list(self.dilations),
                "kernel_size": self.kernel_size,
                "num_heads": self.num_heads,
                "dropout": self.dropout,
                "use_attention": self.use_attention,
            }
        )
        return config
