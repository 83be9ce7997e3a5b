"""Lip-sync scores from the audio-visual sync expert, and its training.

The expert (`keras_autalk.models.SyncExpert`) embeds every window of
`window` consecutive frames of a clip (mouth crops) and the matching window
of audio features. Following SyncNet's evaluation (Chung and Zisserman
2016), as used for Wav2Lip's LSE-D / LSE-C (Prajwal et al. 2020):

- `sync_distances`: for every audio-video offset `k` in
  `-max_offset .. max_offset`, the mean Euclidean distance between video
  window `i` and audio window `i + k` over the windows where both exist;
- `sync_scores`: **LSE-D**, the smallest of these mean distances (lower is
  better); **LSE-C**, the median over offsets minus that minimum (SyncNet's
  confidence; higher is better); and the **offset** where the minimum
  lies.

Offset sign: a positive offset `k` means the **audio lags the video** by
`k` frames: what the mouth shows at frame `i` is heard at frame `i + k`
(e.g. an audio track delayed by 3 frames gives +3). To put such a clip in
sync, play the audio `k` frames earlier. A negative offset means the audio
leads the video.

Unlike SyncNet's evaluation, these scores are on this package's scale: an
expert trained by `train_sync_expert` on a prepared corpus, embeddings of
unit length (distances in [0, 2]). Compare numbers from the same expert
only.

Training (`train_sync_expert`) reads **real frames only**: windows of the
prepared corpus' training split with their own audio (positives) against
the audio of the same utterance shifted by at least `min_shift` frames and
the audio of the other utterances in the batch (negatives). The loss is a
symmetric InfoNCE (contrastive cross-entropy over the batch): every
positive is scored against all the batch's negatives at once, the hard
ones (same face, same voice, only the timing differs) and the easy ones
(other utterances), which gives many more negatives per step than a
binary pair loss and makes the expert rank the true offset first, which is
what the offset search asks of it. Audio shifted by fewer than
`min_shift` frames is neither positive nor negative (neighbouring windows
overlap in time and co-articulation blurs a frame or two), and neither is
audio identical to the anchor's own (the silence before and after every
sentence), which no expert could tell apart.
"""

import argparse
import json
import pathlib
import time

import numpy as np

from keras_autalk.errors import AutalkError
from keras_autalk.files import atomic_output
from keras_autalk.native import import_tensorflow
from keras_autalk.training.callbacks import make_callbacks
from keras_autalk.training.fit import fit, learning_rate_schedule, window_config
from keras_autalk.training.recipes import verbosity
from keras_autalk.training.strategy import (
    distributed_dataset,
    is_chief,
    make_strategy,
    precision_and_xla,
)

tf = import_tensorflow()
import keras  # noqa: E402
from keras import ops  # noqa: E402

SYNC_EXPERT_FILE = "sync_expert.keras"
SYNC_EVAL_FILE = "sync_expert_eval.json"
DEFAULT_MAX_OFFSET = 15
# Frames each training example spans: every window of the expert at every
# position inside it, so one example gives positives and same-utterance
# negatives at shifts up to CHUNK_FRAMES - window.
DEFAULT_CHUNK_FRAMES = 16
DEFAULT_MIN_SHIFT = 5
# The evaluation shifts the audio by this many frames; the expert must find it.
DEFAULT_EVAL_SHIFT = 8
DEFAULT_TEMPERATURE = 0.1
SYNC_METRIC_NAMES = ("loss", "accuracy", "sync_gap")
# A logit that takes no part in the softmax.
_EXCLUDED = -1e9


# --------------------------------------------------------------------------
# Scores


