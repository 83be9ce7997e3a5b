"""The callbacks of a training run, and the folder it writes.

`make_callbacks` gives `TerminateOnNaN`, `ModelCheckpoint`, a
`ResumableBackupAndRestore`, `TensorBoard` (plus `SampleFramesCallback`'s
real | generated strips) and `CSVLogger`. With `fit`
(`keras_autalk.training.fit`), a run killed mid-epoch resumes at the step
of its last backup.

Every run writes into one output folder:

```
out/training_log.csv         one row per epoch: losses and metrics
out/logs/                    TensorBoard: scalars, sample frame strips
out/checkpoints/             epoch-NNN.weights.h5 (ModelCheckpoint)
out/backup/                  resumable state while a run is unfinished
out/<model>.keras            the trained model
```
"""

import json
import os
import pathlib
import shutil
import time

import numpy as np

from keras_autalk.errors import AutalkError
from keras_autalk.models.keras_internals import set_initial_epoch
from keras_autalk.native import import_tensorflow
from keras_autalk.training.strategy import is_chief, worker_scratch

tf = import_tensorflow()
import keras  # noqa: E402

TRAINING_LOG = "training_log.csv"


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

    def __init__(self, inputs, targets, log_dir, every_epochs=1, max_examples=2, max_frames=8):
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
        rows = [self.real_frames, generated[:, : self.max_frames]]
        if "blend_mask" in outputs:
            mask = keras.ops.convert_to_numpy(outputs["blend_mask"])[:, : self.max_frames]
            rows.append(np.repeat(np.asarray(mask, np.float32), 3, axis=-1))
        images = []
        for row in rows:
            batch, frames, height, width, channels = row.shape
            # (K, T, H, W, C) -> (K, H, T * W, C): frames side by side.
            images.append(
                row.transpose(0, 2, 1, 3, 4).reshape(batch, height, frames * width, channels)
            )
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
                    f"samples/example_{index}",
                    strip[None],
                    step=epoch + 1,
                    description="top: real frames; below: generated frames (and the blend mask)",
                )
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
    `fit` (`keras_autalk.training.fit`) the resumed run finishes the
    interrupted epoch with only its remaining steps, on the batches that
    come next. A backup is written every `save_freq` steps and at each
    epoch end, each into a fresh folder that becomes current by an atomic
    rename of the `latest` pointer, so a kill during a save leaves the
    previous backup intact.

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
        super().__init__(str(backup_dir), save_freq=save_freq, delete_checkpoint=delete_checkpoint)
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
        self.restore()

    def restore(self):
        """Load the last backup's weights and state into the model (nothing if none)."""
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
        set_initial_epoch(self.model, state["epoch"])

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
        (folder / self.METADATA).write_text(
            json.dumps(
                {
                    "epoch": int(epoch),
                    "steps_done": int(steps_done),
                    "global_step": int(step),
                    "steps_per_epoch": self.steps_per_epoch,
                    "time": time.time(),
                }
            )
        )
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


def make_callbacks(
    out_dir,
    strategy=None,
    backup_every=200,
    sample_batch=None,
    sample_every_epochs=1,
    checkpoint=True,
):
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
    write_dir = backup_dir if chief else worker_scratch(strategy, "backup")
    backup = ResumableBackupAndRestore(backup_dir, save_freq=int(backup_every), write_dir=write_dir)
    callbacks = [keras.callbacks.TerminateOnNaN()]
    if checkpoint:
        checkpoint_dir = (
            (out_dir / "checkpoints")
            if chief
            else pathlib.Path(worker_scratch(strategy, "checkpoints"))
        )
        checkpoint_dir.mkdir(parents=True, exist_ok=True)
        callbacks.append(
            keras.callbacks.ModelCheckpoint(
                str(checkpoint_dir / "epoch-{epoch:03d}.weights.h5"), save_weights_only=True
            )
        )
    if chief:
        log_dir = out_dir / "logs"
        callbacks.append(
            keras.callbacks.TensorBoard(
                str(log_dir), write_graph=False, update_freq="epoch", profile_batch=0
            )
        )
        if sample_batch is not None:
            callbacks.append(
                SampleFramesCallback(
                    sample_batch[0], sample_batch[1], log_dir, every_epochs=sample_every_epochs
                )
            )
        callbacks.append(keras.callbacks.CSVLogger(str(out_dir / TRAINING_LOG), append=True))
    # The backup comes last: an epoch's log row and checkpoint are written
    # before the backup that marks the epoch as done.
    callbacks.append(backup)
    return callbacks, backup
