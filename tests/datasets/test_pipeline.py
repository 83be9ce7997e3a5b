"""The tf.data pipeline on records whose frames encode their own index.

Frame `i` of utterance `u` is a uniform colour with red `4 i` and green
`20 u`, and its audio features, AU intensities and landmarks hold `i` too,
so every example can be traced back to the frames it came from.
"""

import dataclasses
import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from keras_autalk.config import AutalkConfig, DataConfig, FaceConfig
from keras_autalk.datasets import pipeline, tfrecords
from keras_autalk.errors import AutalkError
from keras_autalk.media import face

tf = tfrecords.tf
REPO = pathlib.Path(__file__).resolve().parents[2]
CONFIG = AutalkConfig()
WINDOW = CONFIG.data.window_frames
GAP = CONFIG.data.identity_min_gap
SIZE = CONFIG.face.crop_size
UNITS = CONFIG.action_units
# utterance number -> frames; 2 has no face in its first and last 10
# frames, 3 is too short for the identity gap, 4 shorter than a window.
LENGTHS = {0: 48, 1: 40, 2: 60, 3: 20, 4: 10}
NO_FACE = {2: list(range(10)) + list(range(50, 60))}


def indexed_example(utterance, num_frames):
    index = np.arange(num_frames, dtype=np.float32)
    frames = np.zeros((num_frames, SIZE, SIZE, 3), np.uint8)
    frames[..., 0] = (4 * index).astype(np.uint8)[:, None, None]
    frames[..., 1] = 20 * utterance
    frames[..., 2] = 128
    face_mask = np.ones(num_frames, np.float32)
    face_mask[NO_FACE.get(utterance, [])] = 0
    return {
        "corpus": "demo",
        "speaker": "s1",
        "utterance_id": f"u{utterance}",
        "frames": frames,
        "audio_features": np.broadcast_to(
            index[:, None, None] + 1000 * utterance, (num_frames, 20, 80)
        ).copy(),
        "waveform": np.zeros(num_frames * 640, np.float32),
        "au_intensity": np.broadcast_to(index[:, None] / 100, (num_frames, len(UNITS))).copy(),
        "au_mask": np.ones(num_frames, np.float32),
        "face_mask": face_mask,
        "landmarks": np.broadcast_to(index[:, None, None], (num_frames, 68, 2)).copy(),
        "action_units": UNITS,
    }


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    folder = tmp_path_factory.mktemp("prepared") / "train"
    folder.mkdir()
    records = {u: tfrecords.encode_example(indexed_example(u, n)) for u, n in LENGTHS.items()}
    tfrecords.write_shard(folder / "s1-00000.tfrecord", [records[0], records[2], records[4]])
    tfrecords.write_shard(folder / "s2-00000.tfrecord", [records[1], records[3]])
    return sorted(str(path) for path in folder.glob("*.tfrecord"))


def trace(inputs, targets):
    """Per example: (utterance, window frame indices, identity frame index)."""
    frames = targets["frames"].numpy()
    identity = inputs["identity_image"].numpy()
    utterances = np.rint(frames[:, 0, 0, 0, 1] * 255 / 20).astype(int)
    windows = np.rint(frames[:, :, 0, 0, 0] * 255 / 4).astype(int)
    identities = np.rint(identity[:, 0, 0, 0] * 255 / 4).astype(int)
    identity_utterances = np.rint(identity[:, 0, 0, 1] * 255 / 20).astype(int)
    return utterances, windows, identities, identity_utterances


def all_examples(dataset):
    rows = []
    for inputs, targets in dataset:
        utterances, windows, identities, identity_utterances = trace(inputs, targets)
        audio = inputs["audio_features"].numpy()
        for k in range(len(utterances)):
            rows.append(
                {
                    "utterance": utterances[k],
                    "window": windows[k],
                    "identity": identities[k],
                    "identity_utterance": identity_utterances[k],
                    "audio": audio[k, :, 0, 0],
                    "au": targets["au_intensity"].numpy()[k, :, 0],
                    "landmarks": targets["landmarks"].numpy()[k, :, 0, 0],
                    "face_mask": targets["face_mask"].numpy()[k],
                }
            )
    return rows


