"""Export the talking-head generator to TFLite, with a parity report against Keras.

`export_tflite` exports a SavedModel (`saved_model.export_saved_model`),
converts fixed-shape versions (B = 1, T = `window_frames`) of its
"generate" and "audio_to_au" signatures to TFLite (fp32, fp16 weights, or
dynamic-range int8) through `tf.lite.TFLiteConverter.from_saved_model`
(with Keras 3, `from_concrete_functions` gave wrong results), and reports
their parity with the Keras model (`parity.json`). See docs/serving.md.
"""

import json
import math
import os
import pathlib
import statistics
import tempfile
import time

import numpy as np

from keras_autalk.config import AudioConfig, DataConfig
from keras_autalk.errors import AutalkError, InputFileError
from keras_autalk.export.saved_model import (
    atomic_directory,
    check_output_directory,
    export_saved_model,
)
from keras_autalk.features import log_mel
from keras_autalk.native import import_tensorflow
from keras_autalk.version import __version__

tf = import_tensorflow()


QUANTIZATIONS = ("none", "fp16", "int8")


TFLITE_FILES = {"generator": "generator.tflite", "audio_to_au": "audio_to_au.tflite"}


PARITY_FILE = "parity.json"


TFLITE_THREADS = 2


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
            "export it with `autalk export --format saved_model`."
        )
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

    @tf.function(
        input_signature=[
            tf.TensorSpec(image_shape, tf.float32, "identity_image"),
            tf.TensorSpec(audio_shape, tf.float32, "audio_features"),
            tf.TensorSpec([1], tf.float32, "articulation"),
        ]
    )
    def generator(identity_image, audio_features, articulation):
        outputs = generate(
            identity_image=identity_image, audio_features=audio_features, articulation=articulation
        )
        return {"frames": outputs["frames"], "au_intensity": outputs["au_intensity"]}

    @tf.function(input_signature=[tf.TensorSpec(audio_shape, tf.float32, "audio_features")])
    def audio_to_au_window(audio_features):
        return {"au_intensity": audio_to_au(audio_features=audio_features)["au_intensity"]}

    module.generator = generator
    module.audio_to_au = audio_to_au_window
    return module, image_shape, audio_shape


def _convert(saved_model_dir, signature_key, quantize):
    converter = tf.lite.TFLiteConverter.from_saved_model(
        str(saved_model_dir), signature_keys=[signature_key]
    )
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
            f"({type(error).__name__}: {first_line})."
        ) from error


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
    waveform = (
        0.3 * voice * envelope / np.abs(voice).max() + 0.01 * rng.standard_normal(samples)
    ).astype(np.float32)
    features = log_mel.frame_features(
        log_mel.log_mel_spectrogram(waveform, audio_config), frames, audio_config
    ).numpy()
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
        outputs = reference.signatures["generate"](
            **{name: tf.constant(value) for name, value in inputs.items()}
        )
    else:
        inputs = dict(inputs)
        inputs["audio_features"] = log_mel.normalize_features(
            inputs["audio_features"], reference.model_config.audio_normalization
        )
        outputs = reference(inputs, training=False)
    return {name: np.asarray(outputs[name]) for name in ("frames", "au_intensity")}


def _tflite_parity(path, signature_key, inputs, reference, latency_runs, num_threads):
    interpreter = tf.lite.Interpreter(model_path=str(path), num_threads=num_threads)
    runner = interpreter.get_signature_runner(signature_key)
    feed = (
        {"audio_features": inputs["audio_features"]} if signature_key == "audio_to_au" else inputs
    )
    outputs = runner(**feed)
    entry = {"bytes": path.stat().st_size, "max_abs_diff": {}}
    for name, value in outputs.items():
        entry["max_abs_diff"][name] = float(np.max(np.abs(value - reference[name])))
    if "frames" in outputs:
        entry["frames_psnr_db"] = psnr(reference["frames"], outputs["frames"])
    entry["latency_ms_per_window"] = median_latency_ms(lambda: runner(**feed), latency_runs)
    return entry


def export_tflite(
    source,
    output_dir,
    quantize="none",
    window_frames=None,
    reference_model=None,
    audio_config=AudioConfig(),
    latency_runs=5,
    num_threads=TFLITE_THREADS,
    seed=0,
):
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
        tf.saved_model.save(
            module,
            str(fixed_dir),
            signatures={"generator": module.generator, "audio_to_au": module.audio_to_au},
        )
        inputs = parity_inputs(image_shape, audio_shape, audio_config, seed)
        reference = _reference_outputs(
            reference_model if reference_model is not None else loaded, inputs
        )
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
                    path, signature_key, inputs, reference, latency_runs, num_threads
                )
            (tmp / PARITY_FILE).write_text(json.dumps(report, indent=2) + "\n")
    return report


