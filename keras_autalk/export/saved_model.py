"""Export the talking-head generator for TF Serving (SavedModel) and TFLite.

`export_saved_model` writes a SavedModel holding the generator's weights
only (audio encoder, Audio2AU, AU encoder, identity encoder, fusion, frame
decoder; not the discriminator or the AU classifier) with three named serving
signatures, inputs named for what they are; it loads with
`tf.saved_model.load` and in a TF1-style session as TF Serving loads it:

- "generate" (also "serving_default"): `identity_image` (B, H, W, 3) float32
  in [0, 1], `audio_features` (B, T, context, bins) float32 log-mel windows
  (`keras_autalk.media.audio`), `articulation` (B,) float32 (1.0: as predicted)
  -> `frames` (B, T, H, W, 3) in [0, 1], `au_intensity` (B, T, A) in 0..5,
  `blend_mask` (B, T, H, W, 1) in [0, 1] (where the frame is rendered rather
  than the photo's own pixels).
- "generate_from_waveform": `identity_image`, `waveform` (B, samples) float32
  mono at `AudioConfig.sample_rate` (16 kHz); the log-mel features are
  computed inside the graph with the same TensorFlow ops as
  `keras_autalk.media.audio`, and T = `num_video_frames(samples)`
  -> `frames`, `au_intensity`.
- "audio_to_au": `audio_features` -> `au_intensity`.

`audio_features` are always the plain log-mel windows (`autalk features`);
a model trained with `ModelConfig.audio_normalization="utterance"`
normalises them inside the graph over the T frames of the request
(`log_mel.normalize_features`), so send a whole utterance, not a window.

`serving_request` builds the JSON body of a TF Serving REST `predict`
request for any of them. `export_tflite` converts fixed-shape versions
(B = 1, T = `window_frames`) of "generate" and "audio_to_au" to TFLite
(fp32, fp16 weights, or dynamic-range int8) through
`tf.lite.TFLiteConverter.from_saved_model` (with Keras 3,
`from_concrete_functions` gave wrong results), and reports their parity
with the Keras model. See docs/serving.md.
"""

import contextlib
import dataclasses
import json
import math
import os
import pathlib
import shutil
import statistics
import tempfile
import time

import numpy as np

from keras_autalk.config import AudioConfig, DataConfig
from keras_autalk.features import log_mel
from keras_autalk.errors import AutalkError, InputFileError
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
QUANTIZATIONS = ("none", "fp16", "int8")
TFLITE_FILES = {"generator": "generator.tflite", "audio_to_au": "audio_to_au.tflite"}
PARITY_FILE = "parity.json"
METADATA_FILE = "keras_autalk_export.json"
TFLITE_THREADS = 2


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
            f"The {what} '{directory}' already exists and is not empty; give a new folder.")
    if not parent.is_dir():
        raise AutalkError(
            f"Cannot write the {what} '{directory}': the folder '{parent}' does not exist.")
    if not os.access(parent, os.W_OK):
        raise AutalkError(
            f"Cannot write the {what} '{directory}': the folder '{parent}' is not writable.")
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
    tmp = pathlib.Path(tempfile.mkdtemp(
        prefix=f".{directory.name}.", suffix=".partial", dir=directory.parent))
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
            [None, None, audio_config.context_steps, audio_config.num_mel_bins], tf.float32,
            "audio_features"),
        "articulation": tf.TensorSpec([None], tf.float32, "articulation"),
        "waveform": tf.TensorSpec([None, None], tf.float32, "waveform"),
    }


def _ensure_built(model, audio_config):
    size = model.model_config.image_size
    if not model.built:
        model.build({
            "identity_image": (None, size, size, 3),
            "audio_features": (None, None, audio_config.context_steps,
                               audio_config.num_mel_bins),
        })
    built = getattr(model, "_built_input_shapes", None) or {}
    expected = [audio_config.context_steps, audio_config.num_mel_bins]
    if built.get("audio_features") and list(built["audio_features"][2:]) != expected:
        raise AutalkError(
            f"The model reads audio windows of {list(built['audio_features'][2:])} "
            f"(steps, mel bins) but the audio config gives {expected}.")


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
        for name in GENERATOR_NETWORKS if getattr(model, name) is not None
        for weight in getattr(model, name).weights]

    normalization = model.model_config.audio_normalization

    def run(identity_image, audio_features, articulation=None):
        audio_features = log_mel.normalize_features(audio_features, normalization, audio_config)
        inputs = {"identity_image": identity_image, "audio_features": audio_features}
        if articulation is not None:
            inputs["articulation"] = articulation
        return model(inputs, training=False)

    @tf.function(input_signature=[
        specs["identity_image"], specs["audio_features"], specs["articulation"]])
    def generate(identity_image, audio_features, articulation):
        outputs = run(identity_image, audio_features, articulation)
        return {name: outputs[name] for name in SIGNATURE_OUTPUTS["generate"]}

    @tf.function(input_signature=[specs["identity_image"], specs["waveform"]])
    def generate_from_waveform(identity_image, waveform):
        num_frames = log_mel.num_video_frames(tf.shape(waveform)[1], audio_config)
        log_mel = log_mel.log_mel_spectrogram(waveform, audio_config)
        audio_features = log_mel.frame_features(log_mel, num_frames, audio_config)
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
            json.dumps(_metadata(model, audio_config), indent=2) + "\n")
    return directory


