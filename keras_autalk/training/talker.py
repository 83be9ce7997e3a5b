"""The talker's training stage: the `AUTalker` GAN, with the frozen AU classifier."""

import os
import pathlib

from keras_autalk.errors import AutalkError
from keras_autalk.native import import_tensorflow
from keras_autalk.training.au_classifier import load_au_classifier
from keras_autalk.training.callbacks import ResumableBackupAndRestore, make_callbacks
from keras_autalk.training.fit import fit, seed_everything
from keras_autalk.training.strategy import distributed_dataset, is_chief, precision_and_xla

tf = import_tensorflow()
import keras  # noqa: E402

TALKER_FILE = "talker.keras"


def train_talker(
    prepared_dir,
    out_dir,
    epochs=10,
    steps_per_epoch=200,
    preset="small",
    strategy=None,
    au_classifier=None,
    batch_size=4,
    learning_rate=2e-4,
    loss_weights=None,
    seed=0,
    backup_every=50,
    validation_steps=4,
    augment=False,
    jit_compile="auto",
    mixed_precision="auto",
    verbose="auto",
    config=None,
    model_overrides=None,
    initial_weights=None,
    audio_augmentation=None,
    log=print,
):
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
    from keras_autalk.config import AutalkConfig
    from keras_autalk.datasets import pipeline
    from keras_autalk.files import refuse_overwriting_inputs

    refuse_overwriting_inputs([("output folder", out_dir)], [("prepared folder", prepared_dir)])
    config = config or AutalkConfig()
    strategy = strategy or tf.distribute.get_strategy()
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    train_files = pipeline.list_shards(prepared_dir, "train")
    test_files = pipeline.list_shards(prepared_dir, "test")
    settings = _talker_settings(preset, config, model_overrides)
    _, jit = precision_and_xla(mixed_precision, jit_compile)
    _check_batch_splits(batch_size, strategy)
    make_train_data, sample_batch, validation = _talker_datasets(
        train_files,
        test_files,
        config,
        settings,
        strategy,
        batch_size=batch_size,
        seed=seed,
        augment=augment,
        audio_augmentation=audio_augmentation,
        validation_steps=validation_steps,
    )

    seed_everything(seed)
    with strategy.scope():
        model = _compiled_talker(
            settings, au_classifier, sample_batch, learning_rate, loss_weights, jit
        )
        if initial_weights is not None:
            _start_from_initial_weights(model, initial_weights, out_dir, log)
    callbacks, _ = make_callbacks(
        out_dir, strategy, backup_every=backup_every, sample_batch=sample_batch
    )
    log(
        f"Talker ({preset}, {model.count_params():,} parameters, AU classifier "
        f"{'on' if au_classifier is not None else 'off'}): {epochs} epochs x {steps_per_epoch} "
        f"steps of {batch_size} x {config.data.window_frames} frames, "
        f"{strategy.num_replicas_in_sync} replica(s)."
    )
    history = fit(
        model,
        make_train_data,
        epochs,
        steps_per_epoch,
        callbacks,
        validation_data=validation,
        validation_steps=validation_steps or None,
        verbose=verbose,
        log=log,
    )
    if is_chief(strategy):
        model.save(out_dir / TALKER_FILE)
    return model, history


def _talker_settings(preset, config, model_overrides):
    """The talker's `ModelConfig`: the preset, fitted to the corpus, with the overrides."""
    from keras_autalk.config import model_config

    return model_config(
        preset,
        action_units=tuple(config.action_units),
        image_size=config.face.crop_size,
        **(model_overrides or {}),
    )


def _check_batch_splits(batch_size, strategy):
    """Say in one sentence when the global batch does not split over the replicas."""
    if batch_size % strategy.num_replicas_in_sync:
        raise AutalkError(
            f"The batch of {batch_size} windows does not split over "
            f"{strategy.num_replicas_in_sync} replicas."
        )


def _talker_datasets(
    train_files,
    test_files,
    config,
    settings,
    strategy,
    batch_size,
    seed,
    augment,
    audio_augmentation,
    validation_steps,
):
    """`(make_train_data, sample_batch, validation)`: the training windows for `fit`, the
    test split's first batch (to build the model and draw samples), and the test split
    (repeated) or None when `validation_steps` is 0."""
    from keras_autalk.datasets import pipeline

    def make_train_data(skip):
        return distributed_dataset(
            strategy,
            lambda context: pipeline.make_dataset(
                train_files,
                config,
                batch_size=batch_size,
                seed=seed,
                augment=augment,
                input_context=context,
                audio_augmentation=audio_augmentation,
                audio_normalization=settings.audio_normalization,
            ),
            skip,
        )

    test_data = pipeline.make_dataset(
        test_files,
        config,
        batch_size=batch_size,
        training=False,
        audio_normalization=settings.audio_normalization,
    )
    sample_batch = next(iter(test_data))
    validation = test_data.repeat() if validation_steps else None
    return make_train_data, sample_batch, validation


def _compiled_talker(settings, au_classifier, sample_batch, learning_rate, loss_weights, jit):
    """A built, compiled `AUTalker` with the frozen AU classifier (a model, the path of its
    `.keras` file, or None). Call it inside the strategy's scope."""
    from keras_autalk.models.talker import AUTalker

    classifier = au_classifier
    if isinstance(classifier, (str, os.PathLike)):
        classifier = load_au_classifier(classifier)
    model = AUTalker(settings, au_classifier=classifier)
    # Build every network (the backup restores into built variables).
    model(sample_batch[0], training=False)
    model.compile(
        g_optimizer=keras.optimizers.Adam(learning_rate, beta_1=0.5, beta_2=0.999),
        d_optimizer=keras.optimizers.Adam(learning_rate, beta_1=0.5, beta_2=0.999),
        loss_weights=loss_weights,
        jit_compile=jit,
    )
    return model


def _start_from_initial_weights(model, initial_weights, out_dir, log):
    """Load `initial_weights` into a fresh run; a resumed run keeps its backup's weights."""
    if not ResumableBackupAndRestore.read_state(out_dir / "backup"):
        _load_initial_weights(model, initial_weights)
        log(f"Starting from the weights in {initial_weights}.")


def _load_initial_weights(model, path):
    """Load a `.weights.h5` file of the same architecture, or a pretrained model's generator
    (a name such as "demo", or its folder), or say in one sentence why not."""
    from keras_autalk.files import check_input_file
    from keras_autalk.presets import pretrained

    if not str(path).endswith(".weights.h5"):
        if pathlib.Path(path).is_file():
            raise AutalkError(
                f"'{path}' is not a Keras weights file (*.weights.h5) or a pretrained model."
            )
        # A model whose decoder differs from the pretrained one's (an ablation of
        # `ModelConfig.decoder`) starts from its other networks only.
        stored = pretrained.read_model_json(pretrained.resolve_model_dir(path))["model_config"]
        same_decoder = getattr(stored, "decoder", "frames") == getattr(
            model.model_config, "decoder", "frames"
        )
        pretrained.load_generator_weights(model, path, skip=() if same_decoder else ("decoder",))
        return
    path = check_input_file(path, "weights file")
    try:
        model.load_weights(str(path))
    except Exception as error:  # noqa: BLE001 - another architecture or a damaged file
        first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise AutalkError(
            f"The weights in '{path}' do not fit this model ({first_line})."
        ) from None
