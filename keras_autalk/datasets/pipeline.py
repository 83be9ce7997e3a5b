"""The `tf.data` pipeline that turns prepared TFRecords into training examples.

Each prepared utterance (see `keras_autalk.datasets.tfrecords`) yields windows
of `T = DataConfig.window_frames` consecutive frames: random starts when
training (about `num_frames // T` windows per utterance and epoch),
non-overlapping windows from the first frame when evaluating. Each window
comes with an **identity frame** from the same video, at least
`DataConfig.identity_min_gap` frames away from the window and with a face
found in it (if the video is too short for that, the farthest frame with a
face). An example is

```
({"identity_image": (S, S, 3), "audio_features": (T, context, bins)},
 {"frames": (T, S, S, 3), "au_intensity": (T, A), "au_mask": (T,),
  "face_mask": (T,), "landmarks": (T, 68, 2)})
```

all float32, images in [0, 1], landmarks in crop pixels. Windows are
shuffled before their JPEGs are decoded (only the `T + 1` frames used are
decoded), then batched and prefetched. With a `seed` every run yields the
same examples in the same order (and each epoch different ones); with
`input_context` the pipeline reads only its part of the files, so it works
with `strategy.distribute_datasets_from_function`.
"""

import glob
import os
import pathlib

from keras_autalk.config import AutalkConfig
from keras_autalk.datasets import audio_augment, tfrecords
from keras_autalk.errors import AutalkError
from keras_autalk.features import log_mel
from keras_autalk.native import import_tensorflow

tf = import_tensorflow()

# Distinct random streams for the input pipelines of a distributed run.
_PIPELINE_SEED_STRIDE = 1_000_003
# Colour jitter ranges of `augment=True` (one draw per example, shared by
# the identity image and the frames).
BRIGHTNESS_DELTA = 0.08
CONTRAST_RANGE = (0.85, 1.15)
SATURATION_RANGE = (0.8, 1.2)
CHANNEL_GAIN_RANGE = (0.93, 1.07)


def list_shards(prepared_dir, split="train"):
    """The sorted `.tfrecord` files of one split of a prepared folder.

    Raises:
        AutalkError: the folder or split holds no shard.

    Example:
    ```python
    files = list_shards("prepared", "train")
    ```
    """
    folder = pathlib.Path(prepared_dir) / split
    files = sorted(str(path) for path in folder.glob("*" + ".tfrecord"))
    if not files:
        raise AutalkError(
            f"No prepared shards were found in '{folder}'; run `autalk prepare` first."
        )
    return files


def _resolve_files(files):
    """A sorted list of files from a pattern, a folder, a file or a list of them."""
    if isinstance(files, (str, os.PathLike)):
        files = [files]
    resolved = []
    for item in files:
        item = str(item)
        if os.path.isdir(item):
            matches = sorted(glob.glob(os.path.join(item, "**", "*.tfrecord"), recursive=True))
        elif any(char in item for char in "*?["):
            matches = sorted(glob.glob(item))
        else:
            matches = [item] if os.path.isfile(item) else []
        if not matches:
            raise AutalkError(f"No TFRecord files match '{item}'.")
        resolved.extend(matches)
    return sorted(set(resolved))


def check_shard(path, config=AutalkConfig()):
    """Raise `AutalkError` if the first record of `path` does not fit `config`.

    Checks the crop size, the audio feature layout and the AU set, so a
    folder prepared with another config fails here with a clear sentence
    rather than deep inside training.
    """
    record = next(iter(tf.data.TFRecordDataset(str(path)).take(1)), None)
    if record is None:
        return
    parsed = tfrecords.parse_example(record, decode_frames=False)
    crop = tfrecords.decode_jpeg(parsed["frames"][0]).shape
    size = config.face.crop_size
    features = tuple(parsed["audio_features"].shape[1:])
    expected_features = (config.audio.context_steps, config.audio.num_mel_bins)
    action_units = tuple(int(unit) for unit in parsed["action_units"].numpy())
    problems = []
    if tuple(crop[:2]) != (size, size):
        problems.append(f"crops of {crop[1]}x{crop[0]} pixels, not {size}x{size}")
    if features != expected_features:
        problems.append(f"audio features of {features}, not {expected_features}")
    if action_units != tuple(config.action_units):
        problems.append(f"action units {action_units}, not {tuple(config.action_units)}")
    if problems:
        raise AutalkError(
            f"The prepared file '{path}' does not match the config: it holds "
            + "; ".join(problems)
            + ". Prepare the corpus again with this config."
        )