def test_examples_have_the_documented_shapes_and_dtypes(shards):
    dataset = pipeline.make_dataset(shards, batch_size=4, seed=0)
    inputs, targets = next(iter(dataset))
    shapes = {key: tuple(value.shape) for key, value in {**inputs, **targets}.items()}
    assert shapes == {
        "identity_image": (4, SIZE, SIZE, 3),
        "audio_features": (4, WINDOW, 20, 80),
        "frames": (4, WINDOW, SIZE, SIZE, 3),
        "au_intensity": (4, WINDOW, len(UNITS)),
        "au_mask": (4, WINDOW),
        "face_mask": (4, WINDOW),
        "landmarks": (4, WINDOW, 68, 2),
    }
    assert all(value.dtype == tf.float32 for value in {**inputs, **targets}.values())
    assert 0.0 <= float(tf.reduce_min(targets["frames"])) <= 1.0
    assert float(tf.reduce_max(targets["frames"])) <= 1.0
    # Static shapes too, for building models on dataset.element_spec.
    assert dataset.element_spec[1]["frames"].shape.as_list() == [4, WINDOW, SIZE, SIZE, 3]


def test_windows_are_consecutive_frames_with_their_own_features(shards):
    rows = all_examples(pipeline.make_dataset(shards, batch_size=1, seed=3))
    # num_frames // T random windows per utterance; the 10-frame one is left out.
    assert sorted(row["utterance"] for row in rows) == [0] * 3 + [1] * 2 + [2] * 3 + [3]
    for row in rows:
        start = row["window"][0]
        expected = np.arange(start, start + WINDOW)
        np.testing.assert_array_equal(row["window"], expected)
        np.testing.assert_array_equal(row["audio"], expected + 1000 * row["utterance"])
        np.testing.assert_allclose(row["au"], expected / 100, atol=1e-6)
        np.testing.assert_array_equal(row["landmarks"], expected)
        assert start + WINDOW <= LENGTHS[row["utterance"]]


def test_identity_frame_comes_from_the_same_video_far_from_the_window(shards):
    for seed in range(3):
        for row in all_examples(pipeline.make_dataset(shards, batch_size=1, seed=seed)):
            utterance, start = row["utterance"], row["window"][0]
            end = start + WINDOW - 1
            identity = row["identity"]
            assert row["identity_utterance"] == utterance
            assert identity not in NO_FACE.get(utterance, [])
            distance = max(start - identity, identity - end)
            if utterance == 3:
                # 20 frames: no frame is 12 away from a 16-frame window, so
                # the farthest frame is used.
                assert distance == max(start, LENGTHS[3] - 1 - end)
            else:
                assert distance >= GAP


def test_frames_without_a_face_keep_face_mask_zero(shards):
    rows = [
        row
        for row in all_examples(pipeline.make_dataset(shards, batch_size=1, seed=0, training=False))
        if row["utterance"] == 2
    ]
    for row in rows:
        expected = [0.0 if index in NO_FACE[2] else 1.0 for index in row["window"]]
        np.testing.assert_array_equal(row["face_mask"], expected)


def test_evaluation_uses_every_non_overlapping_window_in_order(shards):
    dataset = pipeline.make_dataset(shards, batch_size=4, training=False)
    sizes = [int(targets["frames"].shape[0]) for _, targets in dataset]
    assert sizes == [4, 4, 1]  # 9 windows, the last batch kept
    rows = all_examples(dataset)
    starts = [(row["utterance"], row["window"][0]) for row in rows]
    # Files interleaved record by record (u0, u1, u2, u3), windows in order.
    assert starts == [(0, 0), (0, 16), (0, 32), (1, 0), (1, 16), (2, 0), (2, 16), (2, 32), (3, 0)]
    again = all_examples(pipeline.make_dataset(shards, batch_size=4, training=False))
    assert [(r["utterance"], r["window"][0], r["identity"]) for r in again] == [
        (r["utterance"], r["window"][0], r["identity"]) for r in rows
    ]


def test_training_drops_the_incomplete_last_batch(shards):
    sizes = [
        int(t["frames"].shape[0]) for _, t in pipeline.make_dataset(shards, batch_size=4, seed=0)
    ]
    assert sizes == [4, 4]


