"""Custom Keras layers: the temporal building blocks of the fusion network."""

from keras_autalk.layers.tcsa import TCSABlock, TCSAStack, receptive_field
from keras_autalk.layers.temporal_attention import TemporalSelfAttention
from keras_autalk.layers.temporal_conv import TemporalConv, mask_frames

__all__ = [
    "TCSABlock",
    "TCSAStack",
    "TemporalConv",
    "TemporalSelfAttention",
    "mask_frames",
    "receptive_field",
]
