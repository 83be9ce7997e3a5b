"""Training: strategies, datasets, callbacks, and the two training tasks.

The recipes in `recipes/` (and `autalk train RECIPE`) are thin scripts over
this module:

- `make_strategy("default" | "mirrored" | "multi-worker")` builds the
  `tf.distribute` strategy (`logical_cpus` splits the CPU into devices, to
  exercise `MirroredStrategy` without GPUs);
- `distributed_dataset` feeds `keras_autalk.datasets.pipeline.make_dataset`
  through `strategy.distribute_datasets_from_function`, repeated and
  skipped to a given step, so a resumed run reads the very batches an
  uninterrupted one would have read;
- `make_callbacks` gives `TerminateOnNaN`, `ModelCheckpoint`, a
  `ResumableBackupAndRestore`, `TensorBoard` (plus `SampleFramesCallback`'s
  real | generated strips) and `CSVLogger`;
- `fit` runs `model.fit` so that a run killed mid-epoch resumes at the
  step of its last backup (epoch, step, weights, optimiser state and data
  position continue; `keras.callbacks.BackupAndRestore` alone would replay
  the interrupted epoch from its first step);
- `train_au_classifier` and `train_talker` are the two stages: the AU
  classifier is trained first, then frozen inside the talker GAN.

Every run writes into one output folder:

```
out/training_log.csv         one row per epoch: losses and metrics
out/logs/                    TensorBoard: scalars, sample frame strips
out/checkpoints/             epoch-NNN.weights.h5 (ModelCheckpoint)
out/backup/                  resumable state while a run is unfinished
out/<model>.keras            the trained model
```

Mixed precision and XLA: both are worth it on GPUs (fp16 matmuls and
convolutions, fused kernels), so `"auto"` turns them on only when a GPU is
visible. On CPU both hurt: float16 is emulated, and `jit_compile=True` made
training 2-4x slower on 2 cores (talker `small`: 66 -> 16 frames/s; see
`bench/training.py`).
"""

import argparse
import dataclasses
import json
import atexit
import os
import pathlib
import shutil
import sys
import tempfile
import time

import numpy as np

from keras_autalk.errors import AutalkError
from keras_autalk.native import import_tensorflow

tf = import_tensorflow()
import keras  # noqa: E402

STRATEGIES = ("default", "mirrored", "multi-worker")
TRAINING_LOG = "training_log.csv"
AU_CLASSIFIER_FILE = "au_classifier.keras"
TALKER_FILE = "talker.keras"
# Keras 3's plain `fit` cannot build or reduce a standard model's metrics
# across workers (keras-team/keras#20329, tensorflow/tensorflow#72388); the
# small classifier needs no cluster anyway.
AU_CLASSIFIER_MULTI_WORKER = (
    "The AU classifier trains with the 'default' or 'mirrored' strategy, not 'multi-worker'; "
    "train it first (autalk train au_classifier_demo) and give it to the talker recipe with "
    "--au-classifier.")
# Frames per window when the AU classifier reads single frames: short
# windows give more different utterances per batch than the talker's T.
AU_CLASSIFIER_WINDOW = 4


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
            cpu, [tf.config.LogicalDeviceConfiguration()] * int(count))
    except RuntimeError as error:
        raise AutalkError(
            "The CPU can only be split into logical devices before TensorFlow "
            f"starts ({error})."
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
        raise AutalkError(
            f"Unknown strategy '{name}'; choose one of {', '.join(STRATEGIES)}.")
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
        task_type == "worker" and task_id == 0
        and "chief" not in resolver.cluster_spec().as_dict())


def _worker_scratch(strategy, what):
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
            strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return build(None)
    return strategy.distribute_datasets_from_function(build)


def au_classifier_batches(dataset):
    """Talker batches -> `(face_crops, au_intensity, weight)` per frame.

    Flattens `(B, T)` into `N = B * T` frames; the weight is 1 where the AU
    label is valid and a face was found.

    Example:
    ```python
    frames = au_classifier_batches(make_dataset(files, batch_size=4))
    classifier.fit(frames, steps_per_epoch=100)
    ```
    """

    def flatten(inputs, targets):
        frames = targets["frames"]
        shape = tf.shape(frames)
        crops = tf.reshape(frames, tf.concat([[-1], shape[2:]], axis=0))
        units = tf.shape(targets["au_intensity"])[-1]
        labels = tf.reshape(targets["au_intensity"], [-1, units])
        weight = tf.reshape(targets["au_mask"] * targets["face_mask"], [-1])
        return crops, labels, weight

    return dataset.map(flatten, num_parallel_calls=tf.data.AUTOTUNE)


def jitter_face_crops(crops, seed, max_scale=0.06, max_shift=4.0):
    """Random horizontal flip, zoom and shift of each crop (stateless, seeded).

    Aligned crops put every mouth at the same place; with a handful of
    training faces a classifier can learn each face's mouth width and
    position instead of its motion. Mirroring, zooming by up to
    `max_scale` and shifting by up to `max_shift` pixels breaks that (the
    AUs of the mouth are bilateral, so a mirrored face keeps its labels).

    Args:
        crops: `(N, S, S, 3)` face crops.
        seed: a `(2,)` int64 seed (e.g. from `tf.data.Dataset.random`).
        max_scale: largest relative zoom in or out.
        max_shift: largest shift in pixels, each axis.

    Returns:
        The jittered crops, same shape (borders repeat the edge pixels).

    Example:
    ```python
    crops = jitter_face_crops(crops, tf.constant([1, 2], tf.int64))
    ```
    """
    count = tf.shape(crops)[0]
    size = tf.cast(tf.shape(crops)[1], tf.float32)
    draws = tf.random.stateless_uniform([count, 4], seed=tf.cast(seed, tf.int64),
                                        minval=-1.0, maxval=1.0)
    flip = tf.where(draws[:, 0] < 0, -1.0, 1.0)
    scale = 1.0 + max_scale * draws[:, 1]
    shift_x, shift_y = max_shift * draws[:, 2], max_shift * draws[:, 3]
    centre = (size - 1.0) / 2.0
    zeros = tf.zeros_like(scale)
    # Output pixel (x, y) reads input (flip*(x-c)/scale + c + dx, (y-c)/scale + c + dy).
    transforms = tf.stack([
        flip / scale, zeros, centre - flip * centre / scale + shift_x,
        zeros, 1.0 / scale, centre - centre / scale + shift_y,
        zeros, zeros], axis=1)
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=crops, transforms=transforms, output_shape=tf.shape(crops)[1:3],
        fill_value=0.0, interpolation="BILINEAR", fill_mode="NEAREST")