def summary(dataset, epochs=1):
    return [
        [(row["utterance"], row["window"][0], row["identity"]) for row in all_examples(dataset)]
        for _ in range(epochs)
    ]


def test_same_seed_gives_the_same_examples_and_each_epoch_new_ones(shards):
    first = summary(pipeline.make_dataset(shards, batch_size=2, seed=11), epochs=2)
    second = summary(pipeline.make_dataset(shards, batch_size=2, seed=11), epochs=2)
    other = summary(pipeline.make_dataset(shards, batch_size=2, seed=12), epochs=1)
    assert first == second
    assert first[0] != first[1]
    assert first[0] != other[0]


def test_augmentation_changes_colours_the_same_way_for_identity_and_frames(tmp_path, grace_hopper):
    found = face.find_face(grace_hopper)
    crop = face.align_face(grace_hopper, found.landmarks).crop
    example = indexed_example(0, 40)
    example["frames"] = np.repeat(crop[None], 40, axis=0)
    path = tmp_path / "still.tfrecord"
    tfrecords.write_shard(path, [example])
    plain = next(iter(pipeline.make_dataset(str(path), batch_size=2, seed=1)))
    jittered = next(iter(pipeline.make_dataset(str(path), batch_size=2, seed=1, augment=True)))
    identity, frames = jittered[0]["identity_image"].numpy(), jittered[1]["frames"].numpy()
    for k in range(2):
        # The same still face everywhere: identity and frames stay equal.
        np.testing.assert_allclose(
            frames[k], np.broadcast_to(identity[k], frames[k].shape), atol=1e-6
        )
    assert np.abs(identity - plain[0]["identity_image"].numpy()).mean() > 0.005
    assert np.abs(identity[0] - identity[1]).mean() > 0.002  # one draw per example
    assert identity.min() >= 0.0 and identity.max() <= 1.0


def test_audio_augmentation_changes_speed_with_the_frames_in_step(shards):
    from keras_autalk.datasets.audio_augment import AudioAugmentation

    faster = AudioAugmentation(speed_probability=1.0, speed_range=(1.25, 1.25))
    rows = all_examples(
        pipeline.make_dataset(shards, batch_size=1, seed=2, audio_augmentation=faster)
    )
    assert rows
    for row in rows:
        steps = set(np.diff(row["window"]))
        assert steps <= {1, 2} and 2 in steps  # 16 output frames span 20 source frames
        # Targets and frames stay together after the resampling.
        np.testing.assert_allclose(row["au"], row["window"] / 100, atol=1e-6)
        np.testing.assert_array_equal(row["landmarks"], row["window"])
        # The features were recomputed from the (silent) waveform, not the prepared ones.
        assert np.all(row["audio"] < 0)
    # Evaluation data is never augmented.
    evaluation = all_examples(
        pipeline.make_dataset(shards, batch_size=1, training=False, audio_augmentation=faster)
    )
    assert all(set(np.diff(row["window"])) == {1} for row in evaluation)


def test_audio_normalization_is_applied_per_utterance(shards):
    from keras_autalk.features import log_mel

    plain = all_examples(pipeline.make_dataset(shards, batch_size=1, training=False))
    normalised = all_examples(
        pipeline.make_dataset(shards, batch_size=1, training=False, audio_normalization="utterance")
    )
    for row, other in zip(plain, normalised):
        features = np.broadcast_to(
            np.arange(LENGTHS[row["utterance"]], dtype=np.float32)[:, None, None]
            + 1000 * row["utterance"],
            (LENGTHS[row["utterance"]], 20, 80),
        )
        expected = log_mel.normalize_features(features).numpy()[row["window"], 0, 0]
        np.testing.assert_allclose(other["audio"], expected, atol=1e-4)
        assert not np.allclose(other["audio"], row["audio"])
    with pytest.raises(ValueError, match="Unknown audio normalization"):
        pipeline.make_dataset(shards, audio_normalization="global")


def test_prepared_with_another_config_is_refused_clearly(shards):
    other_crop = dataclasses.replace(CONFIG, face=FaceConfig(crop_size=64))
    with pytest.raises(AutalkError, match="crops of 128x128 pixels, not 64x64"):
        pipeline.make_dataset(shards, other_crop)
    other_units = dataclasses.replace(CONFIG, action_units=(12, 25))
    with pytest.raises(AutalkError, match="action units"):
        pipeline.make_dataset(shards, other_units)


