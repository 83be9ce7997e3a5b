"""Print the numbers tests/presets/test_bundled_output.py pins the bundled model to.

    python tools/pin_bundled_output.py            # after changing saved_models/demo

The input is fixed: grace_hopper's aligned crop and the first 24 frames of
the bundled demo speech's features. The output printed is pasted into the
test (`PINNED`), so any change to what the bundled model gives users fails
a test until it is pinned again on purpose.
"""

import json
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))


def bundled_output():
    """`{"frames": ..., "au_intensity": ...}` numbers of the bundled model on the fixed input."""
    import numpy as np

    from keras_autalk.features import log_mel
    from keras_autalk.inference import generate
    from keras_autalk.media import audio, face, photos
    from keras_autalk.presets import pretrained

    talker = pretrained.load_pretrained("demo")
    photo = photos.load_photo("grace_hopper")
    crop = face.align_face(photo, face.find_face(photo).landmarks).crop
    waveform = audio.load_audio(generate.demo_speech_path())
    features = log_mel.audio_features(waveform)
    if talker.model_config.audio_normalization == "utterance":
        features = log_mel.normalize_features(features)
    outputs = talker(
        {
            "identity_image": (crop.astype("float32") / 255.0)[None],
            "audio_features": np.asarray(features[:24], "float32")[None],
        }
    )
    frames = np.asarray(outputs["frames"])[0]
    aus = np.asarray(outputs["au_intensity"])[0]
    mouth = frames[:, 80:112, 40:88]  # the mouth region of the aligned crop
    return {
        "frame_means": [round(float(value), 5) for value in frames.mean(axis=(1, 2, 3))[::6]],
        "mouth_means": [round(float(value), 5) for value in mouth.mean(axis=(1, 2, 3))[::6]],
        "au_intensity": [[round(float(value), 4) for value in row] for row in aus[::6]],
    }


if __name__ == "__main__":
    print(json.dumps(bundled_output(), indent=1))