def sync_distances(video_embeddings, audio_embeddings, max_offset=DEFAULT_MAX_OFFSET):
    """Mean audio-video embedding distance at every offset.

    Args:
        video_embeddings: `(N, D)`, one per video window of a clip, in time
            order.
        audio_embeddings: `(N, D)`, the audio windows at the same positions.
        max_offset: largest offset tried, in frames (each way); offsets
            with no overlapping window (`|k| >= N`) are left out.

    Returns:
        `(offsets, distances)`: int `(K,)` offsets from `-m` to `m` (with
        `m = min(max_offset, N - 1)`) and float `(K,)` mean distances, where
        the distance at offset `k` is the mean over every `i` with
        `0 <= i + k < N` of `|video[i] - audio[i + k]|`. A positive offset
        means the audio lags the video (see the module docstring).

    Raises:
        AutalkError: the two sets of embeddings do not match, or are empty.

    Example:
    >>> video = np.eye(6, dtype="float32")
    >>> audio = np.roll(video, 2, axis=0)   # audio[i + 2] == video[i]
    >>> offsets, distances = sync_distances(video, audio, max_offset=3)
    >>> int(offsets[np.argmin(distances)])
    2
    """
    video = np.asarray(video_embeddings, np.float64)
    audio = np.asarray(audio_embeddings, np.float64)
    if video.ndim != 2 or video.shape != audio.shape:
        raise AutalkError(
            f"The video and audio embeddings must both be (N, D), got {video.shape} and "
            f"{audio.shape}."
        )
    count = len(video)
    if count == 0:
        raise AutalkError("There are no windows to compare (the clip is too short).")
    if int(max_offset) < 0:
        raise AutalkError(f"max_offset must be 0 or more, got {max_offset}.")
    reach = min(int(max_offset), count - 1)
    offsets = np.arange(-reach, reach + 1)
    distances = np.empty(len(offsets))
    for index, offset in enumerate(offsets):
        first, last = max(0, -offset), min(count, count - offset)
        gaps = video[first:last] - audio[first + offset : last + offset]
        distances[index] = np.sqrt(np.sum(gaps * gaps, axis=1)).mean()
    return offsets, distances


def _as_frames(frames):
    frames = np.asarray(frames)
    if frames.dtype == np.uint8:
        return frames.astype(np.float32) / 255.0
    return frames.astype(np.float32)


def clip_embeddings(expert, frames, audio_features, batch_size=64):
    """The expert's embeddings of every window of a clip.

    Args:
        expert: a `SyncExpert`.
        frames: `(T, S, S, 3)` aligned face crops in [0, 1] (or uint8).
        audio_features: `(T, context, bins)`, each frame's audio window.
        batch_size: windows per forward pass (bounds memory on long clips).

    Returns:
        `(video, audio)` float32 `(N, D)` with `N = T - window + 1`: window
        `i` covers frames `i .. i + window - 1`.

    Raises:
        AutalkError: mismatched lengths, or fewer frames than one window.

    Example:
    ```python
    video, audio = clip_embeddings(expert, frames, audio_features)
    ```
    """
    frames = _as_frames(frames)
    audio_features = np.asarray(audio_features, np.float32)
    if frames.ndim != 4 or audio_features.ndim != 3:
        raise AutalkError(
            f"The frames must be (T, H, W, 3) and the audio features (T, context, bins), got "
            f"{frames.shape} and {audio_features.shape}."
        )
    if len(frames) != len(audio_features):
        raise AutalkError(
            f"The clip has {len(frames)} frames but {len(audio_features)} audio feature "
            "windows; they must match frame for frame."
        )
    window = expert.window
    if len(frames) < window:
        raise AutalkError(
            f"The clip has {len(frames)} frames; the sync expert needs at least {window}."
        )
    batch_size = max(1, int(batch_size))
    mouths = np.concatenate(
        [
            np.asarray(expert.mouth_images(frames[start : start + batch_size]))
            for start in range(0, len(frames), batch_size)
        ]
    )
    count = len(frames) - window + 1
    video, audio = [], []
    for start in range(0, count, batch_size):
        stop = min(count, start + batch_size)
        video_windows = np.stack([mouths[i : i + window] for i in range(start, stop)])
        audio_windows = np.stack([audio_features[i : i + window] for i in range(start, stop)])
        video.append(np.asarray(expert.embed_video(expert.stack_frames(video_windows))))
        audio.append(np.asarray(expert.embed_audio(audio_windows)))
    return np.concatenate(video), np.concatenate(audio)


def sync_scores(expert, frames, audio_features, max_offset=DEFAULT_MAX_OFFSET, batch_size=64):
    """LSE-D, LSE-C and the audio-video offset of one clip.

    Args:
        expert: a trained `SyncExpert` (see `load_sync_expert`).
        frames: `(T, S, S, 3)` aligned face crops in [0, 1] (real or
            generated).
        audio_features: `(T, context, bins)`: each frame's audio window
            (`keras_autalk.commands.features`, `AudioConfig`).
        max_offset: offsets tried, each way, in frames.
        batch_size: windows per forward pass.

    Returns:
        A dict: "lse_d" (the smallest mean distance over offsets; lower is
        better), "lse_c" (median over offsets minus that minimum; higher
        is more confident), "offset" (the offset of the minimum, in frames;
        positive: the audio lags the video), "distance_at_zero" (the mean
        distance with no offset: how close the clip is *as it is* to in
        sync) and "windows" (windows compared).

    Raises:
        AutalkError: mismatched or too short inputs.

    Example:
    ```python
    scores = sync_scores(expert, frames, audio_features)
    scores["lse_d"], scores["lse_c"], scores["offset"]
    ```
    """
    video, audio = clip_embeddings(expert, frames, audio_features, batch_size)
    offsets, distances = sync_distances(video, audio, max_offset)
    best = int(np.argmin(distances))
    minimum = float(distances[best])
    return {
        "lse_d": minimum,
        "lse_c": float(np.median(distances) - minimum),
        "offset": int(offsets[best]),
        "distance_at_zero": float(distances[offsets == 0][0]),
        "windows": int(len(video)),
    }


