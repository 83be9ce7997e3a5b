"""Export the talking-head generator for TF Serving (SavedModel).

`export_saved_model` writes a SavedModel holding the generator's weights
only (audio encoder, Audio2AU, AU encoder, identity encoder, fusion, frame
decoder; not the discriminator or the AU classifier) with three named serving
signatures, inputs named for what they are; it loads with
`tf.saved_model.load` and in a TF1-style session as TF Serving loads it:

- "generate" (also "serving_default"): `identity_image` (B, H, W, 3) float32
  in [0, 1], `audio_features` (B, T, context, bins) float32 log-mel windows
  (`keras_autalk.features.log_mel`), `articulation` (B,) float32 (1.0: as predicted)
  -> `frames` (B, T, H, W, 3) in [0, 1], `au_intensity` (B, T, A) in 0..5,
  `blend_mask` (B, T, H, W, 1) in [0, 1] (where the frame is rendered rather
  than the photo's own pixels).
- "generate_from_waveform": `identity_image`, `waveform` (B, samples) float32
  mono at `AudioConfig.sample_rate` (16 kHz); the log-mel features are
  computed inside the graph with the same TensorFlow ops as
  `keras_autalk.features.log_mel`, and T = `num_video_frames(samples)`
  -> `frames`, `au_intensity`.
- "audio_to_au": `audio_features` -> `au_intensity`.

`audio_features` are always the plain log-mel windows (`autalk features`);
a model trained with `ModelConfig.audio_normalization="utterance"`
normalises them inside the graph over the T frames of the request
(`log_mel.normalize_features`), so send a whole utterance, not a window.

`serving_request` builds the JSON body of a TF Serving REST `predict`
request for any of them. TFLite conversion is `export.tflite`. See
docs/serving.md.
"""

import contextlib
import dataclasses
import json
import os
import pathlib
import shutil
import tempfile

import numpy as np

from keras_autalk.config import AudioConfig
from keras_autalk.errors import AutalkError
from keras_autalk.features import log_mel
from keras_autalk.models.talker import GENERATOR_NETWORKS
from keras_autalk.native import import_tensorflow
from keras_autalk.version import __version__

tf = import_tensorflow()


SIGNATURES = ("generate", "generate_from_waveform", "audio_to_au")


# The inputs of each serving signature, in the order `serving_request` takes them.
SIGNATURE_INPUTS = {
    "generate": ("identity_image", "audio_features", "articulation"),
    "generate_from_waveform": ("identity_image", "waveform"),
    "audio_to_au": ("audio_features",),
}


SIGNATURE_OUTPUTS = {
    "generate": ("frames", "au_intensity", "blend_mask"),
    "generate_from_waveform": ("frames", "au_intensity"),
    "audio_to_au": ("au_intensity",),
}


METADATA_FILE = "keras_autalk_export.json"


# ------------------------------------------------------------------ folders
def check_output_directory(directory, what="output folder"):
    """Return `directory` as a `Path` if a new export can be written there.

    It may not exist yet or be empty; its parent folder must exist and be
    writable.

    Raises:
        AutalkError: it is a file or a non-empty folder, or its parent is
            missing or not writable.

    Example:
    ```python
    check_output_directory("models/autalk/1")
    ```
    """
    directory = pathlib.Path(directory)
    parent = directory.parent if str(directory.parent) else pathlib.Path(".")
    if directory.exists() and not directory.is_dir():
        raise AutalkError(f"The {what} '{directory}' is a file; give the path of a new folder.")
    if directory.is_dir() and any(directory.iterdir()):
        raise AutalkError(
            f"The {what} '{directory}' already exists and is not empty; give a new folder."
        )
    if not parent.is_dir():
        raise AutalkError(
            f"Cannot write the {what} '{directory}': the folder '{parent}' does not exist."
        )
    if not os.access(parent, os.W_OK):
        raise AutalkError(
            f"Cannot write the {what} '{directory}': the folder '{parent}' is not writable."
        )
    return directory


@contextlib.contextmanager
def atomic_directory(directory, what="output folder"):
    """Yield a temporary folder beside `directory`; rename it to `directory` on success.

    On any error the temporary folder is removed and `directory` is left as
    it was. An existing empty `directory` is replaced.

    Example:
    ```python
    with atomic_directory("export") as tmp:
        (tmp / "a.txt").write_text("done")
    ```
    """
    directory = check_output_directory(directory, what)
    tmp = pathlib.Path(
        tempfile.mkdtemp(prefix=f".{directory.name}.", suffix=".partial", dir=directory.parent)
    )
    try:
        yield tmp
        # mkdtemp makes the folder private to its owner; give the result the
        # permissions a plain mkdir would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)
        if directory.is_dir():
            directory.rmdir()  # empty, checked above
        os.rename(tmp, directory)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


