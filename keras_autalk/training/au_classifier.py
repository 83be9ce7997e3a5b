"""The AU classifier's training stage: its data, its training, its evaluation.

The AU classifier is trained first (`train_au_classifier`, on single face
crops), then frozen inside the talker GAN (`load_au_classifier`, see
`keras_autalk.training.talker`). `evaluate_au_classifier` gives its per-AU
Pearson correlation and MAE on prepared files.
"""

import json
import pathlib
import time

import numpy as np

from keras_autalk.errors import AutalkError
from keras_autalk.native import import_tensorflow
from keras_autalk.presets.model_files import load_model_file
from keras_autalk.stats import pearson
from keras_autalk.training.callbacks import make_callbacks
from keras_autalk.training.fit import fit, learning_rate_schedule, seed_everything, window_config
from keras_autalk.training.strategy import distributed_dataset, is_chief, precision_and_xla

tf = import_tensorflow()
import keras  # noqa: E402

AU_CLASSIFIER_FILE = "au_classifier.keras"
# Keras 3's plain `fit` cannot build or reduce a standard model's metrics
# across workers (keras-team/keras#20329, tensorflow/tensorflow#72388); the
# small classifier needs no cluster anyway.
AU_CLASSIFIER_MULTI_WORKER = (
    "The AU classifier trains with the 'default' or 'mirrored' strategy, not 'multi-worker'; "
    "train it first (autalk train au_classifier_demo) and give it to the talker recipe with "
    "--au-classifier."
)
# Frames per window when the AU classifier reads single frames: short
# windows give more different utterances per batch than the talker's T.
AU_CLASSIFIER_WINDOW = 4


# --------------------------------------------------------------------------
# Data


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
    draws = tf.random.stateless_uniform(
        [count, 4], seed=tf.cast(seed, tf.int64), minval=-1.0, maxval=1.0
    )
    flip = tf.where(draws[:, 0] < 0, -1.0, 1.0)
    scale = 1.0 + max_scale * draws[:, 1]
    shift_x, shift_y = max_shift * draws[:, 2], max_shift * draws[:, 3]
    centre = (size - 1.0) / 2.0
    zeros = tf.zeros_like(scale)
    # Output pixel (x, y) reads input (flip*(x-c)/scale + c + dx, (y-c)/scale + c + dy).
    transforms = tf.stack(
        [
            flip / scale,
            zeros,
            centre - flip * centre / scale + shift_x,
            zeros,
            1.0 / scale,
            centre - centre / scale + shift_y,
            zeros,
            zeros,
        ],
        axis=1,
    )
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=crops,
        transforms=transforms,
        output_shape=tf.shape(crops)[1:3],
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="NEAREST",
    )


# --------------------------------------------------------------------------
# Evaluation


def _au_readings(model, files, config, batch_size, max_batches):
    """The classifier's readings and the labels of every labelled frame of `files`."""
    from keras_autalk.datasets import pipeline

    dataset = au_classifier_batches(
        pipeline.make_dataset(files, config, batch_size=batch_size, training=False)
    )
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
    readings = {
        speaker: _au_readings(model, group, config, batch_size, max_batches)
        for speaker, group in groups.items()
    }
    predictions = np.concatenate([pair[0] for pair in readings.values()])
    labels = np.concatenate([pair[1] for pair in readings.values()])
    if not len(labels):
        raise AutalkError("The evaluation files hold no labelled frames.")
    correlations = pearson(predictions, labels, axis=0)
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
            values = pearson(predicted, labelled, axis=0)
            report["by_speaker"][speaker] = dict(
                {"frames": int(len(labelled))},
                **{
                    f"AU{unit}": float(values[column])
                    for column, unit in enumerate(config.action_units)
                },
            )
    return report


def format_au_report(report):
    """A Markdown table of `evaluate_au_classifier`'s report."""
    lines = ["| AU | Pearson r | MAE | mean label | mean prediction |", "|---|---:|---:|---:|---:|"]
    for key, value in report.items():
        if key.startswith("AU"):
            lines.append(
                f"| {key} | {value['pearson']:.3f} | {value['mae']:.3f} | "
                f"{value['mean_label']:.2f} | {value['mean_prediction']:.2f} |"
            )
    lines.append(f"| mean | {report['mean_pearson']:.3f} | | | |")
    speakers = report.get("by_speaker") or {}
    if len(speakers) > 1:
        units = [key for key in report if key.startswith("AU")]
        lines += [
            "",
            "Pearson r per speaker:",
            "",
            "| speaker | frames | " + " | ".join(units) + " |",
            "|---|---:|" + "---:|" * len(units),
        ]
        for speaker, values in speakers.items():
            lines.append(
                f"| {speaker} | {values['frames']} | "
                + " | ".join(f"{values[unit]:.3f}" for unit in units)
                + " |"
            )
    return "\n".join(lines)


# --------------------------------------------------------------------------
# Training


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