def load_sync_expert(path):
    """A trained `SyncExpert` from its `.keras` file.

    Raises:
        AutalkError: the file is missing or holds no sync expert.

    Example:
    ```python
    expert = load_sync_expert("runs/sync/sync_expert.keras")
    ```
    """
    from keras_autalk.models.sync_expert import SyncExpert
    from keras_autalk.presets.model_files import load_model_file

    return load_model_file(path, SyncExpert, "sync expert")


# --------------------------------------------------------------------------
# Training


def _fingerprint(windows):
    """`(M, 2)`: mean and mean square of each window (equal for equal windows)."""
    flat = ops.reshape(ops.cast(windows, "float32"), (ops.shape(windows)[0], -1))
    return ops.stack([ops.mean(flat, axis=1), ops.mean(flat * flat, axis=1)], axis=1)


@keras.saving.register_keras_serializable(package="keras_autalk")
class SyncExpertTrainer(keras.Model):
    """Trains a `SyncExpert` contrastively on chunks of real video.

    Each example is a chunk of `C` consecutive frames with their audio
    features. The expert embeds the video window and the audio window at
    every one of the chunk's `N = C - window + 1` positions; for a batch
    of `B` chunks the `B * N` video embeddings are scored against the
    `B * N` audio embeddings (cosine / `temperature`). For each video
    window its own audio window is the positive, and the same chunk's
    audio at shifts `>= min_shift` and every other chunk's audio are the
    negatives (and the same from each audio window to the video windows):
    a symmetric InfoNCE loss. Left out (neither positive nor negative):
    the same chunk's audio at shifts `1 .. min_shift - 1`, and any window
    whose input equals that of a window fewer than `min_shift` from the
    anchor's own position (silence sounds alike in every utterance, and two
    chunks of one utterance can overlap; see `_excluded`). Windows with a
    frame where no face was found take no part.

    Metrics: "loss"; "accuracy", how often the positive scores highest
    among its candidates; "sync_gap", the mean cosine of the positives
    minus that of the same-chunk negatives.

    Args:
        expert: the `SyncExpert` to train (saved on its own afterwards).
        **kwargs: `keras.Model` arguments.

    Call arguments:
        A dict with "frames" `(B, C, S, S, 3)`, "audio_features"
        `(B, C, context, bins)` and "face_mask" `(B, C)`.

    Example:
    ```python
    trainer = SyncExpertTrainer(SyncExpert())
    trainer.compile(keras.optimizers.Adam(1e-3), min_shift=5)
    trainer.fit(sync_batches(dataset), steps_per_epoch=100)
    ```
    """

    def __init__(self, expert, **kwargs):
        super().__init__(**kwargs)
        self.expert = expert
        self.trackers = [keras.metrics.Mean(name=name) for name in SYNC_METRIC_NAMES]
        self.temperature = DEFAULT_TEMPERATURE
        self.min_shift = DEFAULT_MIN_SHIFT

    def compile(
        self, optimizer, temperature=DEFAULT_TEMPERATURE, min_shift=DEFAULT_MIN_SHIFT, **kwargs
    ):
        """Set the optimiser, the softmax temperature and the smallest negative shift.

        Args:
            optimizer: a Keras optimiser.
            temperature: cosine similarities are divided by it.
            min_shift: same-chunk audio at least this many frames away is a
                negative.
            **kwargs: other `keras.Model.compile` arguments (`jit_compile`).
        """
        super().compile(optimizer=optimizer, **kwargs)
        self.temperature = float(temperature)
        self.min_shift = int(min_shift)

    @property
    def metrics(self):
        return list(self.trackers)

    def build(self, input_shape):
        self.expert.build(
            {
                "mouth_frames": (None, self.expert.window) + tuple(input_shape["frames"][2:]),
                "audio_features": (None, self.expert.window)
                + tuple(input_shape["audio_features"][2:]),
            }
        )
        self.built = True

    def call(self, inputs, training=False):
        """Every window of the chunks, embedded: a dict of `(M,)`-long tensors.

        "video", "audio" `(M, D)` embeddings, "valid" (1 where every frame
        has a face), "chunk" and "position" (which chunk, where in it) and
        "video_print", "audio_print" `(M, 2)` (the mean and mean square of
        each window's input, which tell identical windows apart from the
        rest), with `M = B * (C - window + 1)`.
        """
        from keras_autalk.models.sync_expert import sliding_windows

        expert = self.expert
        window = expert.window
        mouths = expert.mouth_images(inputs["frames"])  # (B, C, h, w)
        video_windows = sliding_windows(mouths, window, axis=-1)  # (B, N, h, w, window)
        audio_windows = sliding_windows(inputs["audio_features"], window, axis=2)
        face = sliding_windows(ops.cast(inputs["face_mask"], "float32"), window, axis=-1)
        chunks, positions = ops.shape(video_windows)[0], ops.shape(video_windows)[1]
        video_windows = ops.reshape(video_windows, (-1,) + tuple(video_windows.shape[2:]))
        audio_windows = ops.reshape(audio_windows, (-1,) + tuple(audio_windows.shape[2:]))
        return {
            "video": expert.embed_video(video_windows, training=training),
            "audio": expert.embed_audio(audio_windows, training=training),
            "valid": ops.reshape(ops.min(face, axis=-1), (-1,)),
            "chunk": ops.repeat(ops.arange(chunks), positions),
            "position": ops.tile(ops.arange(positions), [chunks]),
            "video_print": _fingerprint(video_windows),
            "audio_print": _fingerprint(audio_windows),
        }

    def _excluded(self, windows):
        """`(M, M)` bool: pairs that are neither positive nor negative.

        Row `i` excludes the same chunk's windows `1 .. min_shift - 1`
        away, and every window whose input equals that of a window of its
        own chunk fewer than `min_shift` away: silence is silence in every
        utterance, and two chunks of one utterance can overlap. The second
        rule is applied to the audio (rows: video anchors) and to the video
        (the transposed direction) separately.
        """
        chunk, position = windows["chunk"], windows["position"]
        own = (chunk[:, None] == chunk[None, :]) & (
            ops.abs(position[:, None] - position[None, :]) < self.min_shift
        )
        own = ops.cast(own, "float32")
        diagonal = ops.eye(ops.shape(chunk)[0], dtype="bool")

        def same_content(prints):
            gap = ops.abs(prints[:, None, :] - prints[None, :, :])
            scale = 1e-5 * (1.0 + ops.abs(prints[:, None, :]))
            equal = ops.cast(ops.all(gap <= scale, axis=-1), "float32")
            return (ops.matmul(own, equal) > 0.5) & ~diagonal

        return same_content(windows["audio_print"]), same_content(windows["video_print"])

    def _contrastive_losses(self, inputs, training):
        windows = self(inputs, training=training)
        video, audio, valid = windows["video"], windows["audio"], windows["valid"]
        cosine = ops.matmul(video, ops.transpose(audio))  # (M, M)
        usable = valid[:, None] * valid[None, :] > 0.5
        audio_excluded, video_excluded = self._excluded(windows)
        scaled = cosine / self.temperature
        video_logits = ops.where(usable & ~audio_excluded, scaled, _EXCLUDED)
        audio_logits = ops.where(usable & ~ops.transpose(video_excluded), scaled, _EXCLUDED)
        labels = ops.arange(ops.shape(video)[0])
        video_to_audio = keras.losses.sparse_categorical_crossentropy(
            labels, video_logits, from_logits=True
        )
        audio_to_video = keras.losses.sparse_categorical_crossentropy(
            labels, ops.transpose(audio_logits), from_logits=True
        )
        per_window = 0.5 * (video_to_audio + audio_to_video) * valid
        correct = ops.cast(ops.argmax(video_logits, axis=1) == labels, "float32")
        chunk, position = windows["chunk"], windows["position"]
        hard = ops.cast(
            (chunk[:, None] == chunk[None, :])
            & usable
            & ~audio_excluded
            & (ops.abs(position[:, None] - position[None, :]) >= self.min_shift),
            "float32",
        )
        hard_mean = ops.sum(cosine * hard, axis=1) / ops.maximum(ops.sum(hard, axis=1), 1.0)
        return (
            per_window,
            valid,
            {"accuracy": correct, "sync_gap": ops.diagonal(cosine) - hard_mean},
        )

    def _update_trackers(self, per_window, valid, values):
        values = dict(values, loss=per_window)
        for tracker in self.trackers:
            tracker.update_state(values[tracker.name], sample_weight=valid)
        return {tracker.name: tracker.result() for tracker in self.trackers}

    @staticmethod
    def _chunk_inputs(data):
        return data[0] if isinstance(data, (tuple, list)) else data

    def train_step(self, data):
        inputs = self._chunk_inputs(data)
        with tf.GradientTape() as tape:
            per_window, valid, values = self._contrastive_losses(inputs, training=True)
            # Mean over the global batch's windows (`tf.distribute` sums
            # the replicas' gradients).
            loss = self.optimizer.scale_loss(tf.nn.compute_average_loss(per_window))
        variables = self.expert.trainable_variables
        gradients = tape.gradient(loss, variables)
        self.optimizer.apply_gradients(zip(gradients, variables))
        return self._update_trackers(per_window, valid, values)

    def test_step(self, data):
        per_window, valid, values = self._contrastive_losses(
            self._chunk_inputs(data), training=False
        )
        return self._update_trackers(per_window, valid, values)

    def get_config(self):
        config = super().get_config()
        config["expert"] = keras.saving.serialize_keras_object(self.expert)
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["expert"] = keras.saving.deserialize_keras_object(config["expert"])
        return cls(**config)


