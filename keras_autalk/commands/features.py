"""The `features` task: a speech recording in, its per-frame features out."""

import numpy as np

from keras_autalk.config import AudioConfig
from keras_autalk.features import log_mel
from keras_autalk.errors import InputFileError
from keras_autalk.files import atomic_output, check_output_path


def write_features(audio_path, output_path, config=AudioConfig(), backend="auto"):
    """Compute `log_mel.audio_features` of `audio_path` and save them as `.npy`.

    The output is checked before any work and written atomically.

    Returns:
        The shape written, `(frames, context_steps, num_mel_bins)`.
    """
    output_path = check_output_path(output_path, "features file")
    if output_path.suffix.lower() != ".npy":
        raise InputFileError(
            f"Cannot write features to '{output_path}'; give a file name ending in .npy."
        )
    features = log_mel.audio_features(audio_path, config, backend=backend)
    with atomic_output(output_path, "features file") as temporary:
        with open(temporary, "wb") as handle:
            np.save(handle, features)
    return features.shape