# -------------------------------------------------------------- SavedModel
def _input_specs(model, audio_config):
    size = model.model_config.image_size
    return {
        "identity_image": tf.TensorSpec([None, size, size, 3], tf.float32, "identity_image"),
        "audio_features": tf.TensorSpec(
            [None, None, audio_config.context_steps, audio_config.num_mel_bins],
            tf.float32,
            "audio_features",
        ),
        "articulation": tf.TensorSpec([None], tf.float32, "articulation"),
        "waveform": tf.TensorSpec([None, None], tf.float32, "waveform"),
    }


def _ensure_built(model, audio_config):
    size = model.model_config.image_size
    if not model.built:
        model.build(
            {
                "identity_image": (None, size, size, 3),
                "audio_features": (
                    None,
                    None,
                    audio_config.context_steps,
                    audio_config.num_mel_bins,
                ),
            }
        )
    built = getattr(model, "_built_input_shapes", None) or {}
    expected = [audio_config.context_steps, audio_config.num_mel_bins]
    if built.get("audio_features") and list(built["audio_features"][2:]) != expected:
        raise AutalkError(
            f"The model reads audio windows of {list(built['audio_features'][2:])} "
            f"(steps, mel bins) but the audio config gives {expected}."
        )


def serving_module(model, audio_config=AudioConfig()):
    """A `tf.Module` with the generator's weights and its serving functions.

    Args:
        model: a built (or buildable) `AUTalker`.
        audio_config: the `AudioConfig` the model's features were made with
            (window shape; sample rate and frame rate for "waveform").

    Returns:
        A `tf.Module` whose attributes `generate`, `generate_from_waveform`
        and `audio_to_au` are `tf.function`s with the input signatures
        described in this module's docstring (`serving_signatures` lists
        them for `tf.saved_model.save`). It tracks the generator's weights
        only (`generator_weights`), not the discriminator or AU classifier.

    Example:
    ```python
    module = serving_module(model)
    outputs = module.generate(identity_image, audio_features, np.ones([1], "float32"))
    ```
    """
    _ensure_built(model, audio_config)
    specs = _input_specs(model, audio_config)
    module = tf.Module(name="autalk_generator")
    # The module tracks the generator's plain `tf.Variable`s (what each Keras
    # variable wraps), not the Keras variables or networks: a SavedModel that
    # tracks Keras 3 variables restores them under TF2 `tf.saved_model.load`
    # but not in a TF1-style session load (TF Serving, `saved_model_cli
    # run`), where the graph reads variables nothing restored ("Could not
    # find variable ...", tensorflow/tensorflow#72963, keras-team/keras#20095).
    module.generator_weights = [
        getattr(weight, "value", weight)
        for name in GENERATOR_NETWORKS
        if getattr(model, name) is not None
        for weight in getattr(model, name).weights
    ]

    normalization = model.model_config.audio_normalization

    def run(identity_image, audio_features, articulation=None):
        audio_features = log_mel.normalize_features(audio_features, normalization, audio_config)
        inputs = {"identity_image": identity_image, "audio_features": audio_features}
        if articulation is not None:
            inputs["articulation"] = articulation
        return model(inputs, training=False)

    @tf.function(
        input_signature=[specs["identity_image"], specs["audio_features"], specs["articulation"]]
    )
    def generate(identity_image, audio_features, articulation):
        outputs = run(identity_image, audio_features, articulation)
        return {name: outputs[name] for name in SIGNATURE_OUTPUTS["generate"]}

    @tf.function(input_signature=[specs["identity_image"], specs["waveform"]])
    def generate_from_waveform(identity_image, waveform):
        num_frames = log_mel.num_video_frames(tf.shape(waveform)[1], audio_config)
        spectrogram = log_mel.log_mel_spectrogram(waveform, audio_config)
        audio_features = log_mel.frame_features(spectrogram, num_frames, audio_config)
        outputs = run(identity_image, audio_features)
        return {name: outputs[name] for name in SIGNATURE_OUTPUTS["generate_from_waveform"]}

    @tf.function(input_signature=[specs["audio_features"]])
    def audio_to_au(audio_features):
        audio_features = log_mel.normalize_features(audio_features, normalization, audio_config)
        return {"au_intensity": model.audio2au(audio_features, training=False)}

    module.generate = generate
    module.generate_from_waveform = generate_from_waveform
    module.audio_to_au = audio_to_au
    return module


def serving_signatures(module):
    """The `signatures` dict `tf.saved_model.save` takes for a `serving_module`.

    "serving_default" is "generate".

    Example:
    ```python
    module = serving_module(model)
    tf.saved_model.save(module, "export", signatures=serving_signatures(module))
    ```
    """
    signatures = {name: getattr(module, name) for name in SIGNATURES}
    signatures["serving_default"] = module.generate
    return signatures