def sync_batches(dataset, flip_seed=None):
    """Pipeline batches -> the `SyncExpertTrainer`'s inputs (real frames only).

    Args:
        dataset: batches of `keras_autalk.datasets.pipeline.make_dataset`.
        flip_seed: mirror each chunk left-right (all its frames alike) at
            random with this seed; None: no mirroring. Mouth movements
            are left-right symmetric, so a mirrored chunk keeps its sync.

    Returns:
        A dataset of dicts "frames", "audio_features", "face_mask".

    Example:
    ```python
    chunks = sync_batches(pipeline.make_dataset(files, batch_size=8), flip_seed=0)
    ```
    """

    def arrange(inputs, targets):
        return {
            "frames": targets["frames"],
            "audio_features": inputs["audio_features"],
            "face_mask": targets["face_mask"],
        }

    batches = dataset.map(arrange, num_parallel_calls=tf.data.AUTOTUNE)
    if flip_seed is None:
        return batches
    seeds = tf.data.Dataset.random(seed=int(flip_seed), rerandomize_each_iteration=True).batch(2)

    def mirror(batch, seed):
        frames = batch["frames"]
        draws = tf.random.stateless_uniform(tf.shape(frames)[:1], seed=seed)
        flip = tf.reshape(draws < 0.5, [-1, 1, 1, 1, 1])
        return dict(batch, frames=tf.where(flip, tf.reverse(frames, axis=[3]), frames))

    return tf.data.Dataset.zip((batches, seeds)).map(mirror, num_parallel_calls=tf.data.AUTOTUNE)


