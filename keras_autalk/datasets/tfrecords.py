"""One `tf.train.Example` per prepared utterance, and sharded TFRecord files.

The schema (every feature is present in every record; `T` frames, `A`
action units, crops of `S x S` pixels):

| key              | type          | content                                            |
|------------------|---------------|----------------------------------------------------|
| `corpus`         | bytes         | "grid", "tcd-timit", "folder" or "demo"            |
| `speaker`        | bytes         | speaker id, e.g. "s1" or "volunteers/01"           |
| `utterance_id`   | bytes         | e.g. "bbaf2n"                                      |
| `num_frames`     | int64         | `T`                                                |
| `frames`         | bytes_list    | `T` JPEGs of the aligned `S x S` face crop         |
| `audio_features` | bytes         | `tf.io.serialize_tensor` of float32 `(T, context, bins)` |
| `waveform`       | bytes         | int16 little-endian PCM at `AudioConfig.sample_rate` |
| `au_intensity`   | float_list    | `T * A` values, row-major `(T, A)`, 0..5           |
| `au_mask`        | float_list    | `T`: 1 where the AU labels are valid               |
| `face_mask`      | float_list    | `T`: 1 where a face was found in the frame         |
| `landmarks`      | float_list    | `T * 68 * 2`, `(T, 68, 2)` `(x, y)` crop pixels   |
| `action_units`   | int64_list    | `A` AU numbers, e.g. `10 14 20 25 26`              |

Shards are written under a temporary name and renamed when complete, so a
killed run never leaves a truncated `.tfrecord` behind.
"""

import io

import numpy as np
from PIL import Image

from keras_autalk.config import DataConfig
from keras_autalk.errors import AutalkError
from keras_autalk.files import atomic_output
from keras_autalk.native import import_tensorflow

tf = import_tensorflow()

NUM_LANDMARKS = 68

# Every key of a record, in the schema's order.
FEATURE_KEYS = (
    "corpus",
    "speaker",
    "utterance_id",
    "num_frames",
    "frames",
    "audio_features",
    "waveform",
    "au_intensity",
    "au_mask",
    "face_mask",
    "landmarks",
    "action_units",
)

_FEATURE_SPEC = {
    "corpus": tf.io.FixedLenFeature([], tf.string),
    "speaker": tf.io.FixedLenFeature([], tf.string),
    "utterance_id": tf.io.FixedLenFeature([], tf.string),
    "num_frames": tf.io.FixedLenFeature([], tf.int64),
    "frames": tf.io.VarLenFeature(tf.string),
    "audio_features": tf.io.FixedLenFeature([], tf.string),
    "waveform": tf.io.FixedLenFeature([], tf.string),
    "au_intensity": tf.io.VarLenFeature(tf.float32),
    "au_mask": tf.io.VarLenFeature(tf.float32),
    "face_mask": tf.io.VarLenFeature(tf.float32),
    "landmarks": tf.io.VarLenFeature(tf.float32),
    "action_units": tf.io.VarLenFeature(tf.int64),
}


def encode_jpeg(frame, quality=DataConfig.jpeg_quality):
    """JPEG bytes of one uint8 RGB frame (4:4:4 chroma, so lip edges stay sharp)."""
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(frame, dtype=np.uint8)).save(
        buffer, format="JPEG", quality=int(quality), subsampling=0
    )
    return buffer.getvalue()


def decode_jpeg(jpeg):
    """uint8 `(S, S, 3)` of one JPEG tensor, decoded exactly (graph-mode safe).

    TensorFlow's default fast integer IDCT costs about 3 dB of PSNR at
    quality 95; the accurate one matches what PIL decodes.
    """
    return tf.io.decode_jpeg(jpeg, channels=3, dct_method="INTEGER_ACCURATE")


def _bytes_feature(values):
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=list(values)))


def _float_feature(array):
    values = np.asarray(array, dtype=np.float32).reshape(-1)
    return tf.train.Feature(float_list=tf.train.FloatList(value=values))


def _int_feature(array):
    values = np.asarray(array, dtype=np.int64).reshape(-1)
    return tf.train.Feature(int64_list=tf.train.Int64List(value=values))


def _text(value):
    return value.encode("utf-8") if isinstance(value, str) else bytes(value)


def _waveform_bytes(waveform):
    """int16 little-endian PCM of a float waveform in [-1, 1] (or int16 samples)."""
    waveform = np.asarray(waveform)
    if waveform.ndim != 1:
        raise AutalkError(f"The waveform must be 1-D, got shape {waveform.shape}.")
    if waveform.dtype != np.int16:
        scaled = np.clip(np.rint(waveform.astype(np.float64) * 32767.0), -32768, 32767)
        waveform = scaled.astype(np.int16)
    return waveform.astype("<i2").tobytes()


