"""Training strategies: `tf.distribute`, mixed precision and XLA, resumable datasets.

- `make_strategy("default" | "mirrored" | "multi-worker")` builds the
  `tf.distribute` strategy (`logical_cpus` splits the CPU into devices, to
  exercise `MirroredStrategy` without GPUs); `is_chief` tells whether this
  process writes a run's shared outputs;
- `distributed_dataset` feeds `keras_autalk.datasets.pipeline.make_dataset`
  through `strategy.distribute_datasets_from_function`, repeated and
  skipped to a given step, so a resumed run reads the very batches an
  uninterrupted one would have read.

Mixed precision and XLA (`precision_and_xla`): both are worth it on GPUs
(fp16 matmuls and convolutions, fused kernels), so `"auto"` turns them on
only when a GPU is visible. On CPU both hurt: float16 is emulated, and
`jit_compile=True` made training 2-4x slower on 2 cores (talker `small`:
66 -> 16 frames/s; see `bench/training.py`).
"""

import atexit
import json
import os
import shutil
import tempfile

from keras_autalk.errors import AutalkError
from keras_autalk.native import import_tensorflow

tf = import_tensorflow()
import keras  # noqa: E402

STRATEGIES = ("default", "mirrored", "multi-worker")


# --------------------------------------------------------------------------
# Strategies


def configure_logical_cpus(count):
    """Split the host CPU into `count` logical devices (before TF starts).

    Lets `MirroredStrategy` run `count` replicas on one CPU, the way the
    tests exercise multi-device training without GPUs.

    Args:
        count: logical CPU devices (>= 1).

    Raises:
        AutalkError: TensorFlow's devices were already initialised.

    Example:
    ```python
    configure_logical_cpus(2)
    strategy = make_strategy("mirrored")  # 2 replicas
    ```
    """
    if count is None or count <= 1:
        return
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * int(count)
        )
    except RuntimeError as error:
        raise AutalkError(
            f"The CPU can only be split into logical devices before TensorFlow starts ({error})."
        ) from None


def make_strategy(name="default", logical_cpus=None):
    """The `tf.distribute` strategy called `name`.

    Args:
        name: "default" (one device, no distribution), "mirrored"
            (synchronous data parallelism over the local GPUs, or the
            logical CPUs) or "multi-worker" (`MultiWorkerMirroredStrategy`
            over the machines named by the `TF_CONFIG` environment
            variable; without it, one worker).
        logical_cpus: split the CPU into this many logical devices first
            (see `configure_logical_cpus`).

    Returns:
        A `tf.distribute.Strategy`.

    Raises:
        AutalkError: unknown name, or a malformed `TF_CONFIG`.

    Example:
    ```python
    strategy = make_strategy("mirrored")
    with strategy.scope():
        model = build_model()
    ```
    """
    if name not in STRATEGIES:
        raise AutalkError(f"Unknown strategy '{name}'; choose one of {', '.join(STRATEGIES)}.")
    if name == "multi-worker":
        try:
            json.loads(os.environ.get("TF_CONFIG", "{}"))
        except ValueError:
            raise AutalkError("TF_CONFIG is not valid JSON.") from None
        # Must come before any other TF op; keep this the first thing a
        # multi-worker program does after splitting devices.
        configure_logical_cpus(logical_cpus)
        return tf.distribute.MultiWorkerMirroredStrategy()
    configure_logical_cpus(logical_cpus)
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
        return tf.distribute.MirroredStrategy(devices)
    return tf.distribute.get_strategy()


def is_chief(strategy=None):
    """Whether this process writes the shared outputs (logs, checkpoints).

    Only worker 0 (or the "chief" task) of a multi-worker run is the chief;
    every other strategy has one process, which is.

    Example:
    ```python
    if is_chief(strategy):
        model.save("out/talker.keras")
    ```
    """
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not getattr(resolver, "cluster_spec", None):
        return True
    if not resolver.cluster_spec().as_dict():
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    return task_type in (None, "chief") or (
        task_type == "worker" and task_id == 0 and "chief" not in resolver.cluster_spec().as_dict()
    )


def worker_scratch(strategy, what):
    """A private folder for a non-chief worker's copy of `what` (removed at exit)."""
    resolver = strategy.cluster_resolver
    folder = tempfile.mkdtemp(prefix=f"autalk-{resolver.task_type}{resolver.task_id}-{what}-")
    atexit.register(shutil.rmtree, folder, True)
    return folder


def precision_and_xla(mixed_precision="auto", jit_compile="auto"):
    """Resolve "auto"/"on"/"off" for mixed precision and XLA; apply the policy.

    "auto" turns each on only when a GPU is visible (on CPU, float16 is
    emulated and slower).

    Returns:
        `(mixed_precision: bool, jit_compile: bool)`.

    Example:
    ```python
    mixed, jit = precision_and_xla("auto", "off")  # (False, False) on a CPU
    model.compile(..., jit_compile=jit)
    ```
    """
    has_gpu = bool(tf.config.list_physical_devices("GPU"))

    def resolve(value, what):
        if value in (True, False):
            return value
        if value not in ("auto", "on", "off"):
            raise AutalkError(f"{what} must be auto, on or off, got '{value}'.")
        return has_gpu if value == "auto" else value == "on"

    mixed = resolve(mixed_precision, "--mixed-precision")
    jit = resolve(jit_compile, "--jit-compile")
    keras.mixed_precision.set_global_policy("mixed_float16" if mixed else "float32")
    return mixed, jit


# --------------------------------------------------------------------------
# Datasets


def distributed_dataset(strategy, make, skip_batches=0, repeat=True):
    """A dataset for `model.fit` under `strategy`, resumable at a step.

    Args:
        strategy: the `tf.distribute.Strategy`.
        make: `input_context -> tf.data.Dataset` of global-batch-sized
            batches (`input_context` is None without distribution), e.g.
            a `functools.partial` of `pipeline.make_dataset`.
        skip_batches: batches already consumed (the global step a resumed
            run starts at); every input pipeline skips its share.
        repeat: repeat the data forever (training); `steps_per_epoch`
            bounds the epochs.

    Returns:
        A `tf.data.Dataset`, or a distributed dataset under a strategy with
        more than one replica or worker.

    Example:
    ```python
    train = distributed_dataset(strategy, lambda context: pipeline.make_dataset(
        files, batch_size=8, seed=0, input_context=context))
    ```
    """

    def build(input_context):
        dataset = make(input_context)
        if repeat:
            dataset = dataset.repeat()
        if skip_batches:
            dataset = dataset.skip(int(skip_batches))
        return dataset

    if strategy.num_replicas_in_sync == 1 and not isinstance(
        strategy, tf.distribute.MultiWorkerMirroredStrategy
    ):
        return build(None)
    return strategy.distribute_datasets_from_function(build)