def _utterances(files):
    """`(speaker, utterance_id, frames uint8, audio_features)` of every record."""
    from keras_autalk.datasets import tfrecords

    for path in sorted(str(f) for f in files):
        for record in tf.data.TFRecordDataset(path):
            parsed = tfrecords.parse_example(record)
            yield (
                parsed["speaker"].numpy().decode(),
                parsed["utterance_id"].numpy().decode(),
                parsed["frames"].numpy(),
                parsed["audio_features"].numpy(),
            )


def _summary(rows, key, target):
    """Mean scores of `rows[key]` and the fraction whose offset is `target` (+-1)."""
    scores = [row[key] for row in rows]
    return {
        "offset_within_1_fraction": float(
            np.mean([abs(s["offset"] - target) <= 1 for s in scores])
        ),
        "offset_exact_fraction": float(np.mean([s["offset"] == target for s in scores])),
        "mean_lse_d": float(np.mean([s["lse_d"] for s in scores])),
        "mean_lse_c": float(np.mean([s["lse_c"] for s in scores])),
        "mean_distance_at_zero": float(np.mean([s["distance_at_zero"] for s in scores])),
    }


def evaluate_sync_expert(
    expert, files, shift=DEFAULT_EVAL_SHIFT, max_offset=DEFAULT_MAX_OFFSET, max_utterances=None
):
    """How well the expert finds the sync of held-out real clips.

    Every utterance of `files` is scored twice: as recorded ("aligned",
    the best offset should be 0) and with its audio delayed by `shift`
    frames ("shifted": frames `shift..T-1` against audio `0..T-shift-1`,
    the best offset should be `+shift`).

    Args:
        expert: a `SyncExpert`.
        files: prepared `.tfrecord` files (e.g. the "test" split).
        shift: the audio delay of the shifted copy, in frames.
        max_offset: offsets searched, each way.
        max_utterances: score at most this many utterances (None: all).

    Returns:
        A dict: "utterances", "shift", "max_offset", "aligned" and
        "shifted" (each: "offset_within_1_fraction" (best offset within 1
        frame of the truth: 0, resp. `shift`), "offset_exact_fraction",
        "mean_lse_d", "mean_lse_c", "mean_distance_at_zero"), and
        "by_speaker": speaker -> {"utterances", "aligned_within_1",
        "shifted_within_1"}.

    Raises:
        AutalkError: no utterance is long enough to be scored.

    Example:
    ```python
    report = evaluate_sync_expert(expert, list_shards("prepared", "test"))
    report["aligned"]["offset_within_1_fraction"]
    ```
    """
    rows = []
    for speaker, _, frames, audio_features in _utterances(files):
        if max_utterances is not None and len(rows) >= max_utterances:
            break
        if len(frames) < shift + expert.window + 1:
            continue
        rows.append(
            {
                "speaker": speaker,
                "aligned": sync_scores(expert, frames, audio_features, max_offset),
                "shifted": sync_scores(
                    expert,
                    frames[shift:],
                    audio_features[:-shift] if shift else audio_features,
                    max_offset,
                ),
            }
        )
    if not rows:
        raise AutalkError("The evaluation files hold no utterance long enough to score sync.")
    report = {
        "utterances": len(rows),
        "shift": int(shift),
        "max_offset": int(max_offset),
        "aligned": _summary(rows, "aligned", 0),
        "shifted": _summary(rows, "shifted", int(shift)),
        "by_speaker": {},
    }
    for speaker in sorted({row["speaker"] for row in rows}):
        mine = [row for row in rows if row["speaker"] == speaker]
        report["by_speaker"][speaker] = {
            "utterances": len(mine),
            "aligned_within_1": _summary(mine, "aligned", 0)["offset_within_1_fraction"],
            "shifted_within_1": _summary(mine, "shifted", int(shift))["offset_within_1_fraction"],
        }
    return report