def window_config(config, window_frames):
    """`config` with its data window set to `window_frames` frames."""
    return dataclasses.replace(
        config, data=dataclasses.replace(config.data, window_frames=int(window_frames)))


# --------------------------------------------------------------------------
# Callbacks


class SampleFramesCallback(keras.callbacks.Callback):
    """Writes strips of real | generated frames to TensorBoard.

    At the end of every `every_epochs`-th epoch the model renders `inputs`
    (`training=False`); each example becomes one image with the real frames
    in the top row and the generated frames below (the blend mask, when
    the model returns one, in a third row), written as
    `samples/example_K` at step = epoch number (1-based).

    Args:
        inputs: a batch of model inputs (dict of arrays), e.g. from the
            test split.
        targets: the matching targets (`targets["frames"]`: `(B, T, H, W, 3)`).
        log_dir: the TensorBoard folder; images go to `log_dir/samples`.
        every_epochs: write every this many epochs.
        max_examples: examples (images) per write.
        max_frames: frames per row.

    Example:
    ```python
    inputs, targets = next(iter(test_dataset))
    callback = SampleFramesCallback(inputs, targets, "out/logs")
    model.fit(train, epochs=5, callbacks=[callback])
    ```
    """

    def __init__(self, inputs, targets, log_dir, every_epochs=1, max_examples=2,
                 max_frames=8):
        super().__init__()
        count = int(max_examples)
        self.inputs = {key: np.asarray(value)[:count] for key, value in inputs.items()}
        self.real_frames = np.asarray(targets["frames"])[:count, :max_frames]
        self.log_dir = str(log_dir)
        self.every_epochs = int(every_epochs)
        self.max_frames = int(max_frames)
        self._writer = None

    def strips(self):
        """The images as a `(K, rows * H, min(T, max_frames) * W, 3)` array in [0, 1]."""
        outputs = self.model(self.inputs, training=False)
        generated = np.asarray(keras.ops.convert_to_numpy(outputs["frames"]), np.float32)
        rows = [self.real_frames, generated[:, :self.max_frames]]
        if "blend_mask" in outputs:
            mask = keras.ops.convert_to_numpy(outputs["blend_mask"])[:, :self.max_frames]
            rows.append(np.repeat(np.asarray(mask, np.float32), 3, axis=-1))
        images = []
        for row in rows:
            batch, frames, height, width, channels = row.shape
            # (K, T, H, W, C) -> (K, H, T * W, C): frames side by side.
            images.append(row.transpose(0, 2, 1, 3, 4).reshape(
                batch, height, frames * width, channels))
        return np.clip(np.concatenate(images, axis=1), 0.0, 1.0)

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every_epochs:
            return
        if self._writer is None:
            self._writer = tf.summary.create_file_writer(os.path.join(self.log_dir, "samples"))
        strips = self.strips()
        with self._writer.as_default():
            for index, strip in enumerate(strips):
                tf.summary.image(
                    f"samples/example_{index}", strip[None], step=epoch + 1,
                    description="top: real frames; below: generated frames "
                                "(and the blend mask)")
        self._writer.flush()

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class ResumableBackupAndRestore(keras.callbacks.BackupAndRestore):
    """`BackupAndRestore` that resumes at the step, not the epoch.

    Keras' callback records the epoch and restores the weights, and a
    resumed run replays the interrupted epoch from its first step. This
    one also records the steps done in the epoch and the global step; with
    `training.fit` the resumed run finishes the interrupted epoch with only
    its remaining steps, on the batches that come next. A backup is
    written every `save_freq` steps and at each epoch end, each into a
    fresh folder that becomes current by an atomic rename of the `latest`
    pointer, so a kill during a save leaves the previous backup intact.

    On a non-chief worker of a multi-worker run, backups are written to a
    private scratch folder (every worker must run the same saves) and the
    chief's backup is what all workers restore from.

    Args:
        backup_dir: the folder of the backups (used by nothing else).
        save_freq: steps between backups (an int), or "epoch".
        write_dir: where this process writes (default: `backup_dir`).
        delete_checkpoint: remove the backup when training completes.

    Example:
    ```python
    backup = ResumableBackupAndRestore("out/backup", save_freq=100)
    fit(model, make_data, epochs=10, steps_per_epoch=500, callbacks=[backup])
    ```
    """

    POINTER = "latest"
    METADATA = "training_metadata.json"
    WEIGHTS = "state.weights.h5"

    def __init__(self, backup_dir, save_freq="epoch", write_dir=None, delete_checkpoint=True):
        super().__init__(str(backup_dir), save_freq=save_freq,
                         delete_checkpoint=delete_checkpoint)
        self.write_dir = str(write_dir or backup_dir)
        # Set by `fit` while it finishes an interrupted epoch: the steps
        # already done in that epoch (Keras counts the batches from 0).
        self.step_offset = 0
        self.steps_per_epoch = None
        self.restored = None

    # --- reading

    @classmethod
    def read_state(cls, backup_dir):
        """The last backup's metadata (epoch, steps_done, global_step), or None."""
        pointer = pathlib.Path(backup_dir) / cls.POINTER
        if not pointer.is_file():
            return None
        folder = pathlib.Path(backup_dir) / pointer.read_text().strip()
        try:
            return json.loads((folder / cls.METADATA).read_text())
        except (OSError, ValueError):
            return None

    def _state_folder(self):
        pointer = pathlib.Path(self.backup_dir) / self.POINTER
        if not pointer.is_file():
            return None
        return pathlib.Path(self.backup_dir) / pointer.read_text().strip()

    def on_train_begin(self, logs=None):
        self._load_model()

    def _load_model(self):
        folder = self._state_folder()
        if folder is None:
            return
        if not self.model.built:
            raise AutalkError("The model must be built before training resumes from a backup.")
        # Optimiser slots must exist before their saved values can load.
        if hasattr(self.model, "build_optimizers"):
            self.model.build_optimizers()  # a GAN: each optimiser its own networks
        elif self.model.optimizer is not None and not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)
        self.model.load_weights(str(folder / self.WEIGHTS))
        state = json.loads((folder / self.METADATA).read_text())
        self.restored = state
        self._current_epoch = state["epoch"]
        self._global_step = state["global_step"]
        self.model._initial_epoch = state["epoch"]

    # --- writing

    def on_epoch_begin(self, epoch, logs=None):
        self._current_epoch = epoch
        # The batch index (from the epoch's first step) of the last step done.
        self._last_batch_seen = self.step_offset - 1

    def on_train_batch_end(self, batch, logs=None):
        batch += self.step_offset
        self._global_step = getattr(self, "_global_step", 0) + 1
        if self.save_freq == "epoch":
            self._last_batch_seen = batch
            return
        done = batch - self._last_batch_seen
        self._last_batch_seen = batch
        self._batches_seen_since_last_saving += done
        if self._batches_seen_since_last_saving >= self.save_freq:
            self._batches_seen_since_last_saving = 0
            self._save_model(epoch=self._current_epoch, steps_done=batch + 1)

    def on_epoch_end(self, epoch, logs=None):
        self._current_epoch = epoch + 1
        self._batches_seen_since_last_saving = 0
        self._save_model(epoch=epoch + 1, steps_done=0)

    def _save_model(self, epoch=None, steps_done=0):
        write_dir = pathlib.Path(self.write_dir)
        write_dir.mkdir(parents=True, exist_ok=True)
        step = getattr(self, "_global_step", 0)
        folder = write_dir / f"state-{step:09d}-{epoch:05d}"
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir()
        self.model.save_weights(str(folder / self.WEIGHTS))
        (folder / self.METADATA).write_text(json.dumps({
            "epoch": int(epoch), "steps_done": int(steps_done), "global_step": int(step),
            "steps_per_epoch": self.steps_per_epoch, "time": time.time()}))
        pointer = write_dir / self.POINTER
        previous = pointer.read_text().strip() if pointer.is_file() else None
        partial = write_dir / f".{self.POINTER}.partial"
        partial.write_text(folder.name)
        os.replace(partial, pointer)
        if previous and previous != folder.name:
            shutil.rmtree(write_dir / previous, ignore_errors=True)

    def on_train_end(self, logs=None):
        if self.write_dir != self.backup_dir:
            shutil.rmtree(self.write_dir, ignore_errors=True)
        # `fit` deletes the backup itself once every epoch has run.