# ---------------------------------------------------------------- REST body
def _as_batch(value, rank, name):
    array = np.asarray(value, dtype=np.float32)
    if array.ndim == rank - 1:
        array = array[None]
    if array.ndim != rank:
        raise ValueError(
            f"{name} must have {rank - 1} dimensions (one example) or {rank} (a batch), "
            f"got shape {array.shape}.")
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
    instances = [{name: value[index].tolist() for name, value in inputs.items()}
                 for index in range(batch)]
    return {"signature_name": signature_name, "instances": instances}


# ------------------------------------------------------------------- TFLite
def _load_saved_model(directory):
    directory = pathlib.Path(directory)
    if not (directory / "saved_model.pb").is_file():
        raise InputFileError(f"'{directory}' is not a SavedModel folder (no saved_model.pb).")
    loaded = tf.saved_model.load(str(directory))
    missing = [name for name in ("generate", "audio_to_au") if name not in loaded.signatures]
    if missing:
        raise InputFileError(
            f"The SavedModel '{directory}' has no {' or '.join(missing)} signature; "
            "export it with `autalk export --format saved_model`.")
    return loaded


def _fixed_module(loaded, window_frames):
    """Fixed-shape (B=1, T=window_frames) wrappers of a SavedModel's signatures."""
    generate = loaded.signatures["generate"]
    audio_to_au = loaded.signatures["audio_to_au"]
    image_spec = generate.structured_input_signature[1]["identity_image"]
    audio_spec = generate.structured_input_signature[1]["audio_features"]
    image_shape = [1] + image_spec.shape.as_list()[1:]
    audio_shape = [1, window_frames] + audio_spec.shape.as_list()[2:]
    module = tf.Module(name="autalk_tflite")
    module.saved_model = loaded

    @tf.function(input_signature=[
        tf.TensorSpec(image_shape, tf.float32, "identity_image"),
        tf.TensorSpec(audio_shape, tf.float32, "audio_features"),
        tf.TensorSpec([1], tf.float32, "articulation")])
    def generator(identity_image, audio_features, articulation):
        outputs = generate(identity_image=identity_image, audio_features=audio_features,
                           articulation=articulation)
        return {"frames": outputs["frames"], "au_intensity": outputs["au_intensity"]}

    @tf.function(input_signature=[tf.TensorSpec(audio_shape, tf.float32, "audio_features")])
    def audio_to_au_window(audio_features):
        return {"au_intensity": audio_to_au(audio_features=audio_features)["au_intensity"]}

    module.generator = generator
    module.audio_to_au = audio_to_au_window
    return module, image_shape, audio_shape


def _convert(saved_model_dir, signature_key, quantize):
    converter = tf.lite.TFLiteConverter.from_saved_model(
        str(saved_model_dir), signature_keys=[signature_key])
    if quantize != "none":
        # Without a representative dataset DEFAULT gives dynamic-range int8
        # weights; with supported_types float16 it gives float16 weights.
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "fp16":
        converter.target_spec.supported_types = [tf.float16]
    try:
        return converter.convert()
    except Exception as error:  # ConverterError and friends: one sentence up
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise AutalkError(
            f"TFLite could not convert the {signature_key} signature "
            f"({type(error).__name__}: {first_line}).") from error


