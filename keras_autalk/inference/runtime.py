"""Where the generator runs: LiteRT (no TensorFlow) or Keras.

A pretrained model folder may hold `generator.tflite` beside its Keras
weights (`presets.pretrained.add_litert`): the same generator converted
with a free clip length and float16 weights, run here by LiteRT
(`ai-edge-litert`, the TensorFlow ecosystem's standalone runtime). It
imports in about a tenth of a second where TensorFlow takes five, so
`generate` on such a model never imports TensorFlow or Keras.

Both runners take one window and give the same arrays: the per-frame
model output `(T, S, S, C)` (C = 3 for a frame decoder; 6 for a flow
decoder: frame, backward flow and occlusion, `MOTION_CHANNELS`) and the AU
intensities `(T, A)`.

Runtimes (`RUNTIMES`): "auto" runs LiteRT where the folder has the file and
LiteRT is installed, else Keras; "litert" insists on LiteRT; "keras" always
uses Keras (training, evaluation and export stay on TensorFlow).
"""

import os
import pathlib

import numpy as np

from keras_autalk.errors import AutalkError, MissingDependencyError

RUNTIMES = ("auto", "litert", "keras")
LITERT_FILE = "generator.tflite"
LITERT_SIGNATURE = "generator"
# A flow-decoder model's per-frame output: the generated frame (3 channels),
# its backward flow (2) and its occlusion mask (1).
MOTION_CHANNELS = 6


def default_threads():
    """The CPU cores this process may use (LiteRT's thread count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def check_runtime(runtime):
    """Raise `AutalkError` unless `runtime` is one of `RUNTIMES`."""
    if runtime not in RUNTIMES:
        raise AutalkError(f"runtime must be one of {', '.join(RUNTIMES)}, got {runtime!r}.")


def litert_available():
    """Whether `ai-edge-litert` can be imported (without importing it)."""
    import importlib.util

    return importlib.util.find_spec("ai_edge_litert") is not None


class LiteRTRunner:
    """The generator as a `.tflite` file, run by LiteRT with XNNPACK.

    Args:
        path: the `generator.tflite` a model folder holds.
        num_threads: CPU threads; default every core this process may use.

    Example:
    ```python
    runner = LiteRTRunner("saved_models/demo/generator.tflite")
    motion, aus = runner(crop, features[:128], 1.0)
    ```
    """

    name = "litert"

    def __init__(self, path, num_threads=None):
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:
            raise MissingDependencyError(
                "The LiteRT runtime needs the package ai-edge-litert (pip install "
                "ai-edge-litert), or choose --runtime keras."
            ) from None
        self.path = pathlib.Path(path)
        self.num_threads = int(num_threads or default_threads())
        from keras_autalk.native import native_stderr_silenced

        try:
            # LiteRT says "Created TensorFlow Lite XNNPACK delegate" on stderr, from C.
            with native_stderr_silenced():
                interpreter = Interpreter(model_path=str(self.path), num_threads=self.num_threads)
                self._runner = interpreter.get_signature_runner(LITERT_SIGNATURE)
        except (ValueError, RuntimeError) as error:
            first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
            raise AutalkError(
                f"'{self.path}' is not a keras-autalk LiteRT generator ({first_line})."
            ) from None
        self._first_call = True
        details = self._runner.get_input_details()
        self.image_size = int(details["identity_image"]["shape"][1])

    def __call__(self, identity, features, articulation):
        """Run one window.

        Args:
            identity: the aligned face, float32 `(S, S, 3)` in [0, 1].
            features: float32 `(T, context_steps, num_mel_bins)`, normalised
                as the model expects.
            articulation: the AU scale (a float).

        Returns:
            `(output, au_intensity)`: float32 `(T, S, S, C)` and `(T, A)`.
        """
        from keras_autalk.native import native_stderr_silenced

        feed = {
            "identity_image": np.ascontiguousarray(identity, np.float32)[None],
            "audio_features": np.ascontiguousarray(features, np.float32)[None],
            "articulation": np.full([1], articulation, np.float32),
        }
        if self._first_call:  # the delegate is applied (and announced) on the first run
            with native_stderr_silenced():
                outputs = self._runner(**feed)
            self._first_call = False
        else:
            outputs = self._runner(**feed)
        return outputs["output"][0], outputs["au_intensity"][0]


class KerasRunner:
    """An `AUTalker` run through one traced `tf.function`.

    Batch and clip length are left open in the signature, so one trace
    serves every window; the trace is cached on the model, so every runner
    of one loaded model shares it.
    """

    name = "keras"

    def __init__(self, talker):
        self.talker = talker
        self.image_size = talker.model_config.image_size
        self._function = _traced_function(talker)

    def __call__(self, identity, features, articulation):
        """Run one window; the arguments and result are `LiteRTRunner.__call__`'s."""
        output, aus = self._function(
            {
                "identity_image": np.asarray(identity, np.float32)[None],
                "audio_features": np.asarray(features, np.float32)[None],
                "articulation": np.asarray(articulation, np.float32),
            }
        )
        return output.numpy()[0], aus.numpy()[0]


def _traced_function(model):
    function = getattr(model, "_autalk_generate_function", None)
    if function is not None:
        return function
    from keras_autalk.config import AudioConfig
    from keras_autalk.native import import_tensorflow

    tf = import_tensorflow()
    audio = AudioConfig()
    size = model.model_config.image_size
    signature = [
        {
            "identity_image": tf.TensorSpec((None, size, size, 3), tf.float32),
            "audio_features": tf.TensorSpec(
                (None, None, audio.context_steps, audio.num_mel_bins), tf.float32
            ),
            "articulation": tf.TensorSpec((), tf.float32),
        }
    ]

    @tf.function(input_signature=signature)
    def function(inputs):
        outputs = model(inputs, training=False)
        return model_output(outputs, tf.concat), outputs["au_intensity"]

    object.__setattr__(model, "_autalk_generate_function", function)
    return function


def model_output(outputs, concat):
    """The per-frame output the runners give: the frames, or frame + flow + occlusion.

    Args:
        outputs: an `AUTalker`'s outputs.
        concat: `tf.concat` (or any function with its signature).
    """
    if "flow" not in outputs:
        return outputs["frames"]
    return concat([outputs["frames"], outputs["flow"], outputs["blend_mask"]], axis=-1)


def choose_runtime(model_dir, runtime="auto"):
    """ "litert" or "keras": where a model folder's generator will run.

    Raises:
        AutalkError: an unknown `runtime`, or "litert" for a folder without
            `generator.tflite`.
        MissingDependencyError: "litert" without `ai-edge-litert` installed.
    """
    check_runtime(runtime)
    has_file = model_dir is not None and (pathlib.Path(model_dir) / LITERT_FILE).is_file()
    if runtime == "keras":
        return "keras"
    if runtime == "litert":
        if not has_file:
            where = f"the model '{model_dir}'" if model_dir is not None else "a loaded model"
            raise AutalkError(
                f"--runtime litert needs a {LITERT_FILE} in the model folder, and {where} "
                "has none; add one with `autalk export --format litert` or use --runtime keras."
            )
        if not litert_available():
            raise MissingDependencyError(
                "--runtime litert needs the package ai-edge-litert (pip install "
                "ai-edge-litert); or use --runtime keras."
            )
        return "litert"
    return "litert" if has_file and litert_available() else "keras"


__all__ = [
    "KerasRunner",
    "LITERT_FILE",
    "LiteRTRunner",
    "MOTION_CHANNELS",
    "RUNTIMES",
    "check_runtime",
    "choose_runtime",
    "default_threads",
    "litert_available",
    "model_output",
]