def make_callbacks(out_dir, strategy=None, backup_every=200, sample_batch=None,
                   sample_every_epochs=1, checkpoint=True):
    """The callbacks of a training run writing into `out_dir`.

    Args:
        out_dir: the run's output folder (see the module docstring).
        strategy: the run's strategy (non-chief workers write no logs and
            keep their checkpoints and backups in scratch folders).
        backup_every: steps between resumable backups.
        sample_batch: `(inputs, targets)` for `SampleFramesCallback`, or
            None (models that render no frames).
        sample_every_epochs: epochs between sample strips.
        checkpoint: also keep `checkpoints/epoch-NNN.weights.h5`.

    Returns:
        `(callbacks, backup)`: the list for `fit`, and the
        `ResumableBackupAndRestore` in it.

    Example:
    ```python
    callbacks, backup = make_callbacks("out", strategy, backup_every=100)
    fit(model, make_data, epochs=5, steps_per_epoch=200, callbacks=callbacks)
    ```
    """
    out_dir = pathlib.Path(out_dir)
    chief = is_chief(strategy)
    backup_dir = out_dir / "backup"
    write_dir = backup_dir if chief else _worker_scratch(strategy, "backup")
    backup = ResumableBackupAndRestore(backup_dir, save_freq=int(backup_every),
                                       write_dir=write_dir)
    callbacks = [keras.callbacks.TerminateOnNaN()]
    if checkpoint:
        checkpoint_dir = (out_dir / "checkpoints") if chief else pathlib.Path(
            _worker_scratch(strategy, "checkpoints"))
        checkpoint_dir.mkdir(parents=True, exist_ok=True)
        callbacks.append(keras.callbacks.ModelCheckpoint(
            str(checkpoint_dir / "epoch-{epoch:03d}.weights.h5"), save_weights_only=True))
    if chief:
        log_dir = out_dir / "logs"
        callbacks.append(keras.callbacks.TensorBoard(
            str(log_dir), write_graph=False, update_freq="epoch", profile_batch=0))
        if sample_batch is not None:
            callbacks.append(SampleFramesCallback(
                sample_batch[0], sample_batch[1], log_dir, every_epochs=sample_every_epochs))
        callbacks.append(keras.callbacks.CSVLogger(str(out_dir / TRAINING_LOG), append=True))
    # The backup comes last: an epoch's log row and checkpoint are written
    # before the backup that marks the epoch as done.
    callbacks.append(backup)
    return callbacks, backup


# --------------------------------------------------------------------------
# fit


