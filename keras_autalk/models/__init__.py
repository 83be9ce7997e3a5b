"""The networks of the talking head and the GAN that trains them.

All are registered, serialisable `keras.Model` subclasses sized by one
`keras_autalk.config.ModelConfig`; `build_networks` makes the whole set.
"""

from keras_autalk.config import ModelConfig
from keras_autalk.models.au_classifier import AUClassifier
from keras_autalk.models.audio2au import Audio2AU
from keras_autalk.models.discriminator import FrameDiscriminator
from keras_autalk.models.encoders import (
    AudioEncoder,
    AUEncoder,
    IdentityEncoder,
)
from keras_autalk.models.flow_decoder import FlowDecoder
from keras_autalk.models.fusion import FusionNetwork
from keras_autalk.models.generator import FrameDecoder, blend
from keras_autalk.models.sync_expert import SyncExpert
from keras_autalk.models.talker import AUTalker

# `ModelConfig.decoder` -> the decoder class.
DECODERS = {"frames": FrameDecoder, "flow": FlowDecoder}


def build_networks(model_config):
    """Every network of the talking head, sized by one config.

    Args:
        model_config: a `ModelConfig` or its `to_dict()`.

    Returns:
        A dict of unbuilt networks: "audio_encoder" (`AudioEncoder`, None
        when `drive="au"`), "audio2au" (`Audio2AU`), "au_encoder"
        (`AUEncoder`, None when `drive="audio"`), "identity_encoder"
        (`IdentityEncoder`), "fusion" (`FusionNetwork`), "decoder"
        (`FrameDecoder`, or `FlowDecoder` when `decoder="flow"`),
        "discriminator" (`FrameDiscriminator`) and
        "au_classifier" (`AUClassifier`).

    Example:
    >>> from keras_autalk.config import model_config
    >>> networks = build_networks(model_config("small", drive="audio"))
    >>> networks["au_encoder"] is None
    True
    """
    config = model_config
    if isinstance(config, dict):
        config = ModelConfig.from_dict(config)
    return {
        "audio_encoder": (
            AudioEncoder(config.audio_channels, name="audio_encoder") if config.uses_audio else None
        ),
        "audio2au": Audio2AU(
            config.action_units,
            config.audio_channels,
            dilations=config.fusion_dilations,
            kernel_size=config.fusion_kernel,
            num_heads=config.attention_heads,
            dropout=config.dropout,
            name="audio2au",
        ),
        "au_encoder": (
            AUEncoder(config.au_channels, name="au_encoder") if config.uses_au else None
        ),
        "identity_encoder": IdentityEncoder(
            config.encoder_filters,
            config.identity_channels,
            name="identity_encoder",
        ),
        "fusion": FusionNetwork(
            config.fusion_channels,
            dilations=config.fusion_dilations,
            kernel_size=config.fusion_kernel,
            num_heads=config.attention_heads,
            dropout=config.dropout,
            fusion=config.fusion,
            name="fusion",
        ),
        "decoder": DECODERS[config.decoder](
            config.decoder_filters, config.image_size, name="decoder"
        ),
        "discriminator": FrameDiscriminator(config.discriminator_filters, name="discriminator"),
        "au_classifier": AUClassifier(
            config.action_units,
            config.au_classifier_filters,
            dropout=config.dropout,
            name="au_classifier",
        ),
    }


__all__ = [
    "AUClassifier",
    "AUEncoder",
    "AUTalker",
    "Audio2AU",
    "AudioEncoder",
    "FlowDecoder",
    "FrameDecoder",
    "FrameDiscriminator",
    "FusionNetwork",
    "IdentityEncoder",
    "SyncExpert",
    "blend",
    "build_networks",
]
