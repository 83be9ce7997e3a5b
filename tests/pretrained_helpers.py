"""Tiny untrained talkers for the pretrained-model and generate tests.

The crop must be the real 128 pixels (alignment and paste-back use it), so
the networks are kept tiny instead: three encoder stages of 4-8 filters.
The decoder's content head and FiLM layers start at zero (an untrained
decoder returns the photo unchanged), which would make the generated
frames independent of the audio; `perturbed_talker` fills every all-zero
weight with seeded noise so that audio and AUs visibly move the pixels.
"""

import numpy as np

IMAGE_SIZE = 128


def tiny_config(**overrides):
    """A tiny `ModelConfig` at the real crop size (128 pixels)."""
    from keras_autalk.config import model_config

    values = dict(
        image_size=IMAGE_SIZE,
        audio_channels=8,
        au_channels=8,
        identity_channels=8,
        fusion_channels=8,
        fusion_dilations=(1, 2),
        attention_heads=2,
        dropout=0.0,
        encoder_filters=(4, 8, 8),
        decoder_filters=(8, 8, 4),
        discriminator_filters=(4, 8),
        au_classifier_filters=(4, 8),
    )
    values.update(overrides)
    return model_config("small", **values)


def perturbed_talker(seed=0, **overrides):
    """A built tiny `AUTalker` whose output depends on the audio and the AUs."""
    import keras

    from keras_autalk.presets.pretrained import build_inference_model

    keras.utils.set_random_seed(seed)
    model = build_inference_model(tiny_config(**overrides))
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        value = variable.numpy()
        if not value.any():
            variable.assign(rng.normal(0.0, 0.3, value.shape).astype(value.dtype))
    return model


def speech_like(seconds, sample_rate=22050, channels=2):
    """Syllable-like tone bursts (a clear rhythm, loud enough to count as speech)."""
    time = np.arange(int(round(seconds * sample_rate))) / sample_rate
    envelope = np.clip(np.sin(2 * np.pi * 3 * time), 0, None)
    signal = (
        0.3 * envelope * np.sin(2 * np.pi * 220 * time) * (1 + 0.5 * np.sin(2 * np.pi * 900 * time))
    )
    return np.repeat(signal[:, None], channels, axis=1).astype(np.float32)