def fit(model, make_train_data, epochs, steps_per_epoch, callbacks, validation_data=None,
        validation_steps=None, verbose="auto", log=print):
    """`model.fit` that resumes a killed run at the step it was backed up.

    Reads the backup of the `ResumableBackupAndRestore` in `callbacks`
    (if any): a run interrupted in epoch `e` after `d` of its steps first
    finishes epoch `e` with the remaining `steps_per_epoch - d` steps, then
    runs the epochs after it; the training data is rebuilt skipping the
    batches already consumed. Without a backup it is one `model.fit`.

    Args:
        model: a compiled, built Keras model.
        make_train_data: `skip_batches -> dataset` (see
            `distributed_dataset`); called once per `model.fit`.
        epochs: total epochs of the run.
        steps_per_epoch: steps in every epoch.
        callbacks: the list from `make_callbacks`.
        validation_data, validation_steps: passed to `model.fit`.
        verbose: `model.fit`'s verbosity.
        log: where to report a resumption (a `print`-like function).

    Returns:
        The history: metric name -> list of per-epoch values (epochs run by
        this call only).

    Example:
    ```python
    callbacks, _ = make_callbacks("out", strategy, backup_every=50)
    fit(model, lambda skip: distributed_dataset(strategy, make, skip), epochs=10,
        steps_per_epoch=200, callbacks=callbacks)   # run again after a kill: it resumes
    ```
    """
    backup = next((c for c in callbacks if isinstance(c, ResumableBackupAndRestore)), None)
    state = ResumableBackupAndRestore.read_state(backup.backup_dir) if backup else None
    epoch, steps_done, global_step = 0, 0, 0
    if state:
        epoch, steps_done, global_step = (
            state["epoch"], state["steps_done"], state["global_step"])
        if steps_done >= steps_per_epoch:
            epoch, steps_done = epoch + 1, 0
        log(f"Resuming from the backup in {backup.backup_dir}: epoch {epoch + 1}/{epochs}, "
            f"step {steps_done}/{steps_per_epoch} (global step {global_step}).")
    if backup:
        backup.steps_per_epoch = int(steps_per_epoch)
        backup._global_step = global_step
    history = {}

    def run(first_epoch, last_epoch, steps, offset):
        model._initial_epoch = None
        if backup:
            backup.step_offset = offset
        result = model.fit(
            make_train_data(global_step), initial_epoch=first_epoch, epochs=last_epoch,
            steps_per_epoch=steps, callbacks=callbacks, validation_data=validation_data,
            validation_steps=validation_steps, verbose=verbose, shuffle=False)
        for key, values in result.history.items():
            history.setdefault(key, []).extend(values)

    if state and epoch >= epochs:
        # Killed after its last backup but before cleaning up: the backup
        # holds the finished weights.
        backup.set_model(model)
        backup._load_model()
    if steps_done and epoch < epochs:
        run(epoch, epoch + 1, steps_per_epoch - steps_done, steps_done)
        global_step += steps_per_epoch - steps_done
        epoch += 1
    if epoch < epochs:
        run(epoch, epochs, steps_per_epoch, 0)
    if backup:
        backup.step_offset = 0
        if is_chief(model.distribute_strategy):
            shutil.rmtree(backup.backup_dir, ignore_errors=True)
    return history


# --------------------------------------------------------------------------
# The AU classifier


