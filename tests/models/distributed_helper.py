"""Runs `AUTalker` training steps under tf.distribute, in a fresh process.

Logical devices and TF_CONFIG must be set before TensorFlow initialises its
devices, so `tests/models/test_distributed.py` runs this script in a
subprocess:

    python distributed_helper.py mirrored OUT.json
        Splits the CPU into 2 logical devices and trains the same model from
        the same weights on the same global batches twice: on one device and
        under MirroredStrategy over the 2 devices. Writes both runs' losses
        and how far their weights ended apart (and the one-device run's
        weights, the reference for the multi-worker run).
    python distributed_helper.py worker OUT.json   (TF_CONFIG set)
        One worker of a MultiWorkerMirroredStrategy run.

Every run starts from the weights `initial_weights` makes (seeded), so all
runs can be compared. Dropout is 0 and the data are fixed.
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

GLOBAL_BATCH = 4
FRAMES = 8
IMAGE = 32
STEPS = 2
LEARNING_RATE = 0.05


def tiny_config():
    from keras_autalk.config import model_config

    return model_config(
        "small",
        image_size=IMAGE,
        audio_channels=16,
        au_channels=8,
        identity_channels=16,
        fusion_channels=16,
        fusion_dilations=(1, 2),
        attention_heads=2,
        dropout=0.0,
        encoder_filters=(8, 16),
        decoder_filters=(16, 8),
        discriminator_filters=(8, 16),
        au_classifier_filters=(8, 16),
    )


def synthetic_batches(steps=STEPS, batch=GLOBAL_BATCH, seed=7):
    """Fixed `(inputs, targets)` arrays for `steps` global batches, concatenated.

    Some frames have no face and some no AU label, unevenly over the batch,
    so the masked averages differ between the halves each replica sees.
    """
    rng = np.random.default_rng(seed)
    count = steps * batch
    landmarks = np.zeros((count, FRAMES, 68, 2), np.float32)
    landmarks[..., 48:68, 0] = rng.uniform(10, 22, (count, FRAMES, 20))
    landmarks[..., 48:68, 1] = rng.uniform(20, 28, (count, FRAMES, 20))
    face_mask = np.ones((count, FRAMES), np.float32)
    face_mask[0, :3] = 0.0
    face_mask[5, 6:] = 0.0
    au_mask = np.ones((count, FRAMES), np.float32)
    au_mask[1, :] = 0.0
    au_mask[6, :5] = 0.0
    inputs = {
        "identity_image": rng.uniform(size=(count, IMAGE, IMAGE, 3)).astype(np.float32),
        "audio_features": rng.normal(size=(count, FRAMES, 20, 80)).astype(np.float32),
    }
    targets = {
        "frames": rng.uniform(size=(count, FRAMES, IMAGE, IMAGE, 3)).astype(np.float32),
        "au_intensity": rng.uniform(0, 5, (count, FRAMES, 5)).astype(np.float32),
        "au_mask": au_mask,
        "face_mask": face_mask,
        "landmarks": landmarks,
    }
    return inputs, targets


def make_model(weights=None):
    """A compiled tiny AUTalker (with an AU classifier), built, with `weights` if given."""
    import keras

    from keras_autalk.models import AUClassifier
    from keras_autalk.models.talker import AUTalker

    config = tiny_config()
    keras.utils.set_random_seed(1)
    classifier = AUClassifier(config.action_units, config.au_classifier_filters)
    model = AUTalker(config, au_classifier=classifier)
    model(
        {
            "identity_image": np.zeros((1, IMAGE, IMAGE, 3), np.float32),
            "audio_features": np.zeros((1, FRAMES, 20, 80), np.float32),
        }
    )
    if weights is not None:
        model.set_weights(weights)
    model.compile(
        keras.optimizers.SGD(LEARNING_RATE, momentum=0.5),
        keras.optimizers.SGD(LEARNING_RATE, momentum=0.5),
    )
    return model


def dataset(tf):
    inputs, targets = synthetic_batches()
    data = tf.data.Dataset.from_tensor_slices((inputs, targets)).batch(GLOBAL_BATCH)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return data.with_options(options)


def run_mirrored(out):
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from tests.harness import run_distributed_step

    single = make_model()
    initial = single.get_weights()
    _, single_logs = run_distributed_step(tf.distribute.get_strategy(), lambda: single, dataset(tf))
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    mirrored, mirrored_logs = run_distributed_step(
        strategy, lambda: make_model(initial), dataset(tf)
    )
    after_single = single.get_weights()
    after_mirrored = mirrored.get_weights()
    moved = max(float(np.max(np.abs(a - b))) for a, b in zip(after_single, initial))
    apart = max(float(np.max(np.abs(a - b))) for a, b in zip(after_single, after_mirrored))
    json.dump(
        {
            "replicas": strategy.num_replicas_in_sync,
            "single": single_logs,
            "mirrored": mirrored_logs,
            "g_slots": len(mirrored.g_optimizer.variables),
            "generator_variables": len(mirrored.generator_variables),
            "single_weights": weights_summary(single),
            "largest_update": moved,
            "largest_difference": apart,
            "g_iterations": int(mirrored.g_optimizer.iterations.numpy()),
            "d_iterations": int(mirrored.d_optimizer.iterations.numpy()),
        },
        open(out, "w"),
    )


def weights_summary(model):
    return [float(np.sum(weight, dtype=np.float64)) for weight in model.get_weights()]


def run_worker(out):
    import tensorflow as tf

    from tests.harness import run_distributed_step

    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    model, logs = run_distributed_step(strategy, make_model, dataset(tf))
    json.dump(
        {
            "replicas": strategy.num_replicas_in_sync,
            "logs": logs,
            "weights": weights_summary(model),
            "g_iterations": int(model.g_optimizer.iterations.numpy()),
        },
        open(out, "w"),
    )


if __name__ == "__main__":
    mode, out = sys.argv[1], sys.argv[2]
    {"mirrored": run_mirrored, "worker": run_worker}[mode](out)
