"""Preparation on small real videos: face tracking, crops, bad input, resume."""

import dataclasses
import json
import pathlib
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile
from skimage import transform as sktransform

from keras_autalk.config import AutalkConfig, DataConfig
from keras_autalk.corpora.readers import Utterance
from keras_autalk.datasets import prepare, tfrecords
from keras_autalk.errors import AutalkError
from keras_autalk.features import log_mel
from keras_autalk.media import au_labels, face, photos
from keras_autalk.media.video import write_video

FPS = 25
SAMPLE_RATE = 16000
SIZE = 256
NUM_FRAMES = 30
BLANK = range(10, 15)
REPO = pathlib.Path(__file__).resolve().parents[2]


def talking_frames(num_frames=NUM_FRAMES, blank=(), shift=6.0):
    """grace_hopper at 256x256, drifting by a few pixels and zooming by 3 %."""
    photo = photos.load_photo("grace_hopper")[:512, :512]
    frames = np.empty((num_frames, SIZE, SIZE, 3), np.uint8)
    for index in range(num_frames):
        if index in blank:
            frames[index] = 90
            continue
        scale = 1.0 + 0.03 * np.sin(index / 5)
        offset = np.array([shift * np.sin(index / 7), shift * 0.7 * np.cos(index / 6)])
        transform = sktransform.SimilarityTransform(
            scale=SIZE / 512 * scale, translation=offset - (scale - 1) * SIZE / 2
        )
        warped = sktransform.warp(
            photo, transform.inverse, output_shape=(SIZE, SIZE), preserve_range=True
        )
        frames[index] = np.clip(np.rint(warped), 0, 255).astype(np.uint8)
    return frames


def speech_like(seconds, seed=0):
    """Voiced harmonics with a syllable-rate envelope, plus a little noise."""
    rng = np.random.default_rng(seed)
    times = np.arange(int(round(seconds * SAMPLE_RATE))) / SAMPLE_RATE
    pitch = 140 + 30 * np.sin(2 * np.pi * 0.7 * times)
    phase = 2 * np.pi * np.cumsum(pitch) / SAMPLE_RATE
    voiced = sum(np.sin(k * phase) / k for k in range(1, 12)) / 3
    envelope = np.clip(np.sin(2 * np.pi * 4 * times), 0, None) ** 2
    noise = 0.01 * rng.standard_normal(len(times))
    return (0.3 * envelope * voiced + noise).astype(np.float32)