def encode_example(example, jpeg_quality=DataConfig.jpeg_quality):
    """Serialize one prepared utterance as a `tf.train.Example`.

    Args:
        example: a dict with the keys of `FEATURE_KEYS` (`num_frames` may be
            left out): text fields as `str`; `frames` uint8 `(T, S, S, 3)`
            (or a list of `T` already encoded JPEG `bytes`);
            `audio_features` float32 `(T, context, bins)`; `waveform` float
            in [-1, 1] or int16 `(num_samples,)`; `au_intensity` `(T, A)`;
            `au_mask`, `face_mask` `(T,)`; `landmarks` `(T, 68, 2)`;
            `action_units` `(A,)` ints.
        jpeg_quality: JPEG quality of the frames (1-100).

    Returns:
        The serialized record (`bytes`).

    Raises:
        AutalkError: a field is missing or its shape disagrees with `T`.

    Example:
    ```python
    record = encode_example(prepared.example)
    parsed = parse_example(record)
    ```
    """
    missing = [key for key in FEATURE_KEYS if key not in example and key != "num_frames"]
    if missing:
        raise AutalkError(f"The example lacks the field(s) {', '.join(missing)}.")
    frames = example["frames"]
    num_frames = len(frames)
    action_units = np.asarray(example["action_units"], dtype=np.int64).reshape(-1)
    expected = {
        "audio_features": (num_frames, None, None),
        "au_intensity": (num_frames, len(action_units)),
        "au_mask": (num_frames,),
        "face_mask": (num_frames,),
        "landmarks": (num_frames, NUM_LANDMARKS, 2),
    }
    for key, shape in expected.items():
        actual = np.shape(example[key])
        if len(actual) != len(shape) or any(
            want is not None and got != want for got, want in zip(actual, shape)
        ):
            raise AutalkError(
                f"The example's {key} has shape {actual}; expected "
                f"{tuple('?' if s is None else s for s in shape)} for {num_frames} frames."
            )
    if int(example.get("num_frames", num_frames)) != num_frames:
        raise AutalkError(
            f"The example says num_frames={example['num_frames']} but holds {num_frames} frames."
        )
    jpegs = [
        frame if isinstance(frame, bytes) else encode_jpeg(frame, jpeg_quality) for frame in frames
    ]
    audio_features = tf.io.serialize_tensor(
        tf.convert_to_tensor(np.asarray(example["audio_features"], dtype=np.float32))
    ).numpy()
    feature = {
        "corpus": _bytes_feature([_text(example["corpus"])]),
        "speaker": _bytes_feature([_text(example["speaker"])]),
        "utterance_id": _bytes_feature([_text(example["utterance_id"])]),
        "num_frames": _int_feature([num_frames]),
        "frames": _bytes_feature(jpegs),
        "audio_features": _bytes_feature([audio_features]),
        "waveform": _bytes_feature([_waveform_bytes(example["waveform"])]),
        "au_intensity": _float_feature(example["au_intensity"]),
        "au_mask": _float_feature(example["au_mask"]),
        "face_mask": _float_feature(example["face_mask"]),
        "landmarks": _float_feature(example["landmarks"]),
        "action_units": _int_feature(action_units),
    }
    proto = tf.train.Example(features=tf.train.Features(feature=feature))
    return proto.SerializeToString()


def parse_example(serialized, decode_frames=True):
    """Parse one serialized record into a dict of tensors (graph-mode safe).

    Args:
        serialized: a scalar `tf.string` tensor (or `bytes`) from
            `encode_example`.
        decode_frames: decode the JPEGs into uint8 `(T, S, S, 3)`; if False,
            `frames` stays a `(T,)` `tf.string` tensor of JPEGs, so a
            pipeline can decode only the frames it uses.

    Returns:
        A dict: `corpus`, `speaker`, `utterance_id` (scalar strings),
        `num_frames` (int32), `frames`, `audio_features` float32
        `(T, context, bins)`, `waveform` float32 in [-1, 1], `au_intensity`
        float32 `(T, A)`, `au_mask`, `face_mask` float32 `(T,)`, `landmarks`
        float32 `(T, 68, 2)`, `action_units` int32 `(A,)`.

    Example:
    ```python
    dataset = tf.data.TFRecordDataset(files).map(parse_example)
    ```
    """
    parsed = tf.io.parse_single_example(serialized, _FEATURE_SPEC)
    dense = {
        key: tf.sparse.to_dense(value) if isinstance(value, tf.sparse.SparseTensor) else value
        for key, value in parsed.items()
    }
    num_frames = tf.cast(dense["num_frames"], tf.int32)
    action_units = tf.cast(dense["action_units"], tf.int32)
    frames = dense["frames"]
    if decode_frames:
        frames = tf.map_fn(
            decode_jpeg,
            frames,
            fn_output_signature=tf.TensorSpec([None, None, 3], tf.uint8),
        )
    waveform = tf.io.decode_raw(dense["waveform"], tf.int16, little_endian=True)
    return {
        "corpus": dense["corpus"],
        "speaker": dense["speaker"],
        "utterance_id": dense["utterance_id"],
        "num_frames": num_frames,
        "frames": frames,
        "audio_features": tf.io.parse_tensor(dense["audio_features"], tf.float32),
        "waveform": tf.cast(waveform, tf.float32) / 32768.0,
        "au_intensity": tf.reshape(dense["au_intensity"], [num_frames, tf.size(action_units)]),
        "au_mask": dense["au_mask"],
        "face_mask": dense["face_mask"],
        "landmarks": tf.reshape(dense["landmarks"], [num_frames, NUM_LANDMARKS, 2]),
        "action_units": action_units,
    }


def write_shard(path, examples, before_rename=None):
    """Write records to a TFRecord file atomically (temporary name, then rename).

    Args:
        path: the `.tfrecord` file; its folder must exist.
        examples: serialized records (`bytes`) or example dicts (encoded
            with `encode_example`).
        before_rename: optional callable run once every record is written
            and before the file gets its name (e.g. to record what it holds,
            so a file that exists is always accounted for).

    Returns:
        The number of records written.

    Example:
    ```python
    write_shard("prepared/train/s1-00000.tfrecord", records)
    ```
    """
    count = 0
    with atomic_output(path, "TFRecord shard") as partial:
        with tf.io.TFRecordWriter(str(partial)) as writer:
            for example in examples:
                if not isinstance(example, bytes):
                    example = encode_example(example)
                writer.write(example)
                count += 1
        if before_rename is not None:
            before_rename()
    return count


def count_records(path):
    """Number of records in a TFRecord file (reads it through)."""
    return sum(1 for _ in tf.data.TFRecordDataset(str(path)))