def _window_plan(record, seed, config, training, windows_per_utterance):
    """Window starts `(W,)`, identity frame indices `(W,)` and seeds `(W, 2)`."""
    window = config.data.window_frames
    num_frames = record["num_frames"]
    last_start = num_frames - window
    if training:
        count = (
            windows_per_utterance if windows_per_utterance else tf.maximum(1, num_frames // window)
        )
        draws = tf.random.stateless_uniform([count], seed=seed)
        starts = tf.cast(tf.floor(draws * tf.cast(last_start + 1, tf.float32)), tf.int32)
        starts = tf.minimum(starts, last_start)
    else:
        starts = tf.range(0, last_start + 1, window)
    count = tf.shape(starts)[0]
    seeds = tf.random.stateless_uniform(
        [count, 2], seed=seed + [0, 1], minval=None, maxval=None, dtype=tf.int64
    )

    frame_index = tf.range(num_frames)
    ends = starts + window - 1
    # How far each frame is from each window (negative inside it).
    distance = tf.maximum(
        starts[:, None] - frame_index[None, :], frame_index[None, :] - ends[:, None]
    )
    has_face = (record["face_mask"] > 0.5)[None, :]
    # Fallback: the farthest frame, preferring frames with a face.
    farthest = tf.argmax(
        tf.where(has_face, distance, distance - 2 * num_frames), axis=1, output_type=tf.int32
    )
    allowed = (distance >= config.data.identity_min_gap) & has_face
    if training:
        scores = tf.random.stateless_uniform(tf.shape(distance), seed=seed + [0, 2])
        chosen = tf.argmax(tf.where(allowed, scores, -1.0), axis=1, output_type=tf.int32)
        identities = tf.where(tf.reduce_any(allowed, axis=1), chosen, farthest)
    else:
        identities = farthest
    return starts, identities, seeds


def _cut_windows(record, seed, config, training, windows_per_utterance):
    """One utterance record -> a batch of `W` windows (frames still JPEG)."""
    starts, identities, seeds = _window_plan(record, seed, config, training, windows_per_utterance)
    index = starts[:, None] + tf.range(config.data.window_frames)[None, :]
    return {
        "frames": tf.gather(record["frames"], index),
        "identity_jpeg": tf.gather(record["frames"], identities),
        "audio_features": tf.gather(record["audio_features"], index),
        "au_intensity": tf.gather(record["au_intensity"], index),
        "au_mask": tf.gather(record["au_mask"], index),
        "face_mask": tf.gather(record["face_mask"], index),
        "landmarks": tf.gather(record["landmarks"], index),
        "seed": seeds,
    }


def _colour_jitter(images, seed):
    """One random brightness/contrast/saturation/white-balance change for all `images`.

    The four changes compose into one affine colour map `x W + b` (contrast
    around the mean of all the images, so the map is the very same for the
    identity image and every frame), applied in a single pass.
    """
    seeds = tf.random.experimental.stateless_split(seed, 4)
    brightness = tf.random.stateless_uniform([], seeds[0], -BRIGHTNESS_DELTA, BRIGHTNESS_DELTA)
    contrast = tf.random.stateless_uniform([], seeds[1], *CONTRAST_RANGE)
    saturation = tf.random.stateless_uniform([], seeds[2], *SATURATION_RANGE)
    gains = tf.random.stateless_uniform([3], seeds[3], *CHANNEL_GAIN_RANGE)
    mean = tf.reduce_mean(images)
    # Saturation: blend each channel with the grey (channel mean) value.
    blend = saturation * tf.eye(3) + (1.0 - saturation) / 3.0
    # y = gains * (blend @ (contrast * x + (1 - contrast) * mean + brightness))
    weights = contrast * tf.transpose(blend) * gains[None, :]
    offset = ((1.0 - contrast) * mean + brightness) * tf.reduce_sum(blend, axis=1) * gains
    shape = tf.shape(images)
    mapped = tf.matmul(tf.reshape(images, [-1, 3]), weights) + offset
    return tf.clip_by_value(tf.reshape(mapped, shape), 0.0, 1.0)


def _to_example(window, config, augment):
    """Decode a window's JPEGs and arrange it as `(inputs, targets)`."""
    size = config.face.crop_size
    length = config.data.window_frames
    jpegs = tf.concat([window["identity_jpeg"][None], window["frames"]], axis=0)
    images = tf.map_fn(
        tfrecords.decode_jpeg, jpegs, fn_output_signature=tf.TensorSpec([None, None, 3], tf.uint8)
    )
    images = tf.ensure_shape(images, [length + 1, size, size, 3])
    images = tf.image.convert_image_dtype(images, tf.float32)
    if augment:
        images = _colour_jitter(images, window["seed"])
    num_units = len(config.action_units)
    inputs = {
        "identity_image": images[0],
        "audio_features": tf.ensure_shape(
            window["audio_features"],
            [length, config.audio.context_steps, config.audio.num_mel_bins],
        ),
    }
    targets = {
        "frames": images[1:],
        "au_intensity": tf.ensure_shape(window["au_intensity"], [length, num_units]),
        "au_mask": tf.ensure_shape(window["au_mask"], [length]),
        "face_mask": tf.ensure_shape(window["face_mask"], [length]),
        "landmarks": tf.ensure_shape(window["landmarks"], [length, tfrecords.NUM_LANDMARKS, 2]),
    }
    return inputs, targets


def _prepare_audio(record, seed, config, audio_augmentation, audio_normalization):
    """Augment one utterance's speech (training) and/or normalise its features."""
    if audio_augmentation is not None:
        return audio_augment.augment_record(
            record, seed + [0, 7], audio_augmentation, audio_normalization, config.audio
        )
    record = dict(record)
    record["audio_features"] = log_mel.normalize_features(
        record["audio_features"], audio_normalization, config.audio
    )
    return record


def _pipeline_share(batch_size, seed, input_context):
    """This input pipeline's batch, seed, pipeline count and index (one pipeline by default)."""
    per_pipeline_batch = batch_size
    pipeline_seed = seed
    num_pipelines, pipeline_id = 1, 0
    if input_context is not None:
        per_pipeline_batch = input_context.get_per_replica_batch_size(batch_size)
        num_pipelines = input_context.num_input_pipelines
        pipeline_id = input_context.input_pipeline_id
        if seed is not None:
            pipeline_seed = seed + _PIPELINE_SEED_STRIDE * pipeline_id
    return per_pipeline_batch, pipeline_seed, num_pipelines, pipeline_id


def _read_records(files, num_pipelines, pipeline_id, training, pipeline_seed, deterministic):
    """This pipeline's share of the parsed utterance records of `files`."""
    dataset = tf.data.Dataset.from_tensor_slices(files)
    shard_files = num_pipelines > 1 and len(files) >= num_pipelines
    if shard_files:
        dataset = dataset.shard(num_pipelines, pipeline_id)
    if training:
        dataset = dataset.shuffle(len(files), seed=pipeline_seed, reshuffle_each_iteration=True)
    dataset = dataset.interleave(
        tf.data.TFRecordDataset,
        cycle_length=min(len(files), 8),
        block_length=1,
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=deterministic,
    )
    if num_pipelines > 1 and not shard_files:
        dataset = dataset.shard(num_pipelines, pipeline_id)
    return dataset.map(
        lambda serialized: tfrecords.parse_example(serialized, False),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=deterministic,
    )


def _with_element_seeds(dataset, training, pipeline_seed):
    """Pair every record with a seed of two int64s (random when training; zeros otherwise)."""
    if training:
        randoms = tf.data.Dataset.random(seed=pipeline_seed, rerandomize_each_iteration=True)
    else:
        randoms = tf.data.Dataset.from_tensors(tf.constant(0, tf.int64)).repeat()
    seeds = randoms.batch(2)
    return tf.data.Dataset.zip((dataset, seeds))


def _with_prepared_audio(dataset, config, audio_augmentation, audio_normalization, deterministic):
    """Augment and/or normalise every record's speech (`_prepare_audio`)."""
    window = config.data.window_frames
    dataset = dataset.map(
        lambda record, element_seed: (
            _prepare_audio(record, element_seed, config, audio_augmentation, audio_normalization),
            element_seed,
        ),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=deterministic,
    )
    # A faster speed can leave an utterance shorter than one window.
    return dataset.filter(lambda record, _: record["num_frames"] >= window)


def make_dataset(
    files,
    config=AutalkConfig(),
    batch_size=8,
    training=True,
    seed=None,
    augment=False,
    input_context=None,
    shuffle_buffer=256,
    windows_per_utterance=None,
    check=True,
    audio_augmentation=None,
    audio_normalization="none",
):
    """Training (or evaluation) examples from prepared TFRecords.

    Args:
        files: a `.tfrecord` file, a glob pattern, a folder (all shards
            below it), or a list of these; `list_shards(dir, split)` gives
            one split.
        config: `AutalkConfig` (window length, identity gap, crop size, AU set).
        batch_size: the global batch size; with `input_context` each
            pipeline batches its replica's share.
        training: random windows, shuffled, incomplete last batch dropped;
            False: every non-overlapping window in file order, the identity
            frame the farthest one with a face.
        seed: makes the examples and their order the same on every run
            (each epoch still draws new windows); None: not reproducible.
        augment: colour jitter (brightness, contrast, saturation, white
            balance), the same for the identity image and the frames
            (training only).
        input_context: the `tf.distribute.InputContext` given by
            `strategy.distribute_datasets_from_function`.
        shuffle_buffer: windows in the shuffle buffer (training only).
        windows_per_utterance: random windows per utterance and epoch when
            training (default: `num_frames // window_frames`).
        check: check the first record fits `config` (`check_shard`).
        audio_augmentation: an `audio_augment.AudioAugmentation` (training
            only): noise, reverb, EQ, phone band, clipping, gain and speed
            drawn per utterance, features recomputed from the changed
            waveform; None: the prepared features.
        audio_normalization: "none" or "utterance" (`log_mel.normalize_features`),
            as the model being trained takes (`ModelConfig.audio_normalization`).

    Returns:
        A `tf.data.Dataset` of `(inputs, targets)` batches (see the module
        docstring for the keys and shapes).

    Raises:
        AutalkError: no files, or shards prepared with another config.

    Example:
    ```python
    dataset = make_dataset(list_shards("prepared", "train"), batch_size=8, seed=1)
    inputs, targets = next(iter(dataset))
    inputs["audio_features"].shape  # (8, 16, 20, 80)

    strategy = tf.distribute.MirroredStrategy()
    distributed = strategy.distribute_datasets_from_function(
        lambda context: make_dataset(files, batch_size=16, seed=1, input_context=context))
    ```
    """
    files = _resolve_files(files)
    log_mel.check_normalization(audio_normalization)
    if not training:
        audio_augmentation = None
    if not (isinstance(batch_size, int) and batch_size >= 1):
        raise AutalkError(f"batch_size must be a positive integer, got {batch_size!r}.")
    if check:
        check_shard(files[0], config)
    per_pipeline_batch, pipeline_seed, num_pipelines, pipeline_id = _pipeline_share(
        batch_size, seed, input_context
    )
    deterministic = seed is not None or not training
    dataset = _read_records(
        files, num_pipelines, pipeline_id, training, pipeline_seed, deterministic
    )
    window = config.data.window_frames
    dataset = dataset.filter(
        lambda record: (record["num_frames"] >= window) & (tf.reduce_sum(record["face_mask"]) > 0)
    )
    dataset = _with_element_seeds(dataset, training, pipeline_seed)
    if audio_augmentation is not None or audio_normalization != "none":
        dataset = _with_prepared_audio(
            dataset, config, audio_augmentation, audio_normalization, deterministic
        )
    dataset = dataset.map(
        lambda record, element_seed: _cut_windows(
            record, element_seed, config, training, windows_per_utterance
        ),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=deterministic,
    )
    dataset = dataset.unbatch()
    if training:
        dataset = dataset.shuffle(shuffle_buffer, seed=pipeline_seed, reshuffle_each_iteration=True)
    dataset = dataset.map(
        lambda window_: _to_example(window_, config, augment and training),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=deterministic,
    )
    dataset = dataset.batch(per_pipeline_batch, drop_remainder=training)
    options = tf.data.Options()
    options.deterministic = deterministic
    dataset = dataset.with_options(options)
    return dataset.prefetch(tf.data.AUTOTUNE)