def parity_inputs(image_shape, audio_shape, audio_config=AudioConfig(), seed=0):
    """Seeded inputs for the parity check: a smooth random image and speech-like features.

    The features come from a synthetic voiced waveform (harmonics of a
    gliding pitch with a syllable-rate envelope, plus a little noise)
    through `log_mel_spectrogram` and `frame_features`, so they lie in the
    range real speech gives.

    Args:
        image_shape: (1, H, W, 3).
        audio_shape: (1, T, context, bins).
        audio_config: `AudioConfig`.
        seed: the random seed.

    Returns:
        `{"identity_image", "audio_features", "articulation"}` float32 arrays.

    Example:
    >>> inputs = parity_inputs((1, 32, 32, 3), (1, 8, 20, 80))
    >>> inputs["audio_features"].shape
    (1, 8, 20, 80)
    """
    rng = np.random.default_rng(seed)
    height, width = image_shape[1:3]
    coarse = rng.uniform(size=(1, max(height // 8, 1), max(width // 8, 1), 3))
    image = tf.image.resize(coarse, (height, width), method="bilinear").numpy()
    image = np.clip(image + 0.05 * rng.standard_normal(image.shape), 0.0, 1.0)
    frames = audio_shape[1]
    samples = int(math.ceil(frames * audio_config.samples_per_frame))
    t = np.arange(samples) / audio_config.sample_rate
    phase = 2 * np.pi * np.cumsum(120 + 30 * np.sin(2 * np.pi * 0.7 * t)) / audio_config.sample_rate
    voice = sum(np.sin(k * phase) / k for k in range(1, 20))
    envelope = (0.5 + 0.5 * np.sin(2 * np.pi * 4 * t)) ** 2
    waveform = (0.3 * voice * envelope / np.abs(voice).max()
                + 0.01 * rng.standard_normal(samples)).astype(np.float32)
    features = log_mel.frame_features(
        log_mel.log_mel_spectrogram(waveform, audio_config), frames, audio_config).numpy()
    return {
        "identity_image": image.astype(np.float32),
        "audio_features": features[None].astype(np.float32),
        "articulation": np.ones([1], np.float32),
    }


def psnr(reference, test, peak=1.0):
    """Peak signal-to-noise ratio in dB of `test` against `reference`.

    Returns None when the two are identical (infinite PSNR; JSON has no inf).

    Example:
    >>> round(psnr(np.zeros(4), np.full(4, 0.1)), 1)
    20.0
    """
    mse = float(np.mean((np.asarray(reference, np.float64) - np.asarray(test, np.float64)) ** 2))
    return None if mse == 0.0 else 10.0 * math.log10(peak * peak / mse)


def median_latency_ms(function, runs=5):
    """Median wall time of `function()` in milliseconds, after one warm-up call."""
    function()
    times = []
    for _ in range(max(int(runs), 1)):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return 1000.0 * statistics.median(times)


def _reference_outputs(reference, inputs):
    """The reference's frames and AU intensities (an AUTalker or a SavedModel)."""
    if hasattr(reference, "signatures"):
        outputs = reference.signatures["generate"](**{
            name: tf.constant(value) for name, value in inputs.items()})
    else:
        inputs = dict(inputs)
        inputs["audio_features"] = log_mel.normalize_features(
            inputs["audio_features"], reference.model_config.audio_normalization)
        outputs = reference(inputs, training=False)
    return {name: np.asarray(outputs[name]) for name in ("frames", "au_intensity")}


def _tflite_parity(path, signature_key, inputs, reference, latency_runs, num_threads):
    interpreter = tf.lite.Interpreter(model_path=str(path), num_threads=num_threads)
    runner = interpreter.get_signature_runner(signature_key)
    feed = ({"audio_features": inputs["audio_features"]} if signature_key == "audio_to_au"
            else inputs)
    outputs = runner(**feed)
    entry = {"bytes": path.stat().st_size, "max_abs_diff": {}}
    for name, value in outputs.items():
        entry["max_abs_diff"][name] = float(np.max(np.abs(value - reference[name])))
    if "frames" in outputs:
        entry["frames_psnr_db"] = psnr(reference["frames"], outputs["frames"])
    entry["latency_ms_per_window"] = median_latency_ms(lambda: runner(**feed), latency_runs)
    return entry


def export_tflite(source, output_dir, quantize="none", window_frames=None,
                  reference_model=None, audio_config=AudioConfig(), latency_runs=5,
                  num_threads=TFLITE_THREADS, seed=0):
    """Convert the generator and Audio-to-AU to TFLite, with a parity report.

    Both files have fixed shapes: one clip (B = 1) of `window_frames` frames
    (T). "generator.tflite" (signature "generator") takes
    `identity_image` (1, H, W, 3), `audio_features` (1, T, context, bins)
    and `articulation` (1,) and returns `frames` (1, T, H, W, 3) and
    `au_intensity` (1, T, A); "audio_to_au.tflite" (signature
    "audio_to_au") takes `audio_features` and returns `au_intensity`. Longer
    audio is run window by window.

    The conversion goes through a SavedModel of fixed-shape wrappers of the
    exported signatures and `TFLiteConverter.from_saved_model`. "parity.json"
    holds, per file, its size, the max abs difference of each output from
    the reference on the same seeded inputs (`parity_inputs`), the PSNR of
    the TFLite frames against the reference's, and the median latency per
    window with `tf.lite.Interpreter(num_threads=num_threads)`.

    Args:
        source: an `AUTalker` (exported to a temporary SavedModel first) or
            the folder `export_saved_model` wrote.
        output_dir: the new folder for generator.tflite, audio_to_au.tflite
            and parity.json (absent or empty), written atomically.
        quantize: "none" (float32), "fp16" (float16 weights) or "int8"
            (dynamic-range: int8 weights, float activations; no
            representative dataset).
        window_frames: T of the fixed shapes; default
            `DataConfig().window_frames`, the training window.
        reference_model: the `AUTalker` to compare with; default `source`
            when it is a model, else the SavedModel's "generate" signature.
        audio_config: the `AudioConfig` the model was trained with.
        latency_runs: timed runs per file (median, after one warm-up).
        num_threads: TFLite interpreter threads for the latency.
        seed: seed of the parity inputs.

    Returns:
        The parity report (the dict written to parity.json).

    Raises:
        AutalkError: bad `quantize` or `window_frames`, `output_dir` not
            new, `source` not a SavedModel folder, or a conversion failure.

    Example:
    ```python
    report = export_tflite(model, "tflite_fp16", quantize="fp16")
    report["files"]["generator.tflite"]["frames_psnr_db"]
    ```
    """
    if quantize not in QUANTIZATIONS:
        raise AutalkError(f"quantize must be one of {', '.join(QUANTIZATIONS)}, got {quantize!r}.")
    if window_frames is None:
        window_frames = DataConfig().window_frames
    if int(window_frames) != window_frames or window_frames < 1:
        raise AutalkError(f"window_frames must be a positive whole number, got {window_frames!r}.")
    window_frames = int(window_frames)
    output_dir = check_output_directory(output_dir, "TFLite folder")
    with tempfile.TemporaryDirectory(prefix="autalk_tflite_") as scratch:
        scratch = pathlib.Path(scratch)
        if isinstance(source, (str, os.PathLike)):
            saved_model_dir = pathlib.Path(source)
            reference_kind = "keras" if reference_model is not None else "saved_model"
        else:
            saved_model_dir = export_saved_model(source, scratch / "saved_model", audio_config)
            reference_model = reference_model if reference_model is not None else source
            reference_kind = "keras"
        loaded = _load_saved_model(saved_model_dir)
        module, image_shape, audio_shape = _fixed_module(loaded, window_frames)
        fixed_dir = scratch / "fixed_shape"
        tf.saved_model.save(module, str(fixed_dir), signatures={
            "generator": module.generator, "audio_to_au": module.audio_to_au})
        inputs = parity_inputs(image_shape, audio_shape, audio_config, seed)
        reference = _reference_outputs(
            reference_model if reference_model is not None else loaded, inputs)
        report = {
            "keras_autalk_version": __version__,
            "quantize": quantize,
            "window_frames": window_frames,
            "image_size": image_shape[1],
            "reference": reference_kind,
            "inputs": f"parity_inputs(seed={seed}): smooth random image, synthetic voice",
            "num_threads": num_threads,
            "files": {},
        }
        with atomic_directory(output_dir, "TFLite folder") as tmp:
            for signature_key, file_name in TFLITE_FILES.items():
                path = tmp / file_name
                path.write_bytes(_convert(fixed_dir, signature_key, quantize))
                report["files"][file_name] = _tflite_parity(
                    path, signature_key, inputs, reference, latency_runs, num_threads)
            (tmp / PARITY_FILE).write_text(json.dumps(report, indent=2) + "\n")
    return report


__all__ = [
    "QUANTIZATIONS",
    "SIGNATURES",
    "atomic_directory",
    "check_output_directory",
    "export_saved_model",
    "export_tflite",
    "median_latency_ms",
    "parity_inputs",
    "psnr",
    "serving_module",
    "serving_request",
    "serving_signatures",
]