def test_missing_files_are_refused(tmp_path):
    with pytest.raises(AutalkError, match="No TFRecord files match"):
        pipeline.make_dataset(str(tmp_path / "*.tfrecord"))
    with pytest.raises(AutalkError, match="autalk prepare"):
        pipeline.list_shards(tmp_path, "train")


def test_list_shards_and_folder_input(shards):
    folder = pathlib.Path(shards[0]).parent.parent
    assert pipeline.list_shards(folder, "train") == shards
    longer = dataclasses.replace(CONFIG, data=DataConfig(window_frames=32))
    rows = all_examples(pipeline.make_dataset(folder, longer, batch_size=1, training=False))
    # 32-frame windows: 48 -> 1, 40 -> 1, 60 -> 1 (20 and 10 are too short).
    assert sorted(row["utterance"] for row in rows) == [0, 1, 2]


DISTRIBUTED_SCRIPT = """
import json, sys
import tensorflow as tf
tf.config.set_logical_device_configuration(
    tf.config.list_physical_devices("CPU")[0],
    [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])
from keras_autalk.datasets import pipeline
files = json.loads(sys.argv[1])
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
dataset = strategy.distribute_datasets_from_function(
    lambda context: pipeline.make_dataset(files, batch_size=4, seed=2, input_context=context))
result = {"replicas": strategy.num_replicas_in_sync, "batches": []}
for inputs, targets in dataset:
    frames = strategy.experimental_local_results(targets["frames"])
    identity = strategy.experimental_local_results(inputs["identity_image"])
    result["batches"].append({
        "frames": [list(map(int, f.shape)) for f in frames],
        "identity": [list(map(int, i.shape)) for i in identity],
        "red": [[round(float(v) * 255 / 4) for v in f[:, 0, 0, 0, 0]] for f in frames],
        "green": [[round(float(v) * 255 / 20) for v in f[:, 0, 0, 0, 1]] for f in frames],
    })
print("RESULT" + json.dumps(result))
"""


@pytest.mark.slow
def test_works_with_mirrored_strategy_on_two_logical_cpus(shards):
    # Logical devices must be set before TensorFlow initialises its devices:
    # a fresh process.
    completed = subprocess.run(
        [sys.executable, "-c", DISTRIBUTED_SCRIPT, json.dumps(shards)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = [line for line in completed.stdout.splitlines() if line.startswith("RESULT")]
    assert lines, completed.stderr[-3000:]
    result = json.loads(lines[0][len("RESULT") :])
    assert result["replicas"] == 2
    assert result["batches"], "no batch was produced"
    # 9 windows, global batch 4: two steps of 2 examples per replica.
    assert len(result["batches"]) == 2
    seen = []
    for batch in result["batches"]:
        assert batch["frames"] == [[2, WINDOW, SIZE, SIZE, 3]] * 2
        assert batch["identity"] == [[2, SIZE, SIZE, 3]] * 2
        for replica in range(2):
            seen += list(zip(batch["green"][replica], batch["red"][replica]))
    # Each replica gets its own examples: 8 distinct windows of all 4 videos.
    assert len(set(seen)) == 8
    assert {utterance for utterance, _ in seen} == {0, 1, 2, 3}


def test_each_input_pipeline_of_a_multi_worker_run_reads_its_own_files(shards):
    seen = []
    for pipeline_id in range(2):
        context = tf.distribute.InputContext(
            num_input_pipelines=2, input_pipeline_id=pipeline_id, num_replicas_in_sync=2
        )
        dataset = pipeline.make_dataset(shards, batch_size=2, training=False, input_context=context)
        rows = all_examples(dataset)
        assert all(int(t["frames"].shape[0]) <= 1 for _, t in dataset)  # 2 / 2 replicas
        seen.append({row["utterance"] for row in rows})
    # s1-00000 holds utterances 0, 2 (and the too short 4); s2-00000 holds 1, 3.
    assert seen == [{0, 2}, {1, 3}]