def _metadata(model, audio_config):
    size = model.model_config.image_size
    window = [audio_config.context_steps, audio_config.num_mel_bins]
    shapes = {
        "identity_image": [None, size, size, 3],
        "audio_features": [None, None] + window,
        "articulation": [None],
        "waveform": [None, None],
        "frames": [None, None, size, size, 3],
        "au_intensity": [None, None, model.model_config.num_action_units],
        "blend_mask": [None, None, size, size, 1],
    }
    return {
        "format": "keras_autalk.saved_model",
        "keras_autalk_version": __version__,
        "model_config": model.model_config.to_dict(),
        "audio_config": dataclasses.asdict(audio_config),
        "signatures": {
            name: {
                "inputs": {key: shapes[key] for key in SIGNATURE_INPUTS[name]},
                "outputs": {key: shapes[key] for key in SIGNATURE_OUTPUTS[name]},
            }
            for name in SIGNATURES
        },
        "default_signature": "generate",
    }


def export_saved_model(model, directory, audio_config=AudioConfig()):
    """Write the generator as a SavedModel with named serving signatures.

    The folder is written under a temporary name beside `directory` and
    renamed when complete. TF Serving loads `<base>/<version>/`, so export to
    e.g. `models/autalk/1`. A `keras_autalk_export.json` beside
    `saved_model.pb` records the package version, model config, audio
    config and each signature's inputs and outputs (TF Serving ignores it).

    Args:
        model: an `AUTalker`.
        directory: the new SavedModel folder (absent or empty; its parent
            must exist).
        audio_config: the `AudioConfig` the model was trained with.

    Returns:
        `directory` as a `Path`.

    Raises:
        AutalkError: `directory` is a non-empty folder or a file, or its
            parent is missing.

    Example:
    ```python
    export_saved_model(load_pretrained("demo"), "models/autalk/1")
    served = tf.saved_model.load("models/autalk/1")
    outputs = served.signatures["generate"](identity_image=..., audio_features=...,
                                            articulation=...)
    ```
    """
    directory = check_output_directory(directory, "SavedModel folder")
    module = serving_module(model, audio_config)
    with atomic_directory(directory, "SavedModel folder") as tmp:
        tf.saved_model.save(module, str(tmp), signatures=serving_signatures(module))
        (tmp / METADATA_FILE).write_text(
            json.dumps(_metadata(model, audio_config), indent=2) + "\n"
        )
    return directory


# ---------------------------------------------------------------- REST body
def _as_batch(value, rank, name):
    array = np.asarray(value, dtype=np.float32)
    if array.ndim == rank - 1:
        array = array[None]
    if array.ndim != rank:
        raise ValueError(
            f"{name} must have {rank - 1} dimensions (one example) or {rank} (a batch), "
            f"got shape {array.shape}."
        )
    return array


def serving_request(signature_name, identity_image=None, audio=None, articulation=None):
    """The JSON body of a TF Serving REST `predict` request (row format).

    Each instance is one example: a dict of its inputs as nested lists. TF
    Serving stacks the instances' values of each input into the batch.

    Args:
        signature_name: "generate", "generate_from_waveform" or "audio_to_au".
        identity_image: (H, W, 3) or (B, H, W, 3) in [0, 1] (not for
            "audio_to_au").
        audio: `audio_features` (T, context, bins) or (B, T, context, bins)
            for "generate" and "audio_to_au"; the `waveform` (samples,) or
            (B, samples), mono at 16 kHz, for "generate_from_waveform" (a
            batch's waveforms all have the same length).
        articulation: "generate" only: a float, or (B,) floats; default 1.0
            (the predicted AU intensities as they are).

    Returns:
        `{"signature_name": ..., "instances": [{input name: value}, ...]}`;
        `json.dumps` it and POST it to `/v1/models/<name>:predict`.

    Example:
    >>> body = serving_request("audio_to_au", audio=np.zeros((4, 20, 80)))
    >>> sorted(body["instances"][0]), np.shape(body["instances"][0]["audio_features"])
    (['audio_features'], (4, 20, 80))
    """
    if signature_name not in SIGNATURES:
        raise ValueError(f"Unknown signature {signature_name!r}; choose one of {SIGNATURES}.")
    inputs = {}
    if signature_name != "audio_to_au":
        if identity_image is None:
            raise ValueError(f"The {signature_name!r} signature needs an identity_image.")
        inputs["identity_image"] = _as_batch(identity_image, 4, "identity_image")
    if audio is None:
        raise ValueError(f"The {signature_name!r} signature needs audio.")
    if signature_name == "generate_from_waveform":
        inputs["waveform"] = _as_batch(audio, 2, "waveform")
    else:
        inputs["audio_features"] = _as_batch(audio, 4, "audio_features")
    batch = {len(value) for value in inputs.values()}
    if len(batch) != 1:
        raise ValueError(f"The inputs disagree on the batch size: {sorted(batch)}.")
    batch = batch.pop()
    if signature_name == "generate":
        if articulation is None:
            articulation = 1.0
        values = np.broadcast_to(np.asarray(articulation, np.float32).reshape(-1), (batch,))
        inputs["articulation"] = values
    elif articulation is not None:
        raise ValueError(f"The {signature_name!r} signature takes no articulation.")
    instances = [
        {name: value[index].tolist() for name, value in inputs.items()} for index in range(batch)
    ]
    return {"signature_name": signature_name, "instances": instances}