def write_openface_like_csv(path, intensity, action_units, success):
    """An OpenFace 2.x CSV written by hand, with its real ", "-separated header."""
    names = ["frame", "face_id", "timestamp", "confidence", "success"]
    names += [f"AU{unit:02d}_r" for unit in action_units]
    lines = [", ".join(names)]
    for index, row in enumerate(intensity):
        cells = [str(index + 1), "0", f"{index / FPS:.3f}", "0.98", str(int(success[index]))]
        cells += [f"{value:.2f}" for value in row]
        lines.append(", ".join(cells))
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Small videos of each kind, as `Utterance`s keyed by name."""
    root = tmp_path_factory.mktemp("corpus")
    good = talking_frames()
    made = {}

    def video(name, frames, speech=None, speaker="s1", fps=FPS, **paths):
        folder = root / speaker
        folder.mkdir(exist_ok=True)
        path = folder / f"{name}.mp4"
        write_video(
            path, frames, fps, audio=speech, sample_rate=SAMPLE_RATE, preset="ultrafast", crf=12
        )
        made[name] = Utterance("folder", speaker, name, path, **paths)

    seconds = NUM_FRAMES / FPS
    video("talk", good, speech_like(seconds))
    video("talk2", good[::-1].copy(), speech_like(seconds, seed=1))
    video("gap", talking_frames(blank=BLANK), speech_like(seconds, seed=2))
    video("noaudio", good)
    video(
        "noface", np.full((NUM_FRAMES, SIZE, SIZE, 3), 90, np.uint8), speech_like(seconds, seed=3)
    )
    long_audio = root / "s1" / "longaudio.wav"
    soundfile.write(long_audio, speech_like(seconds + 1.0, seed=4), SAMPLE_RATE)
    video("longaudio", good, audio_path=long_audio)
    short_audio = root / "s1" / "shortaudio.wav"
    soundfile.write(short_audio, speech_like(seconds - 0.4, seed=7), SAMPLE_RATE)
    video("shortaudio", good, audio_path=short_audio)
    video("silent", good, np.zeros(int(seconds * SAMPLE_RATE), np.float32))
    video("fps30", talking_frames(36), speech_like(36 / 30, seed=5), fps=30)
    truncated = root / "s1" / "truncated.mp4"
    whole = made["talk"].video_path.read_bytes()
    truncated.write_bytes(whole[: int(len(whole) * 0.6)])
    made["truncated"] = Utterance("folder", "s1", "truncated", truncated)
    corrupt = root / "s2" / "corrupt.mp4"
    corrupt.parent.mkdir(exist_ok=True)
    corrupt.write_bytes(np.random.default_rng(0).bytes(5000))
    made["corrupt"] = Utterance("folder", "s2", "corrupt", corrupt)
    video("other", good, speech_like(seconds, seed=6), speaker="s2")
    return made


@pytest.fixture(scope="module")
def talk(corpus):
    return prepare.prepare_utterance(corpus["talk"])


def test_prepared_example_has_every_field_with_its_shape(talk):
    assert talk.ok and talk.skipped is None and talk.notes == []
    example = talk.example
    size = AutalkConfig().face.crop_size
    assert example["frames"].shape == (NUM_FRAMES, size, size, 3)
    assert example["frames"].dtype == np.uint8
    assert example["audio_features"].shape == (NUM_FRAMES, 20, 80)
    assert example["waveform"].shape == (NUM_FRAMES * SAMPLE_RATE // FPS,)
    assert example["landmarks"].shape == (NUM_FRAMES, 68, 2)
    assert example["au_intensity"].shape == (NUM_FRAMES, 5)
    np.testing.assert_array_equal(example["face_mask"], np.ones(NUM_FRAMES))
    # No CSV and no estimator: the AU labels are masked out.
    np.testing.assert_array_equal(example["au_mask"], np.zeros(NUM_FRAMES))
    assert talk.stats["au_source"] == "none"
    # The face was detected once and tracked from there.
    assert talk.stats["face_detections"] == 1


def test_crops_are_aligned_although_the_head_moves(talk):
    landmarks = talk.example["landmarks"]
    stable = landmarks[:, face.STABLE_POINTS]
    # In the video the face drifts by +-6 px (about 3 px in the crop's
    # scale) and zooms by 3 %; in the crops the stable points stay put.
    assert stable.mean(axis=1).std(axis=0).max() < 0.8
    assert landmarks[:, face.LEFT_EYE].mean(axis=1).std(axis=0).max() < 0.8
    assert np.median(stable.std(axis=0)) < 1.0  # single jaw points jitter more
    template = face.template_points()[face.STABLE_POINTS]
    assert np.abs(stable.mean(axis=0) - template).mean() < 4.0
    # Consecutive crops look alike (no jitter); the eyes sit where the
    # template puts them (dark pupils/glasses rows above the nose).
    frames = talk.example["frames"].astype(np.float64)
    assert np.abs(np.diff(frames, axis=0)).mean() < 8.0


def test_audio_features_are_the_waveforms_per_frame_features(talk):
    expected = log_mel.audio_features(talk.example["waveform"], num_frames=NUM_FRAMES)
    np.testing.assert_allclose(talk.example["audio_features"], expected, atol=1e-5)
    assert np.abs(talk.example["waveform"]).max() > 0.05


def test_frames_without_a_face_are_masked_not_dropped(corpus):
    prepared = prepare.prepare_utterance(corpus["gap"])
    assert prepared.ok
    expected = np.ones(NUM_FRAMES)
    expected[list(BLANK)] = 0
    np.testing.assert_array_equal(prepared.example["face_mask"], expected)
    assert prepared.example["frames"].shape[0] == NUM_FRAMES
    assert any("no face was found in 5 of 30 frames" in note for note in prepared.notes)
    # Tracking is lost at the gap and the face detected again after it.
    assert prepared.stats["face_detections"] >= 2


@pytest.mark.parametrize(
    "name, reason",
    [
        ("noaudio", "has no audio track"),
        ("noface", "No face was found in any of the 30 frames"),
        ("corrupt", "is not a readable media file"),
        ("truncated", "is truncated"),
        ("silent", "is silent"),
    ],
)
def test_bad_videos_are_skipped_with_a_reason(corpus, name, reason):
    prepared = prepare.prepare_utterance(corpus[name])
    assert not prepared.ok and prepared.example is None
    assert reason in prepared.skipped


def test_longer_audio_is_trimmed_to_the_video_and_noted(corpus):
    prepared = prepare.prepare_utterance(corpus["longaudio"])
    assert prepared.ok
    assert prepared.example["waveform"].shape == (NUM_FRAMES * SAMPLE_RATE // FPS,)
    assert any("1.00 s longer than the video" in note for note in prepared.notes)


def test_shorter_audio_is_padded_with_silence_and_noted(corpus):
    prepared = prepare.prepare_utterance(corpus["shortaudio"])
    assert prepared.ok
    waveform = prepared.example["waveform"]
    assert waveform.shape == (NUM_FRAMES * SAMPLE_RATE // FPS,)
    assert np.all(waveform[-int(0.35 * SAMPLE_RATE) :] == 0)
    assert any("0.40 s shorter than the video" in note for note in prepared.notes)


def test_video_at_another_frame_rate_is_resampled_to_the_config_rate(corpus):
    prepared = prepare.prepare_utterance(corpus["fps30"])
    assert prepared.ok
    assert prepared.example["frames"].shape[0] == 30  # 36 frames at 30 fps = 1.2 s
    assert any("resampled to 25 fps" in note for note in prepared.notes)


def test_openface_csv_labels_are_used_and_a_bad_csv_is_masked(corpus, tmp_path):
    units = AutalkConfig().action_units
    intensity = np.round(np.linspace(0, 4, NUM_FRAMES * len(units)), 2).reshape(NUM_FRAMES, -1)
    success = np.ones(NUM_FRAMES)
    success[3] = 0
    good_csv = tmp_path / "talk.csv"
    write_openface_like_csv(good_csv, intensity, units, success)
    utterance = dataclasses.replace(corpus["talk"], au_csv_path=good_csv)
    prepared = prepare.prepare_utterance(utterance)
    assert prepared.stats["au_source"] == "openface"
    np.testing.assert_allclose(
        prepared.example["au_intensity"][success > 0], intensity[success > 0], atol=1e-5
    )
    np.testing.assert_array_equal(prepared.example["au_mask"], success)

    bad_csv = tmp_path / "bad.csv"
    write_openface_like_csv(bad_csv, intensity[:, :-1], units[:-1], success)
    prepared = prepare.prepare_utterance(dataclasses.replace(utterance, au_csv_path=bad_csv))
    assert prepared.ok and prepared.stats["au_source"] == "none"
    np.testing.assert_array_equal(prepared.example["au_mask"], np.zeros(NUM_FRAMES))
    assert any("AU26" in note and "not used" in note for note in prepared.notes)


def test_geometric_estimator_labels_frames_with_a_face(corpus, tmp_path):
    rng = np.random.default_rng(0)
    units = AutalkConfig().action_units
    # A real estimator fitted on jittered copies of the template face.
    template = face.template_points()
    clips = [template + rng.normal(0, 1.0, (40, 68, 2)) for _ in range(3)]
    targets = [rng.uniform(0, 5, (40, len(units))) for _ in range(3)]
    estimator = au_labels.calibrate(clips, targets, units)
    path = estimator.save(tmp_path / "estimator.json")
    prepared = prepare.prepare_utterance(corpus["gap"], au_estimator=path)
    assert prepared.stats["au_source"] == "estimator"
    mask = prepared.example["au_mask"]
    np.testing.assert_array_equal(mask, prepared.example["face_mask"])
    found = prepared.example["landmarks"][mask > 0]
    np.testing.assert_allclose(
        prepared.example["au_intensity"][mask > 0], estimator.predict(found), atol=1e-5
    )
    assert np.all(prepared.example["au_intensity"][mask == 0] == 0)


# --------------------------------------------------------------------------
# prepare_corpus


def small_config(per_shard=2):
    return dataclasses.replace(
        AutalkConfig(), data=dataclasses.replace(DataConfig(), utterances_per_shard=per_shard)
    )


def split_by_name(utterance):
    return "test" if utterance.utterance_id == "talk2" else "train"


CORPUS_NAMES = ("talk", "talk2", "gap", "noaudio", "corrupt", "other")


@pytest.fixture(scope="module")
def prepared_corpus(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("prepared")
    utterances = [corpus[name] for name in CORPUS_NAMES]
    manifest = prepare.prepare_corpus(
        utterances, out, small_config(), split_fn=split_by_name, num_workers=1, progress=False
    )
    return out, manifest


def test_corpus_is_written_as_shards_reports_and_manifest(prepared_corpus):
    out, manifest = prepared_corpus
    shards = sorted(str(p.relative_to(out)) for p in out.rglob("*.tfrecord"))
    # s1 train: [talk, gap] [noaudio] -> the second chunk has no example, so
    # no file (its part report records that); s1 test: [talk2]; s2: [corrupt, other].
    assert shards == [
        "test/s1-00000.tfrecord",
        "train/s1-00000.tfrecord",
        "train/s2-00000.tfrecord",
    ]
    counts = [tfrecords.count_records(out / p) for p in shards]
    assert counts == [1, 2, 1]
    empty_part = json.loads((out / "reports/shards/train/s1-00001.json").read_text())
    assert empty_part["examples"] == 0 and empty_part["utterances"] == ["noaudio"]
    assert manifest["splits"]["train"]["utterances"] == 5
    assert manifest["splits"]["train"]["examples"] == 3
    assert manifest["splits"]["test"]["examples"] == 1
    assert manifest["splits"]["train"]["frames"] == 3 * NUM_FRAMES
    assert manifest["splits"]["train"]["frames_without_face"] == len(BLANK)
    assert manifest["skipped"] == 2
    assert manifest["complete"] is True
    assert manifest["config"]["data"]["utterances_per_shard"] == 2
    assert manifest["corpus"] == "folder"
    assert json.loads((out / "manifest.json").read_text()) == manifest
    report = json.loads((out / "reports" / "s2.json").read_text())
    assert report["skipped"][0]["utterance_id"] == "corrupt"
    s1 = json.loads((out / "reports" / "s1.json").read_text())
    assert "no audio track" in s1["skipped"][0]["reason"]
    assert any(item["utterance_id"] == "gap" for item in s1["notes"])
    # Nothing partial is left anywhere.
    assert not [p for p in out.rglob(".*")]


def test_shard_records_equal_the_prepared_examples(prepared_corpus, talk):
    out, _ = prepared_corpus
    records = list(tfrecords.tf.data.TFRecordDataset(str(out / "train" / "s1-00000.tfrecord")))
    parsed = tfrecords.parse_example(records[0])
    assert parsed["utterance_id"].numpy() == b"talk"
    np.testing.assert_allclose(parsed["landmarks"].numpy(), talk.example["landmarks"], atol=1e-4)
    np.testing.assert_allclose(
        parsed["audio_features"].numpy(), talk.example["audio_features"], atol=1e-5
    )
    decoded = parsed["frames"].numpy().astype(np.float64)
    assert np.abs(decoded - talk.example["frames"]).mean() < 2.0  # JPEG at quality 95


def test_rerun_keeps_finished_shards_and_redoes_missing_ones(prepared_corpus, corpus):
    out, manifest = prepared_corpus
    kept = out / "train" / "s1-00000.tfrecord"
    lost = out / "train" / "s2-00000.tfrecord"
    kept_mtime = kept.stat().st_mtime_ns
    lost.unlink()
    # What a kill leaves: a partial shard and a partial report.
    (out / "train" / ".s2-00000.abc123.partial.tfrecord").write_bytes(b"half a shard")
    (out / "reports" / ".s2.abc123.partial.json").write_text("{")
    utterances = [corpus[name] for name in CORPUS_NAMES]
    again = prepare.prepare_corpus(
        utterances, out, small_config(), split_fn=split_by_name, num_workers=1, progress=False
    )
    assert kept.stat().st_mtime_ns == kept_mtime
    assert tfrecords.count_records(lost) == 1
    assert not [p for p in out.rglob(".*")]
    assert again["splits"] == manifest["splits"]


def children_of(pid):
    """Process ids whose parent is `pid` (Linux /proc)."""
    children = []
    for stat in pathlib.Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            children.append(int(stat.parent.name))
    return children


@pytest.mark.slow
def test_killed_run_resumes_where_it_stopped(corpus, tmp_path):
    out = tmp_path / "prepared"
    names = ["talk", "talk2", "gap", "other", "longaudio", "fps30", "shortaudio"]
    listing = tmp_path / "utterances.json"
    listing.write_text(
        json.dumps(
            [
                [
                    corpus[n].speaker,
                    corpus[n].utterance_id,
                    str(corpus[n].video_path),
                    str(corpus[n].audio_path) if corpus[n].audio_path else None,
                ]
                for n in names
            ]
        )
    )
    script = f"""