def pearson(prediction, target):
    """Pearson correlation per column of two `(N, A)` arrays (nan if constant).

    Example:
    ```python
    pearson(predicted_aus, labelled_aus)  # array of A correlations
    ```
    """
    prediction = np.asarray(prediction, np.float64)
    target = np.asarray(target, np.float64)
    centred_p = prediction - prediction.mean(axis=0)
    centred_t = target - target.mean(axis=0)
    denominator = np.sqrt((centred_p ** 2).sum(axis=0) * (centred_t ** 2).sum(axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, (centred_p * centred_t).sum(axis=0) / denominator,
                        np.nan)


def _au_readings(model, files, config, batch_size, max_batches):
    """The classifier's readings and the labels of every labelled frame of `files`."""
    from keras_autalk.datasets import pipeline

    dataset = au_classifier_batches(pipeline.make_dataset(
        files, config, batch_size=batch_size, training=False))
    predictions, labels = [], []
    for index, (crops, target, weight) in enumerate(dataset):
        if max_batches is not None and index >= max_batches:
            break
        keep = np.asarray(weight) > 0.5
        predicted = keras.ops.convert_to_numpy(model(crops, training=False))
        predictions.append(np.asarray(predicted, np.float32)[keep])
        labels.append(np.asarray(target)[keep])
    units = len(config.action_units)
    if not predictions:
        return np.zeros((0, units), np.float32), np.zeros((0, units), np.float32)
    return np.concatenate(predictions), np.concatenate(labels)


def evaluate_au_classifier(model, files, config=None, batch_size=8, max_batches=None):
    """Per-AU Pearson correlation and mean absolute error on prepared files.

    Reads every non-overlapping window of `files` (evaluation order) and
    compares the classifier's reading of each frame with its AU label,
    over frames with a valid label and a face; also per speaker (shards
    are named `{speaker}-NNNNN.tfrecord`), which tells faces seen in
    training from a held-out one.

    Args:
        model: an `AUClassifier` (face crop -> `(N, A)` intensities).
        files: prepared `.tfrecord` files (e.g. `list_shards(dir, "test")`).
        config: `AutalkConfig` (default: its defaults).
        batch_size: windows per batch.
        max_batches: stop each speaker after this many batches (None: all).

    Returns:
        A dict: "frames", per AU ("AU25", ...) {"pearson", "mae",
        "mean_label", "mean_prediction"}, "mean_pearson", and "by_speaker":
        speaker -> {"frames", "AU25": Pearson r, ...}.

    Raises:
        AutalkError: no labelled frame in `files`.

    Example:
    ```python
    report = evaluate_au_classifier(classifier, list_shards("prepared", "test"))
    report["AU26"]["pearson"]
    ```
    """
    from keras_autalk.config import AutalkConfig

    config = config or AutalkConfig()
    groups = {}
    for path in sorted(str(f) for f in files):
        groups.setdefault(pathlib.Path(path).name.rsplit("-", 1)[0], []).append(path)
    readings = {speaker: _au_readings(model, group, config, batch_size, max_batches)
                for speaker, group in groups.items()}
    predictions = np.concatenate([pair[0] for pair in readings.values()])
    labels = np.concatenate([pair[1] for pair in readings.values()])
    if not len(labels):
        raise AutalkError("The evaluation files hold no labelled frames.")
    correlations = pearson(predictions, labels)
    report = {"frames": int(len(labels))}
    for column, unit in enumerate(config.action_units):
        report[f"AU{unit}"] = {
            "pearson": float(correlations[column]),
            "mae": float(np.mean(np.abs(predictions[:, column] - labels[:, column]))),
            "mean_label": float(labels[:, column].mean()),
            "mean_prediction": float(predictions[:, column].mean()),
        }
    report["mean_pearson"] = float(np.nanmean(correlations))
    report["by_speaker"] = {}
    for speaker, (predicted, labelled) in readings.items():
        if len(labelled):
            values = pearson(predicted, labelled)
            report["by_speaker"][speaker] = dict(
                {"frames": int(len(labelled))},
                **{f"AU{unit}": float(values[column])
                   for column, unit in enumerate(config.action_units)})
    return report


def format_au_report(report):
    """A Markdown table of `evaluate_au_classifier`'s report."""
    lines = ["| AU | Pearson r | MAE | mean label | mean prediction |",
             "|---|---:|---:|---:|---:|"]
    for key, value in report.items():
        if key.startswith("AU"):
            lines.append(f"| {key} | {value['pearson']:.3f} | {value['mae']:.3f} | "
                         f"{value['mean_label']:.2f} | {value['mean_prediction']:.2f} |")
    lines.append(f"| mean | {report['mean_pearson']:.3f} | | | |")
    speakers = report.get("by_speaker") or {}
    if len(speakers) > 1:
        units = [key for key in report if key.startswith("AU")]
        lines += ["", "Pearson r per speaker:", "",
                  "| speaker | frames | " + " | ".join(units) + " |",
                  "|---|---:|" + "---:|" * len(units)]
        for speaker, values in speakers.items():
            lines.append(f"| {speaker} | {values['frames']} | "
                         + " | ".join(f"{values[unit]:.3f}" for unit in units) + " |")
    return "\n".join(lines)


def _seed_everything(seed):
    keras.utils.set_random_seed(int(seed))


def _learning_rate(base, total_steps):
    """Linear warm-up over the first 5 % of the steps, then cosine decay to 5 %."""
    total_steps = max(2, int(total_steps))
    warmup = max(1, total_steps // 20)
    return keras.optimizers.schedules.CosineDecay(
        0.0, decay_steps=total_steps - warmup, alpha=0.05, warmup_target=float(base),
        warmup_steps=warmup)


def mean_labels(dataset, batches=16):
    """Mean AU intensity per unit over the first `batches` of `(crops, labels, weight)`."""
    total, count = 0.0, 0.0
    for _, labels, weight in dataset.take(batches):
        total = total + np.sum(np.asarray(labels) * np.asarray(weight)[:, None], axis=0)
        count += float(np.sum(weight))
    return total / max(count, 1.0)


def init_output_bias(model, mean_intensity, maximum=5.0):
    """Start the classifier's output at the mean label (in its sigmoid's range).

    A 5*sigmoid output that starts at 2.5 while most labels are near 0
    drives the first updates to push it far into the sigmoid's flat tail,
    where it stays (outputs stuck at 0). Setting the output layer's bias to
    the logit of the mean label starts training where it should end up on
    average.
    """
    fraction = np.clip(np.asarray(mean_intensity, np.float64) / maximum, 0.02, 0.98)
    bias = model.head.bias
    bias.assign(np.log(fraction / (1.0 - fraction)).astype(bias.dtype))


def train_au_classifier(prepared_dir, out_dir, epochs=10, steps_per_epoch=200, preset="small",
                        strategy=None, batch_size=64, learning_rate=1e-3, dropout=0.1,
                        seed=0, backup_every=100, validation_steps=20, augment=True,
                        jit_compile="auto", mixed_precision="auto", verbose="auto",
                        config=None, log=print):
    """Train the AU classifier on a prepared corpus; evaluate it on the test split.

    Frames of the train split (windows of `AU_CLASSIFIER_WINDOW` frames,
    flattened) are regressed onto their AU intensities (MSE, masked where
    a label or face is missing). The run is resumable (see `fit`); at the
    end `out_dir/au_classifier.keras` and `out_dir/au_classifier_eval.json`
    (per-AU Pearson correlation and MAE on the test split) are written.

    Args:
        prepared_dir: the folder `autalk prepare` wrote (train and test).
        out_dir: the run's output folder.
        epochs, steps_per_epoch: length of the run.
        preset: `ModelConfig` preset ("small" or "paper").
        strategy: a `tf.distribute.Strategy` (default: the default one).
        batch_size: global batch in frames.
        learning_rate: Adam's peak learning rate (cosine decay).
        dropout: dropout before the classifier's output layer.
        seed: weights initialisation and data order.
        backup_every: steps between resumable backups.
        validation_steps: test-split batches evaluated each epoch (0: none).
        augment: colour jitter, mirroring, zoom and shift of the training
            frames (`jitter_face_crops`).
        jit_compile, mixed_precision: "auto", "on" or "off".
        verbose: `model.fit` verbosity.
        config: `AutalkConfig` (default: its defaults).
        log: a `print`-like function for progress messages.

    Returns:
        `(model, report)`: the trained `AUClassifier` and the evaluation.

    Example:
    ```python
    model, report = train_au_classifier("prepared/demo", "runs/au", epochs=1, steps_per_epoch=10)
    ```
    """
    from keras_autalk.config import AutalkConfig, model_config
    from keras_autalk.datasets import pipeline
    from keras_autalk.models.au_classifier import AUClassifier

    config = config or AutalkConfig()
    strategy = strategy or tf.distribute.get_strategy()
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        raise AutalkError(AU_CLASSIFIER_MULTI_WORKER)
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    train_files = pipeline.list_shards(prepared_dir, "train")
    test_files = pipeline.list_shards(prepared_dir, "test")
    model_settings = model_config(preset, action_units=tuple(config.action_units),
                                  image_size=config.face.crop_size)
    _, jit = precision_and_xla(mixed_precision, jit_compile)
    windows = max(1, int(batch_size) // AU_CLASSIFIER_WINDOW)
    if windows % strategy.num_replicas_in_sync:
        raise AutalkError(
            f"The batch of {batch_size} frames ({windows} windows of {AU_CLASSIFIER_WINDOW}) "
            f"does not split over {strategy.num_replicas_in_sync} replicas.")
    short = window_config(config, AU_CLASSIFIER_WINDOW)

    def make_batches(context):
        batches = au_classifier_batches(pipeline.make_dataset(
            train_files, short, batch_size=windows, seed=seed, augment=augment,
            input_context=context))
        if not augment:
            return batches
        pipeline_id = context.input_pipeline_id if context else 0
        seeds = tf.data.Dataset.random(seed=seed + 7919 * (pipeline_id + 1),
                                       rerandomize_each_iteration=True).batch(2)
        return tf.data.Dataset.zip((batches, seeds)).map(
            lambda batch, pair: (jitter_face_crops(batch[0], pair),) + tuple(batch[1:]),
            num_parallel_calls=tf.data.AUTOTUNE)

    def make_train_data(skip):
        return distributed_dataset(strategy, make_batches, skip)

    validation = None
    if validation_steps:
        validation = au_classifier_batches(pipeline.make_dataset(
            test_files, short, batch_size=windows, training=False)).repeat()

    _seed_everything(seed)
    label_means = mean_labels(au_classifier_batches(pipeline.make_dataset(
        train_files, short, batch_size=windows, seed=seed)))
    with strategy.scope():
        model = AUClassifier(model_settings.action_units, model_settings.au_classifier_filters,
                             dropout=dropout, name="au_classifier")
        model.build((None, config.face.crop_size, config.face.crop_size, 3))
        init_output_bias(model, label_means)
        model.compile(
            optimizer=keras.optimizers.Adam(
                _learning_rate(learning_rate, epochs * steps_per_epoch), clipnorm=1.0),
            loss="mse", weighted_metrics=["mae"], jit_compile=jit)
    callbacks, _ = make_callbacks(out_dir, strategy, backup_every=backup_every)
    log(f"AU classifier ({preset}, filters {model_settings.au_classifier_filters}, "
        f"{model.count_params():,} parameters): {epochs} epochs x {steps_per_epoch} steps of "
        f"{windows * AU_CLASSIFIER_WINDOW} frames, {strategy.num_replicas_in_sync} replica(s).")
    start = time.perf_counter()
    fit(model, make_train_data, epochs, steps_per_epoch, callbacks,
        validation_data=validation, validation_steps=validation_steps or None,
        verbose=verbose, log=log)
    elapsed = time.perf_counter() - start
    report = evaluate_au_classifier(model, test_files, config)
    report["train_seconds"] = round(elapsed, 1)
    if is_chief(strategy):
        model.save(out_dir / AU_CLASSIFIER_FILE)
        (out_dir / "au_classifier_eval.json").write_text(json.dumps(report, indent=2) + "\n")
    log(f"AU classifier on the test split ({report['frames']} frames):\n"
        + format_au_report(report))
    return model, report


# --------------------------------------------------------------------------
# The talker


def load_model_file(path, expected_class, what, article="a", file_what=None):
    """A `.keras` model of `expected_class`, or one sentence saying what is wrong.

    Args:
        path: the `.keras` file.
        expected_class: the class the model must be (e.g. `AUClassifier`).
        what: what it is called in messages ("AU classifier").
        article: "a" or "an", before `what`.
        file_what: what the file is called when it is missing (default `what`).

    Raises:
        InputFileError: the file is missing, is not a keras-autalk model, or
            holds another kind of model.

    Example:
    ```python
    expert = load_model_file("runs/sync/sync_expert.keras", SyncExpert, "sync expert")
    ```
    """
    from keras_autalk.errors import InputFileError
    from keras_autalk.files import check_input_file

    path = check_input_file(path, file_what or what)
    try:
        model = keras.saving.load_model(str(path), compile=False)
    except Exception as error:  # noqa: BLE001 - a foreign or damaged file
        first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise InputFileError(f"'{path}' is not a keras-autalk {what} ({first_line}).") \
            from None
    if not isinstance(model, expected_class):
        raise InputFileError(
            f"'{path}' holds a {type(model).__name__}, not {article} {what}.")
    return model


def load_au_classifier(path):
    """A trained `AUClassifier` from its `.keras` file, frozen.

    Raises:
        AutalkError: the file is missing or not a keras-autalk model.

    Example:
    ```python
    classifier = load_au_classifier("runs/au_demo/au_classifier.keras")
    ```
    """
    from keras_autalk.models.au_classifier import AUClassifier

    model = load_model_file(path, AUClassifier, "AU classifier", article="an")
    model.trainable = False
    return model


def train_talker(prepared_dir, out_dir, epochs=10, steps_per_epoch=200, preset="small",
                 strategy=None, au_classifier=None, batch_size=4, learning_rate=2e-4,
                 loss_weights=None, seed=0, backup_every=50, validation_steps=4,
                 augment=False, jit_compile="auto", mixed_precision="auto", verbose="auto",
                 config=None, model_overrides=None, initial_weights=None,
                 audio_augmentation=None, log=print):
    """Train the `AUTalker` GAN on a prepared corpus.

    Args:
        prepared_dir: the folder `autalk prepare` wrote (train and test).
        out_dir: the run's output folder.
        epochs, steps_per_epoch: length of the run.
        preset: `ModelConfig` preset ("small" or "paper").
        strategy: a `tf.distribute.Strategy` (default: the default one).
        au_classifier: a trained `AUClassifier` or the path of its
            `.keras` file (frozen), or None (AU-classifier loss off).
        batch_size: global batch in windows of `T` frames.
        learning_rate: Adam learning rate of both networks.
        loss_weights: `AUTalker.compile` loss weights (None: its defaults).
        seed: weights initialisation and data order.
        backup_every: steps between resumable backups.
        validation_steps: test-split batches evaluated each epoch (0: none).
        augment: colour jitter on the training data.
        jit_compile, mixed_precision: "auto", "on" or "off".
        verbose: `model.fit` verbosity.
        config: `AutalkConfig` (default: its defaults).
        model_overrides: `ModelConfig` fields to change (e.g. ablations
            `{"fusion": "conv"}`, or `{"audio_normalization": "utterance"}`).
        initial_weights: a `.weights.h5` file of the same model (e.g. another
            run's `checkpoints/epoch-NNN.weights.h5`) to start from instead of
            a fresh initialisation: to train a finished run further.
        audio_augmentation: an `audio_augment.AudioAugmentation` for the
            training speech (noise, reverb, EQ, phone band, gain, speed), or
            None.
        log: a `print`-like function for progress messages.

    Returns:
        `(model, history)`.

    Example:
    ```python
    talker, history = train_talker("prepared/demo", "runs/talker",
                                   au_classifier="runs/au/au_classifier.keras")
    ```
    """
    from keras_autalk.config import AutalkConfig, model_config
    from keras_autalk.datasets import pipeline
    from keras_autalk.models.talker import AUTalker

    config = config or AutalkConfig()
    strategy = strategy or tf.distribute.get_strategy()
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    train_files = pipeline.list_shards(prepared_dir, "train")
    test_files = pipeline.list_shards(prepared_dir, "test")
    settings = model_config(preset, action_units=tuple(config.action_units),
                            image_size=config.face.crop_size, **(model_overrides or {}))
    _, jit = precision_and_xla(mixed_precision, jit_compile)
    if batch_size % strategy.num_replicas_in_sync:
        raise AutalkError(f"The batch of {batch_size} windows does not split over "
                          f"{strategy.num_replicas_in_sync} replicas.")

    def make_train_data(skip):
        return distributed_dataset(strategy, lambda context: pipeline.make_dataset(
            train_files, config, batch_size=batch_size, seed=seed, augment=augment,
            input_context=context, audio_augmentation=audio_augmentation,
            audio_normalization=settings.audio_normalization), skip)

    test_data = pipeline.make_dataset(test_files, config, batch_size=batch_size,
                                      training=False,
                                      audio_normalization=settings.audio_normalization)
    sample_batch = next(iter(test_data))
    validation = test_data.repeat() if validation_steps else None

    _seed_everything(seed)
    with strategy.scope():
        classifier = au_classifier
        if isinstance(classifier, (str, os.PathLike)):
            classifier = load_au_classifier(classifier)
        model = AUTalker(settings, au_classifier=classifier)
        # Build every network (the backup restores into built variables).
        model(sample_batch[0], training=False)
        model.compile(
            g_optimizer=keras.optimizers.Adam(learning_rate, beta_1=0.5, beta_2=0.999),
            d_optimizer=keras.optimizers.Adam(learning_rate, beta_1=0.5, beta_2=0.999),
            loss_weights=loss_weights, jit_compile=jit)
        if initial_weights is not None and not ResumableBackupAndRestore.read_state(
                out_dir / "backup"):
            _load_initial_weights(model, initial_weights)
            log(f"Starting from the weights in {initial_weights}.")
    callbacks, _ = make_callbacks(out_dir, strategy, backup_every=backup_every,
                                  sample_batch=sample_batch)
    log(f"Talker ({preset}, {model.count_params():,} parameters, AU classifier "
        f"{'on' if classifier is not None else 'off'}): {epochs} epochs x {steps_per_epoch} "
        f"steps of {batch_size} x {config.data.window_frames} frames, "
        f"{strategy.num_replicas_in_sync} replica(s).")
    history = fit(model, make_train_data, epochs, steps_per_epoch, callbacks,
                  validation_data=validation, validation_steps=validation_steps or None,
                  verbose=verbose, log=log)
    if is_chief(strategy):
        model.save(out_dir / TALKER_FILE)
    return model, history


def _load_initial_weights(model, path):
    """Load a `.weights.h5` file of the same architecture, or say in one sentence why not."""
    from keras_autalk.files import check_input_file

    path = check_input_file(path, "weights file")
    if not str(path).endswith(".weights.h5"):
        raise AutalkError(f"'{path}' is not a Keras weights file (*.weights.h5).")
    try:
        model.load_weights(str(path))
    except Exception as error:  # noqa: BLE001 - another architecture or a damaged file
        first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise AutalkError(f"The weights in '{path}' do not fit this model ({first_line}).") \
            from None


# --------------------------------------------------------------------------
# Recipes


def recipe_parser(description, prepared, epochs, steps_per_epoch, batch_size, talker=True,
                  preset="small"):
    """The command-line options every recipe shares, with its defaults.

    Args:
        description: the recipe's one-line description.
        prepared: default prepared folder.
        epochs, steps_per_epoch, batch_size: default run length and batch.
        talker: add the talker's options (AU classifier stage, ablations);
            otherwise the AU classifier's (dropout).
        preset: default model preset.

    Example:
    ```python
    parser = recipe_parser("Train on my corpus.", "prepared/mine", 10, 200, 4)
    args = parser.parse_args(["--out", "runs/mine"])
    ```
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--prepared", default=prepared,
                        help=f"folder written by `autalk prepare` (default {prepared})")
    parser.add_argument("--out", required=True, help="output folder of the run")
    parser.add_argument("--epochs", type=int, default=epochs)
    parser.add_argument("--steps-per-epoch", type=int, default=steps_per_epoch)
    parser.add_argument("--batch-size", type=int, default=batch_size,
                        help="global batch (frames for the AU classifier, windows for the talker)")
    parser.add_argument("--preset", default=preset, choices=("small", "paper"),
                        help=f"model size (default {preset})")
    parser.add_argument("--strategy", default="default", choices=STRATEGIES)
    parser.add_argument("--logical-cpus", type=int, default=None,
                        help="split the CPU into this many devices (to try 'mirrored' on CPU)")
    parser.add_argument("--learning-rate", type=float, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--backup-every", type=int, default=None,
                        help="steps between resumable backups")
    parser.add_argument("--validation-steps", type=int, default=None)
    parser.add_argument("--jit-compile", default="auto", choices=("auto", "on", "off"))
    parser.add_argument("--mixed-precision", default="auto", choices=("auto", "on", "off"))
    parser.add_argument("--verbose", type=int, default=None, choices=(0, 1, 2),
                        help="progress: 0 none, 1 bar, 2 a line per epoch (default: bar on a "
                             "terminal)")
    if talker:
        parser.add_argument("--au-classifier",
                            help="a trained AU classifier (.keras); default: train one first "
                                 "into OUT/au_classifier")
        parser.add_argument("--au-epochs", type=int, default=5,
                            help="epochs of the AU classifier stage")
        parser.add_argument("--au-steps-per-epoch", type=int, default=200)
        parser.add_argument("--no-au-loss", action="store_true",
                            help="ablation: train without the AU-classifier loss")
        parser.add_argument("--fusion", choices=("tcsa", "conv"), default=None,
                            help="ablation: fusion without attention ('conv')")
        parser.add_argument("--drive", choices=("audio+au", "audio", "au"), default=None,
                            help="ablation: what drives the fusion")
        parser.add_argument("--audio-augment", action="store_true",
                            help="augment the training speech: noise, reverb, EQ, phone band, "
                                 "clipping, gain and speed (keras_autalk.datasets.audio_augment)")
        parser.add_argument("--audio-normalization", choices=("none", "utterance"),
                            default=None,
                            help="normalise the audio features per utterance (the model "
                                 "keeps this setting; default none)")
        parser.add_argument("--init-weights", default=None, metavar="FILE",
                            help="start from these weights (*.weights.h5 of the same model, "
                                 "e.g. another run's checkpoints/epoch-NNN.weights.h5)")
        parser.add_argument("--loss-weight", action="append", default=[], metavar="NAME=VALUE",
                            help="change one loss weight, e.g. mouth_l1=30 (repeatable; names: "
                                 "l1, mouth_l1, adversarial, au_classifier, audio2au)")
    else:
        parser.add_argument("--dropout", type=float, default=0.1)
    return parser


def _verbose(args):
    if args.verbose is not None:
        return args.verbose
    return "auto" if sys.stdout.isatty() else 2


def run_au_classifier_recipe(args, log=print):
    """Run the AU-classifier stage from parsed recipe options."""
    if args.strategy == "multi-worker":
        raise AutalkError(AU_CLASSIFIER_MULTI_WORKER)
    strategy = make_strategy(args.strategy, args.logical_cpus)
    return train_au_classifier(
        args.prepared, args.out, epochs=args.epochs, steps_per_epoch=args.steps_per_epoch,
        preset=args.preset, strategy=strategy, batch_size=args.batch_size,
        learning_rate=args.learning_rate or 1e-3, dropout=args.dropout, seed=args.seed,
        backup_every=args.backup_every or 100,
        validation_steps=20 if args.validation_steps is None else args.validation_steps,
        jit_compile=args.jit_compile, mixed_precision=args.mixed_precision,
        verbose=_verbose(args), log=log)


def parse_loss_weights(pairs):
    """`["mouth_l1=30", ...]` -> `{"mouth_l1": 30.0}`; bad pairs raise `AutalkError`.

    Example:
    >>> parse_loss_weights(["mouth_l1=30", "adversarial=0.1"])
    {'mouth_l1': 30.0, 'adversarial': 0.1}
    """
    from keras_autalk.models.talker import DEFAULT_LOSS_WEIGHTS

    weights = {}
    for pair in pairs:
        name, _, value = pair.partition("=")
        if name not in DEFAULT_LOSS_WEIGHTS:
            raise AutalkError(f"Unknown loss '{name}' in --loss-weight {pair}; the losses are "
                              f"{', '.join(DEFAULT_LOSS_WEIGHTS)}.")
        try:
            weights[name] = float(value)
        except ValueError:
            raise AutalkError(f"--loss-weight {pair} needs a number after '='.") from None
        if weights[name] < 0:
            raise AutalkError(f"--loss-weight {pair}: a loss weight cannot be negative.")
    return weights


def run_talker_recipe(args, log=print, model_overrides=None):
    """Run a talker recipe: the AU classifier stage if needed, then the GAN."""
    loss_weights = parse_loss_weights(getattr(args, "loss_weight", []))
    stage_file = pathlib.Path(args.out) / "au_classifier" / AU_CLASSIFIER_FILE
    if (args.strategy == "multi-worker" and not args.no_au_loss and args.au_classifier is None
            and not stage_file.is_file()):
        raise AutalkError(AU_CLASSIFIER_MULTI_WORKER)
    strategy = make_strategy(args.strategy, args.logical_cpus)
    classifier = None
    if not args.no_au_loss:
        classifier = args.au_classifier
        if classifier is None:
            stage_dir = pathlib.Path(args.out) / "au_classifier"
            classifier = stage_dir / AU_CLASSIFIER_FILE
            if not classifier.is_file():
                log("Stage 1: the AU classifier (no --au-classifier given).")
                train_au_classifier(
                    args.prepared, stage_dir, epochs=args.au_epochs,
                    steps_per_epoch=args.au_steps_per_epoch, preset=args.preset,
                    strategy=strategy, seed=args.seed, jit_compile=args.jit_compile,
                    mixed_precision=args.mixed_precision, verbose=_verbose(args), log=log)
            log("Stage 2: the talker.")
    overrides = dict(model_overrides or {})
    if args.fusion:
        overrides["fusion"] = args.fusion
    if args.drive:
        overrides["drive"] = args.drive
    if args.audio_normalization:
        overrides["audio_normalization"] = args.audio_normalization
    augmentation = None
    if args.audio_augment:
        from keras_autalk.datasets.audio_augment import AudioAugmentation

        augmentation = AudioAugmentation()
    return train_talker(
        args.prepared, args.out, epochs=args.epochs, steps_per_epoch=args.steps_per_epoch,
        preset=args.preset, strategy=strategy, au_classifier=classifier,
        batch_size=args.batch_size, learning_rate=args.learning_rate or 2e-4, seed=args.seed,
        loss_weights=loss_weights or None, initial_weights=args.init_weights,
        backup_every=args.backup_every or 50,
        validation_steps=4 if args.validation_steps is None else args.validation_steps,
        jit_compile=args.jit_compile, mixed_precision=args.mixed_precision,
        verbose=_verbose(args), model_overrides=overrides, audio_augmentation=augmentation,
        log=log)


def find_recipe(name):
    """The path of the recipe called `name` (or a recipe file's path).

    Looks for `recipes/<name>.py` beside the package (a source checkout or
    an editable install); dashes and underscores are the same.

    Raises:
        AutalkError: no such recipe (the message lists the known ones).

    Example:
    ```python
    find_recipe("talker-demo")  # .../recipes/talker_demo.py
    ```
    """
    candidate = pathlib.Path(name)
    if candidate.suffix == ".py":
        if candidate.is_file():
            return candidate
        raise AutalkError(f"The recipe file '{name}' does not exist.")
    folder = recipes_dir()
    path = folder / f"{name.replace('-', '_')}.py"
    if path.is_file():
        return path
    known = sorted(p.stem for p in folder.glob("*.py")) if folder.is_dir() else []
    if not known:
        raise AutalkError(f"No recipe '{name}': the recipes/ folder was not found beside the "
                          "package; give the path of a recipe file.")
    raise AutalkError(f"No recipe '{name}'; the recipes are: {', '.join(known)}.")


def recipes_dir():
    """The `recipes/` folder of the source tree the package runs from."""
    return pathlib.Path(__file__).resolve().parents[2] / "recipes"


def recipe_main(run, argv=None):
    """Run a recipe's `run(argv)`; bad input ends it with one sentence, status 1.

    `autalk train` reports errors itself; this is for running a recipe file
    directly with `python recipes/NAME.py`.
    """
    try:
        return run(argv)
    except AutalkError as error:
        print(f"recipe: error: {error}", file=sys.stderr)
        return 1
