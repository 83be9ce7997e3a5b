"""`SyncExpert`: a SyncNet-style audio-visual lip-sync expert.

Two small convolutional streams map a short window of mouth crops and the
matching window of audio features to L2-normalised embeddings that are close
when the audio is what the mouth says at that moment and far apart when it
is not (Chung and Zisserman, "Out of time: automated lip sync in the wild",
2016; the expert Wav2Lip's LSE-D / LSE-C metrics are read with).

It is trained on its own (`keras_autalk.evaluation.sync.train_sync_expert`),
on real frames only, and then only *reads* videos: the distance of a
generated clip's mouth to its audio, over a range of audio-video offsets,
gives the lip-sync scores of `keras_autalk.evaluation.sync.sync_scores`.
"""

import keras
from keras import ops

from keras_autalk.config import FaceConfig

# ITU-R BT.601 luma weights: the mouth's shape is in its brightness, and one
# channel per frame lets `window` frames stack on the channel axis.
LUMA_WEIGHTS = (0.299, 0.587, 0.114)
# Variance floors of the per-window standardisation: a flat (silent, or
# motionless) window is not blown up into noise.
_VIDEO_VARIANCE_FLOOR = 1e-3
_AUDIO_VARIANCE_FLOOR = 1.0
# Batch-norm statistics follow training quickly: a short run's moving
# averages must already describe the data when it is evaluated.
_BATCH_NORM_MOMENTUM = 0.9


def _build_chain(layers, shape):
    """Builds `layers` one after the other from `shape` (skipping built ones)."""
    for layer in layers:
        if not layer.built:
            layer.build(shape)
        shape = layer.compute_output_shape(shape)
    return shape


def sliding_windows(sequence, window, axis):
    """Every run of `window` consecutive steps of `sequence` (B, T, ...).

    Args:
        sequence: a `(B, T, ...)` tensor.
        window: steps per run.
        axis: where the `window` steps go in each run (an axis of the
            result, which is `(B, T - window + 1, ...)` with one more axis).

    Returns:
        `(B, N, ...)` with `N = T - window + 1`: run `i` holds steps
        `i .. i + window - 1`, stacked on `axis`.

    Example:
    >>> x = np.arange(6, dtype="float32").reshape(1, 6)
    >>> np.asarray(sliding_windows(x, 3, axis=-1))[0, :, :].tolist()[0]
    [0.0, 1.0, 2.0]
    """
    count = ops.shape(sequence)[1] - window + 1
    runs = [sequence[:, start : start + count] for start in range(window)]
    return ops.stack(runs, axis=axis)


