"""Benchmark: generator frames/s in Keras, tf.function, XLA, SavedModel and TFLite.

Builds an untrained `AUTalker` of the `small` preset at 128x128 (its
zero-initialised content head gets random weights, as training gives, so
the TFLite parity columns compare real rendering, not the identity photo),
and times one clip: batch 1, `--window` frames (default 64), on seeded
`keras_autalk.export.saved_model.parity_inputs`. Modes:

- Keras eager: `model(inputs)`;
- tf.function: `tf.function(model.call)` traced once;
- XLA: the same with `jit_compile=True`;
- SavedModel: `tf.saved_model.load(export_saved_model(...)).signatures["generate"]`;
- TFLite fp32 / fp16 / int8: `export_tflite(...)`'s `tf.lite.Interpreter`
  (`num_threads=--threads`) on fixed-shape files.

TensorFlow's intra-op threads are set to `--threads` too (default 2). Median
of `--repeats` runs after one warm-up run (tracing, XLA compilation).
Prints a Markdown table: ms per window, frames/s, file size, and for
TFLite the max abs frame difference and PSNR against the Keras model. Not a
test.

    python bench/export.py [--window 64] [--repeats 5] [--threads 2] [--batch 1]

`--batch N` times N clips at once (Keras, tf.function, XLA and SavedModel;
TFLite files have batch 1 and are skipped); frames/s counts all N x T frames.
"""

import argparse
import os
import pathlib
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from keras_autalk.native import import_tensorflow  # noqa: E402

tf = import_tensorflow()


def folder_bytes(folder):
    return sum(path.stat().st_size for path in pathlib.Path(folder).rglob("*") if path.is_file())


def build_model(seed=0):
    import keras

    from keras_autalk.config import AudioConfig, model_config
    from keras_autalk.models import AUTalker

    keras.utils.set_random_seed(seed)
    config = model_config("small")
    audio = AudioConfig()
    model = AUTalker(config)
    model.build(
        {
            "identity_image": (None, config.image_size, config.image_size, 3),
            "audio_features": (None, None, audio.context_steps, audio.num_mel_bins),
        }
    )
    kernel, _ = model.decoder.content_head.weights
    kernel.assign(np.random.default_rng(seed).normal(0.0, 0.1, kernel.shape).astype("float32"))
    return model


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window", type=int, default=64, help="frames per clip (T)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=1, help="clips per call")
    args = parser.parse_args()
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)

    from keras_autalk.export import saved_model as export
    from keras_autalk.export import tflite

    model = build_model()
    size = model.model_config.image_size
    inputs = tflite.parity_inputs((1, size, size, 3), (1, args.window, 20, 80))
    tensors = {
        name: tf.constant(np.repeat(value, args.batch, axis=0)) for name, value in inputs.items()
    }
    frames_per_call = args.batch * args.window
    rows = []

    def add(mode, function, file_bytes=None, parity=None):
        ms = tflite.median_latency_ms(function, args.repeats)
        rows.append((mode, ms, file_bytes, parity))
        print(f"  {mode}: {ms:.0f} ms", file=sys.stderr)

    add("Keras eager", lambda: model(tensors, training=False))
    traced = tf.function(lambda batch: model(batch, training=False))
    add("tf.function", lambda: traced(tensors))
    compiled = tf.function(lambda batch: model(batch, training=False), jit_compile=True)
    add("XLA (jit_compile)", lambda: compiled(tensors))

    with tempfile.TemporaryDirectory() as scratch:
        saved_model_dir = export.export_saved_model(model, pathlib.Path(scratch) / "saved_model")
        signature = tf.saved_model.load(str(saved_model_dir)).signatures["generate"]
        add("SavedModel signature", lambda: signature(**tensors), folder_bytes(saved_model_dir))
        for quantize in tflite.QUANTIZATIONS if args.batch == 1 else ():
            report = tflite.export_tflite(
                saved_model_dir,
                pathlib.Path(scratch) / f"tflite_{quantize}",
                quantize=quantize,
                window_frames=args.window,
                reference_model=model,
                latency_runs=args.repeats,
                num_threads=args.threads,
            )
            generator = report["files"]["generator.tflite"]
            rows.append(
                (
                    f"TFLite {'fp32' if quantize == 'none' else quantize}",
                    generator["latency_ms_per_window"],
                    generator["bytes"],
                    (generator["max_abs_diff"]["frames"], generator["frames_psnr_db"]),
                )
            )
            print(
                f"  TFLite {quantize}: {generator['latency_ms_per_window']:.0f} ms", file=sys.stderr
            )

    print(
        f"\nsmall preset, {size}x{size}, batch {args.batch}, {args.window} frames per window, "
        f"{args.threads} threads, median of {args.repeats}\n"
    )
    print("| mode | ms / call | frames/s | file size (MB) | frames max abs diff | PSNR (dB) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for mode, ms, file_bytes, parity in rows:
        size_text = f"{file_bytes / 1e6:.2f}" if file_bytes else ""
        diff_text, psnr_text = "", ""
        if parity is not None:
            diff_text = f"{parity[0]:.1e}"
            psnr_text = "inf" if parity[1] is None else f"{parity[1]:.1f}"
        print(
            f"| {mode} | {ms:.0f} | {1000.0 * frames_per_call / ms:.1f} | {size_text} "
            f"| {diff_text} | {psnr_text} |"
        )


if __name__ == "__main__":
    main()
