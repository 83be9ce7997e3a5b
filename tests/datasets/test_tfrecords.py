"""The TFRecord schema: every field round-trips; shards are written atomically."""

import numpy as np
import pytest

from keras_autalk.datasets import tfrecords
from keras_autalk.errors import AutalkError
from keras_autalk.media import face
from tests.conftest import files_in

tf = tfrecords.tf
NUM_FRAMES = 12
UNITS = (10, 14, 20, 25, 26)


def psnr(first, second):
    error = np.mean((first.astype(np.float64) - second.astype(np.float64)) ** 2)
    return 10 * np.log10(255.0**2 / error)


@pytest.fixture(scope="module")
def example(grace_hopper):
    """A prepared-looking utterance: real aligned crops that move a little."""
    rng = np.random.default_rng(0)
    found = face.find_face(grace_hopper)
    frames = []
    for index in range(NUM_FRAMES):
        landmarks = found.landmarks + np.array([index * 0.7, -index * 0.4])
        frames.append(face.align_face(grace_hopper, landmarks).crop)
    return {
        "corpus": "grid",
        "speaker": "volunteers/01M",
        "utterance_id": "bbaf2n",
        "frames": np.stack(frames),
        "audio_features": rng.normal(size=(NUM_FRAMES, 20, 80)).astype(np.float32),
        "waveform": np.clip(rng.normal(0, 0.3, NUM_FRAMES * 640), -1, 1).astype(np.float32),
        "au_intensity": rng.uniform(0, 5, (NUM_FRAMES, len(UNITS))).astype(np.float32),
        "au_mask": (rng.uniform(size=NUM_FRAMES) > 0.2).astype(np.float32),
        "face_mask": (rng.uniform(size=NUM_FRAMES) > 0.1).astype(np.float32),
        "landmarks": rng.uniform(0, 128, (NUM_FRAMES, 68, 2)).astype(np.float32),
        "action_units": UNITS,
    }


@pytest.fixture(scope="module")
def record(example):
    return tfrecords.encode_example(example)


def test_every_field_round_trips(example, record):
    parsed = tfrecords.parse_example(record)
    assert set(parsed) == set(tfrecords.FEATURE_KEYS)
    assert parsed["corpus"].numpy() == b"grid"
    assert parsed["speaker"].numpy() == b"volunteers/01M"
    assert parsed["utterance_id"].numpy() == b"bbaf2n"
    assert int(parsed["num_frames"]) == NUM_FRAMES
    for key in ("audio_features", "au_intensity", "au_mask", "face_mask", "landmarks"):
        assert parsed[key].dtype == tf.float32
        np.testing.assert_array_equal(parsed[key].numpy(), example[key])
    np.testing.assert_array_equal(parsed["action_units"].numpy(), UNITS)
    # int16 PCM: within one quantisation step.
    np.testing.assert_allclose(parsed["waveform"].numpy(), example["waveform"], atol=1.5 / 32768)
    frames = parsed["frames"].numpy()
    assert frames.shape == example["frames"].shape and frames.dtype == np.uint8
    assert psnr(frames, example["frames"]) > 38.0  # JPEG quality 95, 4:4:4


def test_frames_can_stay_encoded_for_the_pipeline(record):
    parsed = tfrecords.parse_example(record, decode_frames=False)
    assert parsed["frames"].dtype == tf.string
    assert parsed["frames"].shape == (NUM_FRAMES,)
    assert tfrecords.decode_jpeg(parsed["frames"][3]).shape == (128, 128, 3)


def test_parse_works_in_graph_mode(record):
    dataset = tf.data.Dataset.from_tensors(record).map(tfrecords.parse_example)
    parsed = next(iter(dataset))
    assert parsed["frames"].shape == (NUM_FRAMES, 128, 128, 3)
    assert parsed["landmarks"].shape == (NUM_FRAMES, 68, 2)
    assert parsed["au_intensity"].shape == (NUM_FRAMES, len(UNITS))


def test_already_encoded_jpegs_are_stored_as_given(example):
    jpegs = [tfrecords.encode_jpeg(frame, quality=50) for frame in example["frames"]]
    parsed = tfrecords.parse_example(
        tfrecords.encode_example(dict(example, frames=jpegs)), decode_frames=False
    )
    assert [bytes(jpeg) for jpeg in parsed["frames"].numpy()] == jpegs


def test_waveform_is_clipped_to_int16(example):
    loud = dict(example, waveform=np.array([2.0, -2.0, 0.5], np.float32))
    parsed = tfrecords.parse_example(tfrecords.encode_example(loud))
    np.testing.assert_allclose(
        parsed["waveform"].numpy(), [32767 / 32768, -1.0, 0.5], atol=1 / 32768
    )


@pytest.mark.parametrize(
    "change, message",
    [
        ({"landmarks": np.zeros((NUM_FRAMES - 1, 68, 2))}, "landmarks has shape"),
        ({"au_intensity": np.zeros((NUM_FRAMES, 3))}, "au_intensity has shape"),
        ({"num_frames": NUM_FRAMES + 1}, "num_frames="),
    ],
)
def test_inconsistent_examples_are_refused(example, change, message):
    with pytest.raises(AutalkError, match=message):
        tfrecords.encode_example(dict(example, **change))


def test_missing_field_is_named(example):
    incomplete = {key: value for key, value in example.items() if key != "face_mask"}
    with pytest.raises(AutalkError, match="face_mask"):
        tfrecords.encode_example(incomplete)


def test_write_shard_writes_every_record(tmp_path, example, record):
    path = tmp_path / "s1-00000.tfrecord"
    assert tfrecords.write_shard(path, [record, example, record]) == 3
    assert tfrecords.count_records(path) == 3
    assert files_in(tmp_path) == ["s1-00000.tfrecord"]
    ids = [
        tfrecords.parse_example(r, decode_frames=False)["utterance_id"].numpy()
        for r in tf.data.TFRecordDataset(str(path))
    ]
    assert ids == [b"bbaf2n"] * 3


def test_failed_shard_leaves_no_file(tmp_path, record):
    def records_then_failure():
        yield record
        raise RuntimeError("the worker died")

    path = tmp_path / "s1-00000.tfrecord"
    with pytest.raises(RuntimeError):
        tfrecords.write_shard(path, records_then_failure())
    assert files_in(tmp_path) == []


def test_before_rename_runs_while_the_shard_is_still_unnamed(tmp_path, record):
    path = tmp_path / "s1-00000.tfrecord"
    seen = []
    tfrecords.write_shard(path, [record], before_rename=lambda: seen.append(path.exists()))
    assert seen == [False] and path.exists()
