"""`fit`: `model.fit` that resumes a killed run at the step of its last backup.

A run killed mid-epoch continues where its last `ResumableBackupAndRestore`
backup (`keras_autalk.training.callbacks`) left it: epoch, step, weights,
optimiser state and data position (`keras.callbacks.BackupAndRestore` alone
would replay the interrupted epoch from its first step).

Also the small helpers the training tasks share: `window_config`,
`seed_everything` and `learning_rate_schedule`.
"""

import dataclasses
import shutil

from keras_autalk.models.keras_internals import set_initial_epoch
from keras_autalk.native import import_tensorflow
from keras_autalk.training.callbacks import ResumableBackupAndRestore
from keras_autalk.training.strategy import is_chief

import_tensorflow()
import keras  # noqa: E402


def fit(
    model,
    make_train_data,
    epochs,
    steps_per_epoch,
    callbacks,
    validation_data=None,
    validation_steps=None,
    verbose="auto",
    log=print,
):
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
        epoch, steps_done, global_step = (state["epoch"], state["steps_done"], state["global_step"])
        if steps_done >= steps_per_epoch:
            epoch, steps_done = epoch + 1, 0
        log(
            f"Resuming from the backup in {backup.backup_dir}: epoch {epoch + 1}/{epochs}, "
            f"step {steps_done}/{steps_per_epoch} (global step {global_step})."
        )
    if backup:
        backup.steps_per_epoch = int(steps_per_epoch)
        backup._global_step = global_step
    history = {}

    def run(first_epoch, last_epoch, steps, offset):
        set_initial_epoch(model, None)
        if backup:
            backup.step_offset = offset
        result = model.fit(
            make_train_data(global_step),
            initial_epoch=first_epoch,
            epochs=last_epoch,
            steps_per_epoch=steps,
            callbacks=callbacks,
            validation_data=validation_data,
            validation_steps=validation_steps,
            verbose=verbose,
            shuffle=False,
        )
        for key, values in result.history.items():
            history.setdefault(key, []).extend(values)

    if state and epoch >= epochs:
        # Killed after its last backup but before cleaning up: the backup
        # holds the finished weights.
        backup.set_model(model)
        backup.restore()
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
# Helpers the training tasks share


def window_config(config, window_frames):
    """`config` with its data window set to `window_frames` frames."""
    return dataclasses.replace(
        config, data=dataclasses.replace(config.data, window_frames=int(window_frames))
    )


def seed_everything(seed):
    """Seed Python, NumPy and the backend (`keras.utils.set_random_seed`)."""
    keras.utils.set_random_seed(int(seed))


def learning_rate_schedule(base, total_steps):
    """Linear warm-up over the first 5 % of the steps, then cosine decay to 5 %."""
    total_steps = max(2, int(total_steps))
    warmup = max(1, total_steps // 20)
    return keras.optimizers.schedules.CosineDecay(
        0.0,
        decay_steps=total_steps - warmup,
        alpha=0.05,
        warmup_target=float(base),
        warmup_steps=warmup,
    )