# ------------------------------------------------------- the LiteRT runtime
def litert_generator_bytes(model, quantize="fp16", audio_config=AudioConfig(), batch=1):
    """The generator as the `.tflite` `generate` runs with LiteRT (`inference.runtime`).

    Unlike `export_tflite`'s fixed-shape files, the clip length is left free
    (the runtime resizes it per window) and the features go in already
    normalised (`generate` normalises a whole utterance once, before
    cutting it into windows). Signature "generator": `identity_image`
    (1, S, S, 3), `audio_features` (1, T, context, bins), `articulation` (1,)
    -> `output` (1, T, S, S, C) (`runtime.model_output`) and `au_intensity`
    (1, T, A).

    Args:
        model: a built `AUTalker`.
        quantize: "fp16" (float16 weights, half the bytes) or "none".
        audio_config: the `AudioConfig` of the model's features.
        batch: clips per call (1, what the runtime uses; None leaves it free,
            for `bench/litert_windows.py`).

    Returns:
        The `.tflite` file's bytes.
    """
    from keras_autalk.inference.runtime import LITERT_SIGNATURE, model_output
    from keras_autalk.models.talker import GENERATOR_NETWORKS

    if quantize not in ("none", "fp16"):
        raise AutalkError(f"quantize must be none or fp16, got {quantize!r}.")
    size = model.model_config.image_size
    module = tf.Module(name="autalk_litert")
    module.generator_weights = [
        getattr(weight, "value", weight)
        for name in GENERATOR_NETWORKS
        if getattr(model, name) is not None
        for weight in getattr(model, name).weights
    ]

    @tf.function(
        input_signature=[
            tf.TensorSpec([batch, size, size, 3], tf.float32, "identity_image"),
            tf.TensorSpec(
                [batch, None, audio_config.context_steps, audio_config.num_mel_bins],
                tf.float32,
                "audio_features",
            ),
            tf.TensorSpec([batch], tf.float32, "articulation"),
        ]
    )
    def generator(identity_image, audio_features, articulation):
        outputs = model(
            {
                "identity_image": identity_image,
                "audio_features": audio_features,
                "articulation": articulation,
            },
            training=False,
        )
        return {"output": model_output(outputs, tf.concat), "au_intensity": outputs["au_intensity"]}

    module.generator = generator
    with tempfile.TemporaryDirectory(prefix="autalk_litert_") as scratch:
        tf.saved_model.save(module, scratch, signatures={LITERT_SIGNATURE: generator})
        return _convert(scratch, LITERT_SIGNATURE, quantize)


def litert_parity(model, path, window_frames=64, seed=0):
    """How closely a LiteRT generator file reproduces `model` on seeded inputs.

    Returns:
        `{"output_psnr_db", "output_max_abs_diff", "au_max_abs_diff",
        "window_frames"}`: the PSNR of its frames (the first 3 channels)
        and the largest differences of its whole output and of its AU
        intensities, against the Keras model.
    """
    from keras_autalk.inference.runtime import KerasRunner, LiteRTRunner

    size = model.model_config.image_size
    inputs = parity_inputs((1, size, size, 3), (1, window_frames, 20, 80), seed=seed)
    features = log_mel.normalize_features(
        inputs["audio_features"][0], model.model_config.audio_normalization
    ).numpy()
    reference = KerasRunner(model)(inputs["identity_image"][0], features, 1.0)
    tested = LiteRTRunner(path)(inputs["identity_image"][0], features, 1.0)
    return {
        "window_frames": window_frames,
        "output_psnr_db": psnr(reference[0][..., :3], tested[0][..., :3]),
        "output_max_abs_diff": float(np.max(np.abs(reference[0] - tested[0]))),
        "au_max_abs_diff": float(np.max(np.abs(reference[1] - tested[1]))),
    }


# A LiteRT file whose frames differ from Keras's by more than this is refused.
LITERT_MIN_PSNR_DB = 45.0
LITERT_MAX_AU_DIFF = 0.01


def export_litert(model_dir, output_dir, quantize="fp16"):
    """A copy of a pretrained-model folder with `generator.tflite` added.

    `generate` then runs it with LiteRT, without TensorFlow. The copy's
    `model.json` records the new file's SHA-256 (checked on load, as the
    weights') and, under "litert", its weights' type and its parity with
    the Keras model (`litert_parity`). The source folder is not changed;
    the new one appears only when complete.

    Args:
        model_dir: a model name ("demo") or folder (`save_pretrained`).
        output_dir: the new folder (absent or empty).
        quantize: "fp16" (default) or "none" (float32 weights).

    Returns:
        The parity record stored under "litert".

    Raises:
        AutalkError: bad `quantize`, `output_dir` not new, or a file whose
            frames fall below `LITERT_MIN_PSNR_DB` (or whose AU curves
            differ by more than `LITERT_MAX_AU_DIFF`) against Keras.

    Example:
    ```python
    export_litert("runs/talker/pretrained", "runs/talker/pretrained_litert")
    ```
    """
    import shutil

    from keras_autalk.inference.runtime import LITERT_FILE
    from keras_autalk.presets import pretrained

    source = pretrained.resolve_model_dir(model_dir)
    output_dir = check_output_directory(output_dir, "model folder")
    model = pretrained.load_pretrained(source)
    record = json.loads((source / pretrained.CONFIG_FILE).read_text(encoding="utf-8"))
    with atomic_directory(output_dir, "model folder") as tmp:
        for name in record.get("files") or {pretrained.WEIGHTS_FILE: None}:
            if name != LITERT_FILE:
                shutil.copyfile(source / name, tmp / name)
        path = tmp / LITERT_FILE
        path.write_bytes(litert_generator_bytes(model, quantize))
        parity = litert_parity(model, path)
        if (
            parity["output_psnr_db"] is not None and parity["output_psnr_db"] < LITERT_MIN_PSNR_DB
        ) or parity["au_max_abs_diff"] > LITERT_MAX_AU_DIFF:
            raise AutalkError(
                f"The LiteRT generator does not reproduce the Keras model closely enough "
                f"(frames {parity['output_psnr_db']:.1f} dB, AU difference "
                f"{parity['au_max_abs_diff']:.3g}); try --quantize none."
            )
        record["litert"] = {
            "file": LITERT_FILE,
            "weights": "float16" if quantize == "fp16" else "float32",
            "parity": parity,
        }
        files = dict(record.get("files") or {})
        files[LITERT_FILE] = {"sha256": pretrained.file_sha256(path), "bytes": path.stat().st_size}
        record["files"] = files
        (tmp / pretrained.CONFIG_FILE).write_text(
            json.dumps(record, indent=2) + "\n", encoding="utf-8"
        )
    return record["litert"]