import dataclasses, json, pathlib
from keras_autalk.config import AutalkConfig, DataConfig
from keras_autalk.datasets import prepare
from keras_autalk.corpora.readers import Utterance
rows = json.loads(pathlib.Path({str(listing)!r}).read_text())
utterances = [Utterance("folder", s, u, pathlib.Path(v), pathlib.Path(a) if a else None)
              for s, u, v, a in rows]
config = dataclasses.replace(AutalkConfig(), data=DataConfig(utterances_per_shard=1))
if __name__ == "__main__":
    prepare.prepare_corpus(utterances, {str(out)!r}, config, num_workers=2, progress=False)
"""
    (tmp_path / "run.py").write_text(script)
    process = subprocess.Popen(
        [sys.executable, str(tmp_path / "run.py")],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 120
    try:
        while time.time() < deadline and process.poll() is None:
            if out.is_dir() and list(out.glob("train/*.tfrecord")):
                break
            time.sleep(0.02)
        workers = children_of(process.pid)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert len(workers) >= 2
    # The worker processes notice their parent is gone and stop.
    deadline = time.time() + 10
    while time.time() < deadline and any(pathlib.Path(f"/proc/{pid}").exists() for pid in workers):
        time.sleep(0.1)
    assert not [pid for pid in workers if pathlib.Path(f"/proc/{pid}").exists()]
    finished = {p.name: p.stat().st_mtime_ns for p in out.glob("train/*.tfrecord")}
    assert 1 <= len(finished) < len(names), "the run must be killed part-way"
    assert not (out / "manifest.json").exists()

    utterances = [corpus[n] for n in names]
    config = small_config(per_shard=1)
    manifest = prepare.prepare_corpus(utterances, out, config, num_workers=1, progress=False)
    for name, mtime in finished.items():
        assert (out / "train" / name).stat().st_mtime_ns == mtime
    assert len(list(out.glob("train/*.tfrecord"))) == len(names)
    assert not [p for p in out.rglob(".*")]
    assert manifest["splits"]["train"]["examples"] == len(names)
    assert manifest["splits"]["train"]["utterances"] == len(names)


@pytest.mark.slow
def test_two_worker_processes_write_the_same_records(corpus, prepared_corpus, tmp_path):
    reference, _ = prepared_corpus
    utterances = [corpus[name] for name in CORPUS_NAMES]
    manifest = prepare.prepare_corpus(
        utterances, tmp_path, small_config(), split_fn=split_by_name, num_workers=2, progress=False
    )
    assert manifest["splits"]["train"]["examples"] == 3
    for path in sorted(reference.rglob("*.tfrecord")):
        mine = list(tfrecords.tf.data.TFRecordDataset(str(tmp_path / path.relative_to(reference))))
        theirs = list(tfrecords.tf.data.TFRecordDataset(str(path)))
        assert len(mine) == len(theirs)
        for first, second in zip(mine, theirs):
            a, b = tfrecords.parse_example(first), tfrecords.parse_example(second)
            np.testing.assert_array_equal(a["frames"].numpy(), b["frames"].numpy())
            np.testing.assert_allclose(
                a["audio_features"].numpy(), b["audio_features"].numpy(), atol=1e-4
            )


def test_work_shards_split_speakers_between_machines(corpus, tmp_path):
    utterances = [corpus["talk"], corpus["other"]]
    first = prepare.prepare_corpus(
        utterances, tmp_path, num_shards=2, shard_index=0, num_workers=1, progress=False
    )
    assert first["speakers"] == ["s1"] and first["complete"] is False
    second = prepare.prepare_corpus(
        utterances, tmp_path, num_shards=2, shard_index=1, num_workers=1, progress=False
    )
    assert second["speakers"] == ["s1", "s2"] and second["complete"] is True
    assert second["splits"]["train"]["examples"] == 2


def test_bad_arguments_are_refused_in_one_sentence(corpus, tmp_path):
    with pytest.raises(AutalkError, match="no utterances"):
        prepare.prepare_corpus([], tmp_path)
    with pytest.raises(AutalkError, match="shard_index"):
        prepare.prepare_corpus([corpus["talk"]], tmp_path, num_shards=2, shard_index=2)
    with pytest.raises(AutalkError, match="split"):
        prepare.prepare_corpus(
            [corpus["talk"]], tmp_path, split_fn=lambda u: "a/b", num_workers=1, progress=False
        )


def test_speaker_file_names_are_safe():
    assert prepare.speaker_file_name("volunteers/01M") == "volunteers_01M"
    assert prepare.speaker_file_name("s1") == "s1"


def test_prepared_folder_feeds_the_pipeline(prepared_corpus):
    from keras_autalk.datasets import pipeline

    out, _ = prepared_corpus
    dataset = pipeline.make_dataset(pipeline.list_shards(out, "train"), batch_size=2, seed=0)
    inputs, targets = next(iter(dataset))
    assert inputs["identity_image"].shape == (2, 128, 128, 3)
    assert targets["frames"].shape == (2, 16, 128, 128, 3)
    assert 0.2 < float(targets["frames"].numpy().mean()) < 0.8


def test_crop_of_a_large_frame_is_anti_aliased_and_in_place(grace_hopper):
    from skimage.registration import phase_cross_correlation

    found = face.find_face(grace_hopper)
    matrix = face.alignment_matrix(found.landmarks)
    reference = prepare.crop_face(grace_hopper, matrix, 128).astype(np.float64)
    # The same photo 3x larger (an HD video's face): the crop must land on
    # the same pixels, without the aliasing a plain bilinear warp gives.
    large = sktransform.rescale(
        grace_hopper, 3, channel_axis=-1, order=1, preserve_range=True
    ).astype(np.uint8)
    scale_up = np.array([[3.0, 0, 1.0], [0, 3.0, 1.0]])  # x_large = 3 x + 1
    large_matrix = matrix @ np.vstack([face.invert_transform(scale_up), [0, 0, 1]])
    crop = prepare.crop_face(large, large_matrix, 128).astype(np.float64)
    shift = phase_cross_correlation(reference.mean(-1), crop.mean(-1), upsample_factor=20)[0]
    assert np.abs(shift).max() <= 0.25
    inverse = np.vstack([face.invert_transform(large_matrix), [0, 0, 1]])
    plain = sktransform.warp(
        large,
        sktransform.AffineTransform(matrix=inverse),
        output_shape=(128, 128),
        preserve_range=True,
    )
    assert np.abs(crop - reference).mean() < np.abs(plain - reference).mean()