def train_au_classifier(
    prepared_dir,
    out_dir,
    epochs=10,
    steps_per_epoch=200,
    preset="small",
    strategy=None,
    batch_size=64,
    learning_rate=1e-3,
    dropout=0.1,
    seed=0,
    backup_every=100,
    validation_steps=20,
    augment=True,
    jit_compile="auto",
    mixed_precision="auto",
    verbose="auto",
    config=None,
    log=print,
):
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
    from keras_autalk.files import refuse_overwriting_inputs

    refuse_overwriting_inputs([("output folder", out_dir)], [("prepared folder", prepared_dir)])
    config = config or AutalkConfig()
    strategy = strategy or tf.distribute.get_strategy()
    _check_strategy(strategy)
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    train_files = pipeline.list_shards(prepared_dir, "train")
    test_files = pipeline.list_shards(prepared_dir, "test")
    model_settings = model_config(
        preset, action_units=tuple(config.action_units), image_size=config.face.crop_size
    )
    _, jit = precision_and_xla(mixed_precision, jit_compile)
    windows = _windows_per_batch(batch_size, strategy)
    short = window_config(config, AU_CLASSIFIER_WINDOW)
    make_train_data, validation = _au_classifier_datasets(
        train_files, test_files, short, windows, strategy, seed, augment, validation_steps
    )

    seed_everything(seed)
    label_means = _train_label_means(train_files, short, windows, seed)
    with strategy.scope():
        model = _compiled_au_classifier(
            model_settings,
            config,
            label_means,
            dropout=dropout,
            learning_rate=learning_rate,
            total_steps=epochs * steps_per_epoch,
            jit=jit,
        )
    callbacks, _ = make_callbacks(out_dir, strategy, backup_every=backup_every)
    log(
        f"AU classifier ({preset}, filters {model_settings.au_classifier_filters}, "
        f"{model.count_params():,} parameters): {epochs} epochs x {steps_per_epoch} steps of "
        f"{windows * AU_CLASSIFIER_WINDOW} frames, {strategy.num_replicas_in_sync} replica(s)."
    )
    start = time.perf_counter()
    fit(
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
    elapsed = time.perf_counter() - start
    report = evaluate_au_classifier(model, test_files, config)
    report["train_seconds"] = round(elapsed, 1)
    if is_chief(strategy):
        _write_au_classifier(model, report, out_dir)
    log(
        f"AU classifier on the test split ({report['frames']} frames):\n" + format_au_report(report)
    )
    return model, report


def _check_strategy(strategy):
    """Refuse the multi-worker strategy (see `AU_CLASSIFIER_MULTI_WORKER`)."""
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        raise AutalkError(AU_CLASSIFIER_MULTI_WORKER)


def _windows_per_batch(batch_size, strategy):
    """The windows of `AU_CLASSIFIER_WINDOW` frames in a global batch of `batch_size` frames,
    or say in one sentence why they do not split over the replicas."""
    windows = max(1, int(batch_size) // AU_CLASSIFIER_WINDOW)
    if windows % strategy.num_replicas_in_sync:
        raise AutalkError(
            f"The batch of {batch_size} frames ({windows} windows of {AU_CLASSIFIER_WINDOW}) "
            f"does not split over {strategy.num_replicas_in_sync} replicas."
        )
    return windows


def _au_classifier_datasets(
    train_files, test_files, short, windows, strategy, seed, augment, validation_steps
):
    """`(make_train_data, validation)`: the (jittered) training frames for `fit`, and the
    test split's frames (repeated), or None when `validation_steps` is 0."""
    from keras_autalk.datasets import pipeline

    def make_batches(context):
        batches = au_classifier_batches(
            pipeline.make_dataset(
                train_files,
                short,
                batch_size=windows,
                seed=seed,
                augment=augment,
                input_context=context,
            )
        )
        if not augment:
            return batches
        pipeline_id = context.input_pipeline_id if context else 0
        seeds = tf.data.Dataset.random(
            seed=seed + 7919 * (pipeline_id + 1), rerandomize_each_iteration=True
        ).batch(2)
        return tf.data.Dataset.zip((batches, seeds)).map(
            lambda batch, pair: (jitter_face_crops(batch[0], pair),) + tuple(batch[1:]),
            num_parallel_calls=tf.data.AUTOTUNE,
        )

    def make_train_data(skip):
        return distributed_dataset(strategy, make_batches, skip)

    validation = None
    if validation_steps:
        validation = au_classifier_batches(
            pipeline.make_dataset(test_files, short, batch_size=windows, training=False)
        ).repeat()
    return make_train_data, validation


def _train_label_means(train_files, short, windows, seed):
    """The mean AU intensities of the training frames (see `mean_labels`)."""
    from keras_autalk.datasets import pipeline

    return mean_labels(
        au_classifier_batches(
            pipeline.make_dataset(train_files, short, batch_size=windows, seed=seed)
        )
    )


def _compiled_au_classifier(
    model_settings, config, label_means, dropout, learning_rate, total_steps, jit
):
    """A built `AUClassifier` whose output starts at `label_means`, compiled (Adam, cosine
    decay over `total_steps`, masked MSE). Call it inside the strategy's scope."""
    from keras_autalk.models.au_classifier import AUClassifier

    model = AUClassifier(
        model_settings.action_units,
        model_settings.au_classifier_filters,
        dropout=dropout,
        name="au_classifier",
    )
    model.build((None, config.face.crop_size, config.face.crop_size, 3))
    init_output_bias(model, label_means)
    model.compile(
        optimizer=keras.optimizers.Adam(
            learning_rate_schedule(learning_rate, total_steps), clipnorm=1.0
        ),
        loss="mse",
        weighted_metrics=["mae"],
        jit_compile=jit,
    )
    return model


def _write_au_classifier(model, report, out_dir):
    """Write the trained classifier and its evaluation report into `out_dir`."""
    model.save(out_dir / AU_CLASSIFIER_FILE)
    (out_dir / "au_classifier_eval.json").write_text(json.dumps(report, indent=2) + "\n")


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
