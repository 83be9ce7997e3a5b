"""Benchmark: training frames/s of the talker GAN and the AU classifier.

For each model preset (`small`, `paper`) and XLA setting (`jit_compile` off
and on), builds the model, compiles it, runs `--warmup` steps (tracing and
XLA compilation) and then times `--steps` training steps of `model.fit` on
one synthetic batch held in memory (so the input pipeline is not measured;
`bench/pipeline.py` measures that). Prints a Markdown table.

    python bench/training.py [--presets small,paper] [--models talker,au_classifier]
                             [--batch-size 4] [--steps 8] [--warmup 2]

Frames/s counts generated (talker: B x T) or classified (AU classifier)
frames per second of training.
"""

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from keras_autalk.config import AutalkConfig, model_config  # noqa: E402
from keras_autalk.native import import_tensorflow  # noqa: E402

tf = import_tensorflow()
import keras  # noqa: E402

from keras_autalk.models import AUClassifier  # noqa: E402
from keras_autalk.models.talker import AUTalker  # noqa: E402


def talker_batch(config, batch_size, rng):
    """One synthetic (inputs, targets) batch shaped like the pipeline's."""
    size, window = config.face.crop_size, config.data.window_frames
    units = len(config.action_units)
    landmarks = np.tile(rng.uniform(30, 100, (1, 1, 68, 2)), (batch_size, window, 1, 1))
    inputs = {
        "identity_image": rng.uniform(size=(batch_size, size, size, 3)),
        "audio_features": rng.normal(
            size=(batch_size, window, config.audio.context_steps, config.audio.num_mel_bins)
        ),
    }
    targets = {
        "frames": rng.uniform(size=(batch_size, window, size, size, 3)),
        "au_intensity": rng.uniform(0, 5, (batch_size, window, units)),
        "au_mask": np.ones((batch_size, window)),
        "face_mask": np.ones((batch_size, window)),
        "landmarks": landmarks,
    }
    cast = lambda tree: {key: value.astype("float32") for key, value in tree.items()}  # noqa: E731
    return cast(inputs), cast(targets)


def build_talker(preset, config, jit, batch):
    settings = model_config(
        preset, action_units=tuple(config.action_units), image_size=config.face.crop_size
    )
    classifier = AUClassifier(settings.action_units, settings.au_classifier_filters)
    model = AUTalker(settings, au_classifier=classifier)
    model(batch[0])
    model.compile(
        g_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5),
        d_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5),
        jit_compile=jit,
    )
    return model


def build_au_classifier(preset, config, jit, batch):
    settings = model_config(preset)
    model = AUClassifier(config.action_units, settings.au_classifier_filters, dropout=0.1)
    model.build((None, config.face.crop_size, config.face.crop_size, 3))
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse", jit_compile=jit)
    return model


def measure(model, batch, frames_per_step, steps, warmup):
    """Training frames/s over `steps` steps after `warmup` steps."""
    dataset = tf.data.Dataset.from_tensors(batch).repeat()
    start = time.perf_counter()
    model.fit(dataset, epochs=1, steps_per_epoch=warmup, verbose=0)
    first = time.perf_counter() - start
    start = time.perf_counter()
    model.fit(dataset, epochs=1, steps_per_epoch=steps, verbose=0)
    elapsed = time.perf_counter() - start
    return frames_per_step * steps / elapsed, elapsed / steps, first


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default="small,paper")
    parser.add_argument("--models", default="talker,au_classifier")
    parser.add_argument(
        "--batch-size",
        type=int,
        default=4,
        help="talker windows per step (the AU classifier gets 16x as many frames)",
    )
    parser.add_argument("--steps", type=int, default=8, help="timed steps per case")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps (tracing, XLA)")
    args = parser.parse_args()
    config = AutalkConfig()
    rng = np.random.default_rng(0)
    window = config.data.window_frames
    rows = []
    for model_name in args.models.split(","):
        for preset in args.presets.split(","):
            for jit in (False, True):
                keras.backend.clear_session()
                keras.utils.set_random_seed(0)
                if model_name == "talker":
                    batch = talker_batch(config, args.batch_size, rng)
                    frames = args.batch_size * window
                    build = build_talker
                else:
                    frames = args.batch_size * window
                    size = config.face.crop_size
                    batch = (
                        rng.uniform(size=(frames, size, size, 3)).astype("float32"),
                        rng.uniform(0, 5, (frames, len(config.action_units))).astype("float32"),
                    )
                    build = build_au_classifier
                try:
                    model = build(preset, config, jit, batch)
                    rate, seconds, first = measure(model, batch, frames, args.steps, args.warmup)
                    rows.append(
                        (
                            model_name,
                            preset,
                            "on" if jit else "off",
                            f"{model.count_params() / 1e6:.1f} M",
                            f"{rate:.1f}",
                            f"{seconds:.2f}",
                            f"{first:.0f}",
                        )
                    )
                except Exception as error:  # noqa: BLE001 - report, go on
                    message = str(error).splitlines()[0][:60]
                    rows.append(
                        (model_name, preset, "on" if jit else "off", "", "failed", message, "")
                    )
                print(" | ".join(rows[-1]), flush=True)

    print(
        f"\nTraining throughput, {os.cpu_count()} CPUs, TF {tf.__version__}, keras "
        f"{keras.__version__}; talker batch {args.batch_size} x T = {window} frames of "
        f"{config.face.crop_size}x{config.face.crop_size}, AU classifier batch "
        f"{args.batch_size * window} frames; {args.steps} timed steps after {args.warmup}; "
        f"GPU: {bool(tf.config.list_physical_devices('GPU'))}\n"
    )
    print("| model | preset | jit_compile | parameters | frames/s | s/step | first steps (s) |")
    print("|---|---|---|---:|---:|---:|---:|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