def format_sync_report(report):
    """A Markdown table of `evaluate_sync_expert`'s report."""
    lines = [
        "| audio | best offset within 1 of truth | exact | LSE-D | LSE-C | distance at offset 0 |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for key, label in (
        ("aligned", "as recorded (truth 0)"),
        ("shifted", f"delayed {report['shift']} frames (truth +{report['shift']})"),
    ):
        value = report[key]
        lines.append(
            f"| {label} | {value['offset_within_1_fraction']:.3f} | "
            f"{value['offset_exact_fraction']:.3f} | {value['mean_lse_d']:.3f} | "
            f"{value['mean_lse_c']:.3f} | {value['mean_distance_at_zero']:.3f} |"
        )
    return "\n".join(lines)


def _check_sync_training(strategy, window, chunk_frames, min_shift, batch_size):
    """Refuse a multi-worker strategy, a chunk with no negatives, or a batch that won't split."""
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        raise AutalkError(
            "The sync expert trains with the 'default' or 'mirrored' strategy, not 'multi-worker'."
        )
    if int(window) < 1 or int(chunk_frames) < int(window) + int(min_shift):
        raise AutalkError(
            f"A chunk of {chunk_frames} frames leaves no negative {min_shift} or more frames "
            f"away from a window of {window}; use at least {int(window) + int(min_shift)} frames."
        )
    if batch_size % strategy.num_replicas_in_sync:
        raise AutalkError(
            f"The batch of {batch_size} chunks does not split over "
            f"{strategy.num_replicas_in_sync} replicas."
        )


def _sync_train_data(strategy, train_files, chunked, batch_size, seed, augment):
    """`make_train_data(skip)` for `fit`: the training split's chunks, over `strategy`."""
    from keras_autalk.datasets import pipeline

    def make_chunks(context):
        pipeline_id = context.input_pipeline_id if context else 0
        return sync_batches(
            pipeline.make_dataset(
                train_files,
                chunked,
                batch_size=batch_size,
                seed=seed,
                augment=augment,
                input_context=context,
            ),
            flip_seed=(seed + 7919 * (pipeline_id + 1)) if augment else None,
        )

    def make_train_data(skip):
        return distributed_dataset(strategy, make_chunks, skip)

    return make_train_data


def _build_sync_trainer(strategy, window, options, sample, schedule, temperature, min_shift, jit):
    """A new `SyncExpert` and its compiled, built `SyncExpertTrainer`, under `strategy`."""
    from keras_autalk.models.sync_expert import SyncExpert

    with strategy.scope():
        expert = SyncExpert(window=window, name="sync_expert", **options)
        trainer = SyncExpertTrainer(expert, name="sync_expert_trainer")
        trainer.build({key: tuple(value.shape) for key, value in sample.items()})
        trainer.compile(
            keras.optimizers.Adam(schedule, clipnorm=1.0),
            temperature=temperature,
            min_shift=min_shift,
            jit_compile=jit,
        )
        trainer.optimizer.build(expert.trainable_variables)
    return expert, trainer