@keras.saving.register_keras_serializable(package="keras_autalk")
class SyncExpert(keras.Model):
    """Mouth-crop windows and audio windows to comparable embeddings.

    Video stream: each frame's mouth region (`mouth_box` of the aligned
    face crop, by default its lower half), converted to grey, averaged
    down by `downscale`, and `window` consecutive frames stacked on the
    channel axis (SyncNet's early fusion of time), standardised per window
    (so brightness and contrast of a face do not matter), then one stage
    per entry of `video_filters` (stride-2 4x4 and 3x3 convolutions, each
    with batch normalisation and LeakyReLU(0.2)), flattened (aligned crops
    put the lips at a fixed place), a hidden dense layer and the embedding.
    Audio stream: the `window` frames' feature windows `(context, bins)`
    concatenated over time into one `(window * context, bins)` image,
    standardised, one such stage per entry of `audio_filters`, flattened
    (formant positions matter), a hidden dense layer and the embedding.
    Both embeddings are L2-normalised, so their Euclidean distance is in
    [0, 2] and `1 - distance**2 / 2` is their cosine. The default sizes
    (2.2 M weights) train on a CPU.

    Args:
        window: consecutive video frames per example (SyncNet: 5).
        embedding_dim: size of both embeddings.
        video_filters: filters of each stride-2 stage of the video stream.
        audio_filters: filters of each stride-2 stage of the audio stream.
        image_size: side of the aligned face crops it is given.
        mouth_box: `(top, bottom, left, right)` of the mouth region as
            fractions of the face crop.
        downscale: the mouth region is averaged down by this factor.
        **kwargs: `keras.Model` arguments.

    Call arguments:
        inputs: a dict with "mouth_frames", `(B, window, H, W, 3)` in [0, 1]:
            aligned face crops (`H = W = image_size`) or mouth regions
            already cut out (`mouth_region_shape`); and "audio_features",
            `(B, window, context, bins)`: each frame's audio window.

    Returns (from `call`):
        `(video_embedding, audio_embedding)`, each `(B, embedding_dim)`,
        float32, unit length.

    Example:
    >>> expert = SyncExpert(video_filters=(8, 16), audio_filters=(8, 16),
    ...                     embedding_dim=16, image_size=32)
    >>> video, audio = expert({
    ...     "mouth_frames": np.zeros((2, 5, 32, 32, 3), "float32"),
    ...     "audio_features": np.zeros((2, 5, 20, 80), "float32")})
    >>> tuple(video.shape), tuple(audio.shape)
    ((2, 16), (2, 16))
    """

    def __init__(
        self,
        window=5,
        embedding_dim=128,
        video_filters=(16, 32, 64, 128),
        audio_filters=(16, 32, 64, 128),
        image_size=FaceConfig().crop_size,
        mouth_box=(0.5, 1.0, 0.0, 1.0),
        downscale=2,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.window = int(window)
        self.embedding_dim = int(embedding_dim)
        self.video_filters = tuple(int(f) for f in video_filters)
        self.audio_filters = tuple(int(f) for f in audio_filters)
        self.image_size = int(image_size)
        self.mouth_box = tuple(float(v) for v in mouth_box)
        self.downscale = int(downscale)
        if self.window < 1:
            raise ValueError(f"window must be at least 1, got {window}.")
        if not self.video_filters or not self.audio_filters:
            raise ValueError("video_filters and audio_filters need at least one stage each.")
        top, bottom, left, right = self.mouth_box
        if not (0.0 <= top < bottom <= 1.0 and 0.0 <= left < right <= 1.0):
            raise ValueError(
                f"mouth_box must be (top, bottom, left, right) fractions with "
                f"top < bottom and left < right, got {mouth_box}."
            )
        height, width = self.mouth_region_shape
        if self.downscale < 1 or height % self.downscale or width % self.downscale:
            raise ValueError(
                f"The mouth region of {height}x{width} pixels does not divide by "
                f"downscale={downscale}."
            )
        self.video_stages = self._stream("video", self.video_filters)
        self.audio_stages = self._stream("audio", self.audio_filters)

    def _stream(self, name, filters):
        # `blocks.downsampling_stage` with batch normalisation before each
        # activation, named per stream. Without it the embeddings of all
        # windows start out nearly equal (the static face and the average
        # spectrum dominate), and the contrastive loss sat at chance for
        # the first hundred steps; normalising over the batch removes
        # what all windows share.
        def normalised(layer, label):
            return [
                layer,
                keras.layers.BatchNormalization(
                    momentum=_BATCH_NORM_MOMENTUM, name=f"{label}_norm"
                ),
                keras.layers.LeakyReLU(0.2, name=f"{label}_act"),
            ]

        layers = []
        for index, width in enumerate(filters):
            layers += normalised(
                keras.layers.Conv2D(
                    width, 4, strides=2, padding="same", use_bias=False, name=f"{name}_down{index}"
                ),
                f"{name}_down{index}",
            )
            layers += normalised(
                keras.layers.Conv2D(
                    width, 3, padding="same", use_bias=False, name=f"{name}_conv{index}"
                ),
                f"{name}_conv{index}",
            )
        layers.append(keras.layers.Flatten(name=f"{name}_flatten"))
        layers += normalised(
            keras.layers.Dense(2 * self.embedding_dim, use_bias=False, name=f"{name}_hidden"),
            f"{name}_hidden",
        )
        layers.append(keras.layers.Dense(self.embedding_dim, name=f"{name}_embedding"))
        return layers

    # ------------------------------------------------------------- geometry
    @property
    def mouth_pixels(self):
        """`(top, bottom, left, right)` of the mouth region in face-crop pixels."""
        top, bottom, left, right = self.mouth_box
        size = self.image_size
        return (
            int(round(top * size)),
            int(round(bottom * size)),
            int(round(left * size)),
            int(round(right * size)),
        )

    @property
    def mouth_region_shape(self):
        """`(height, width)` of the mouth region cut from a face crop."""
        top, bottom, left, right = self.mouth_pixels
        return bottom - top, right - left

    @property
    def mouth_shape(self):
        """`(height, width)` of the grey mouth images the video stream reads."""
        height, width = self.mouth_region_shape
        return height // self.downscale, width // self.downscale

    # -------------------------------------------------------- preprocessing
    def mouth_images(self, frames):
        """Face crops (or mouth regions) `(..., H, W, 3)` -> grey mouths `(..., h, w)`.

        Example:
        ```python
        mouths = expert.mouth_images(frames)   # (T, 32, 64) from (T, 128, 128, 3)
        ```
        """
        frames = ops.convert_to_tensor(frames, "float32")
        height, width = tuple(frames.shape[-3:-1])
        top, bottom, left, right = self.mouth_pixels
        if (height, width) == (self.image_size, self.image_size):
            frames = frames[..., top:bottom, left:right, :]
        elif (height, width) != self.mouth_region_shape:
            raise ValueError(
                f"mouth_frames must be {self.image_size}x{self.image_size} face crops or "
                f"{self.mouth_region_shape[0]}x{self.mouth_region_shape[1]} mouth regions, "
                f"got {height}x{width}."
            )
        grey = ops.sum(frames * ops.convert_to_tensor(LUMA_WEIGHTS, "float32"), axis=-1)
        if self.downscale == 1:
            return grey
        out_height, out_width = self.mouth_shape
        factor = self.downscale
        lead = ops.shape(grey)[:-2]
        blocks = ops.reshape(grey, (-1, out_height, factor, out_width, factor))
        pooled = ops.mean(blocks, axis=(2, 4))
        return ops.reshape(pooled, tuple(lead) + (out_height, out_width))

    # ----------------------------------------------------------- embedding
    @staticmethod
    def _standardise(x, floor):
        mean = ops.mean(x, axis=(1, 2, 3), keepdims=True)
        variance = ops.var(x, axis=(1, 2, 3), keepdims=True)
        return (x - mean) / ops.sqrt(variance + floor)

    @staticmethod
    def _run(layers, x, training):
        for layer in layers:
            x = layer(x, training=training)
        x = ops.cast(x, "float32")
        return x / ops.sqrt(ops.maximum(ops.sum(x * x, axis=-1, keepdims=True), 1e-12))

    def embed_video(self, mouth_windows, training=False):
        """Grey mouth windows `(N, h, w, window)` -> unit embeddings `(N, D)`."""
        x = self._standardise(
            ops.convert_to_tensor(mouth_windows, "float32"), _VIDEO_VARIANCE_FLOOR
        )
        return self._run(self.video_stages, x, training)

    def embed_audio(self, audio_windows, training=False):
        """Audio windows `(N, window, context, bins)` -> unit embeddings `(N, D)`."""
        audio_windows = ops.convert_to_tensor(audio_windows, "float32")
        steps = audio_windows.shape[1] * audio_windows.shape[2]
        x = ops.reshape(audio_windows, (-1, steps, audio_windows.shape[3], 1))
        return self._run(self.audio_stages, self._standardise(x, _AUDIO_VARIANCE_FLOOR), training)

    def stack_frames(self, mouths):
        """Grey mouths `(N, window, h, w)` -> `(N, h, w, window)` (time on channels)."""
        return ops.transpose(mouths, (0, 2, 3, 1))

    # ---------------------------------------------------------------- keras
    def build(self, input_shape):
        audio_shape = tuple(input_shape["audio_features"])
        height, width = self.mouth_shape
        _build_chain(self.video_stages, (None, height, width, self.window))
        _build_chain(self.audio_stages, (None, self.window * audio_shape[-2], audio_shape[-1], 1))
        self.built = True

    def call(self, inputs, training=None):
        mouths = self.mouth_images(inputs["mouth_frames"])
        video = self.embed_video(self.stack_frames(mouths), training=training)
        audio = self.embed_audio(inputs["audio_features"], training=training)
        return video, audio

    def compute_output_shape(self, input_shape):
        batch = tuple(input_shape["audio_features"])[0]
        return (batch, self.embedding_dim), (batch, self.embedding_dim)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "window": self.window,
                "embedding_dim": self.embedding_dim,
                "video_filters": list(self.video_filters),
                "audio_filters": list(self.audio_filters),
                "image_size": self.image_size,
                "mouth_box": list(self.mouth_box),
                "downscale": self.downscale,
            }
        )
        return config


__all__ = ["SyncExpert", "sliding_windows"]