def _save_sync_outputs(out_dir, expert, report):
    """Write the expert and its evaluation into `out_dir`, atomically."""
    with atomic_output(out_dir / SYNC_EXPERT_FILE, "sync expert") as partial:
        expert.save(partial)
    with atomic_output(out_dir / SYNC_EVAL_FILE, "sync evaluation") as partial:
        partial.write_text(json.dumps(report, indent=2) + "\n")


def train_sync_expert(
    prepared_dir,
    out_dir,
    epochs=8,
    steps_per_epoch=150,
    batch_size=8,
    window=5,
    seed=0,
    chunk_frames=DEFAULT_CHUNK_FRAMES,
    min_shift=DEFAULT_MIN_SHIFT,
    temperature=DEFAULT_TEMPERATURE,
    learning_rate=1e-3,
    strategy=None,
    backup_every=50,
    validation_steps=10,
    augment=True,
    eval_shift=DEFAULT_EVAL_SHIFT,
    max_offset=DEFAULT_MAX_OFFSET,
    expert_options=None,
    jit_compile="auto",
    mixed_precision="auto",
    verbose="auto",
    config=None,
    log=print,
):
    """Train the lip-sync expert on a prepared corpus's real frames; evaluate it.

    Chunks of `chunk_frames` frames of the training split (random
    positions; colour jitter and mirroring with `augment`) train a
    `SyncExpert` through `SyncExpertTrainer` (symmetric InfoNCE, see the
    module docstring). Nothing generated is ever shown to it. The run is
    resumable (`keras_autalk.training.fit.fit`); at the end it writes
    `out_dir/sync_expert.keras` and `out_dir/sync_expert_eval.json`
    (`evaluate_sync_expert` on the "test" split, plus "train_seconds").

    Args:
        prepared_dir: the folder `autalk prepare` wrote (train and test).
        out_dir: the run's output folder.
        epochs, steps_per_epoch: length of the run.
        batch_size: global batch in chunks.
        window: frames per expert window.
        seed: weights initialisation and data order.
        chunk_frames: frames per chunk (> `window + min_shift`).
        min_shift: same-utterance audio at least this many frames away is
            a negative.
        temperature: InfoNCE softmax temperature.
        learning_rate: Adam's peak learning rate (warm-up, cosine decay).
        strategy: a "default" or "mirrored" `tf.distribute.Strategy`.
        backup_every: steps between resumable backups.
        validation_steps: test-split batches evaluated each epoch (0: none).
        augment: colour jitter and left-right mirroring of training chunks.
        eval_shift: audio delay the evaluation must detect, in frames.
        max_offset: offsets searched by the evaluation, each way.
        expert_options: `SyncExpert` arguments (sizes) to change.
        jit_compile, mixed_precision: "auto", "on" or "off".
        verbose: `model.fit` verbosity.
        config: `AutalkConfig` (default: its defaults).
        log: a `print`-like function for progress messages.

    Returns:
        `(expert, report)`: the trained `SyncExpert` and the evaluation.

    Raises:
        AutalkError: bad sizes, a multi-worker strategy, or no prepared data.

    Example:
    ```python
    expert, report = train_sync_expert("prepared/demo", "runs/sync", epochs=1,
                                       steps_per_epoch=10)
    ```
    """
    from keras_autalk.files import refuse_overwriting_inputs

    refuse_overwriting_inputs([("output folder", out_dir)], [("prepared folder", prepared_dir)])
    from keras_autalk.config import AutalkConfig
    from keras_autalk.datasets import pipeline

    config = config or AutalkConfig()
    strategy = strategy or tf.distribute.get_strategy()
    _check_sync_training(strategy, window, chunk_frames, min_shift, batch_size)
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    train_files = pipeline.list_shards(prepared_dir, "train")
    test_files = pipeline.list_shards(prepared_dir, "test")
    chunked = window_config(config, chunk_frames)
    _, jit = precision_and_xla(mixed_precision, jit_compile)
    make_train_data = _sync_train_data(strategy, train_files, chunked, batch_size, seed, augment)
    test_chunks = sync_batches(
        pipeline.make_dataset(test_files, chunked, batch_size=batch_size, training=False)
    )
    sample = next(iter(test_chunks))
    validation = test_chunks.repeat() if validation_steps else None

    keras.utils.set_random_seed(int(seed))
    options = dict(expert_options or {})
    options.setdefault("image_size", config.face.crop_size)
    schedule = learning_rate_schedule(learning_rate, epochs * steps_per_epoch)
    expert, trainer = _build_sync_trainer(
        strategy, window, options, sample, schedule, temperature, min_shift, jit
    )
    callbacks, _ = make_callbacks(out_dir, strategy, backup_every=backup_every)
    log(
        f"Sync expert ({expert.count_params():,} parameters, window {window}): {epochs} epochs "
        f"x {steps_per_epoch} steps of {batch_size} chunks of {chunk_frames} frames "
        f"({batch_size * (chunk_frames - window + 1)} windows), "
        f"{strategy.num_replicas_in_sync} replica(s)."
    )
    start = time.perf_counter()
    fit(
        trainer,
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
    report = evaluate_sync_expert(expert, test_files, shift=eval_shift, max_offset=max_offset)
    report["train_seconds"] = round(elapsed, 1)
    if is_chief(strategy):
        _save_sync_outputs(out_dir, expert, report)
    log(
        f"Sync expert on the test split ({report['utterances']} utterances):\n"
        + format_sync_report(report)
    )
    return expert, report


# --------------------------------------------------------------------------
# Recipe


def sync_expert_parser(
    description, prepared="prepared/demo", epochs=8, steps_per_epoch=150, batch_size=8
):
    """The command-line options of a sync-expert recipe, with its defaults.

    Example:
    ```python
    args = sync_expert_parser("Train it.").parse_args(["--out", "runs/sync"])
    ```
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--prepared",
        default=prepared,
        help=f"folder written by `autalk prepare` (default {prepared})",
    )
    parser.add_argument("--out", required=True, help="output folder of the run")
    parser.add_argument("--epochs", type=int, default=epochs)
    parser.add_argument("--steps-per-epoch", type=int, default=steps_per_epoch)
    parser.add_argument(
        "--batch-size",
        type=int,
        default=batch_size,
        help=f"global batch in chunks of --chunk-frames frames (default {batch_size})",
    )
    parser.add_argument("--window", type=int, default=5, help="frames per expert window")
    parser.add_argument("--chunk-frames", type=int, default=DEFAULT_CHUNK_FRAMES)
    parser.add_argument(
        "--min-shift",
        type=int,
        default=DEFAULT_MIN_SHIFT,
        help="same-utterance audio this many frames away or more is a negative",
    )
    parser.add_argument(
        "--eval-shift",
        type=int,
        default=DEFAULT_EVAL_SHIFT,
        help="audio delay (frames) the final evaluation must detect",
    )
    parser.add_argument("--strategy", default="default", choices=("default", "mirrored"))
    parser.add_argument(
        "--logical-cpus",
        type=int,
        default=None,
        help="split the CPU into this many devices (to try 'mirrored' on CPU)",
    )
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--backup-every", type=int, default=50, help="steps between resumable backups"
    )
    parser.add_argument("--validation-steps", type=int, default=10)
    parser.add_argument("--jit-compile", default="auto", choices=("auto", "on", "off"))
    parser.add_argument("--mixed-precision", default="auto", choices=("auto", "on", "off"))
    parser.add_argument(
        "--verbose",
        type=int,
        default=None,
        choices=(0, 1, 2),
        help="progress: 0 none, 1 bar, 2 a line per epoch (default: bar on a terminal)",
    )
    return parser


def run_sync_expert_recipe(args, log=print):
    """Run the sync-expert training from parsed recipe options."""
    strategy = make_strategy(args.strategy, args.logical_cpus)
    return train_sync_expert(
        args.prepared,
        args.out,
        epochs=args.epochs,
        steps_per_epoch=args.steps_per_epoch,
        batch_size=args.batch_size,
        window=args.window,
        seed=args.seed,
        chunk_frames=args.chunk_frames,
        min_shift=args.min_shift,
        learning_rate=args.learning_rate,
        strategy=strategy,
        backup_every=args.backup_every,
        validation_steps=args.validation_steps,
        eval_shift=args.eval_shift,
        jit_compile=args.jit_compile,
        mixed_precision=args.mixed_precision,
        verbose=verbosity(args),
        log=log,
    )


__all__ = [
    "SyncExpertTrainer",
    "clip_embeddings",
    "evaluate_sync_expert",
    "format_sync_report",
    "load_sync_expert",
    "run_sync_expert_recipe",
    "sync_batches",
    "sync_distances",
    "sync_expert_parser",
    "sync_scores",
    "train_sync_expert",
]
