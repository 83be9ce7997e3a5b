"""The offline demo corpus: GRID layout, determinism, split, ground truth, resume."""

import json
import shutil

import numpy as np
import pytest
import soundfile

from keras_autalk.corpora import grid
from keras_autalk.corpora import readers as corpora
from keras_autalk.corpora.demo import corpus as demo_corpus
from keras_autalk.corpora.demo import visemes
from keras_autalk.errors import AutalkError
from keras_autalk.media import au_labels, video

TINY = demo_corpus.SIZES["tiny"]


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo") / "corpus"
    demo_corpus.render_corpus(root, TINY, num_workers=2, progress=False)
    return root


def test_plan_is_deterministic_and_depends_on_the_seed():
    first, again = demo_corpus.plan(TINY), demo_corpus.plan(TINY)
    assert first == again
    other = demo_corpus.plan(demo_corpus.size_config("tiny", seed=1))
    assert [u["id"] for u in other["utterances"]] != [u["id"] for u in first["utterances"]]


def test_split_holds_out_one_voice_and_the_held_out_sentences():
    layout = demo_corpus.plan(demo_corpus.SIZES["default"])
    held_out_speakers = [name for name, info in layout["speakers"].items() if info["held_out"]]
    assert len(held_out_speakers) == 1
    voices = {info["voice"] for info in layout["speakers"].values() if not info["held_out"]}
    assert layout["speakers"][held_out_speakers[0]]["voice"] not in voices
    train = [u for u in layout["utterances"] if u["split"] == "train"]
    test = [u for u in layout["utterances"] if u["split"] == "test"]
    assert all(u["speaker"] != held_out_speakers[0] for u in train)
    assert not {u["id"] for u in train} & set(layout["held_out_sentences"])
    assert {u["id"] for u in test} <= set(layout["held_out_sentences"])
    assert len(layout["utterances"]) == 8 * 80 and len(test) == 80 + 7 * 8


def test_grid_layout_is_read_by_the_grid_reader(tiny_root):
    utterances = corpora.read_corpus("demo", tiny_root)
    assert len(utterances) == 9
    assert {u.speaker for u in utterances} == {"s1", "s2", "s3"}
    for utterance in utterances:
        assert utterance.video_path.suffix == ".mpg"
        assert utterance.audio_path is not None and utterance.align_path is not None
        assert utterance.au_csv_path is not None
        grid.Sentence.from_grid_id(utterance.utterance_id)  # a valid GRID id


def test_video_audio_align_and_ground_truth_agree(tiny_root):
    utterance = corpora.read_corpus("demo", tiny_root)[0]
    clip = video.read_video(utterance.video_path)
    info = video.video_info(utterance.video_path)
    assert info.video_codec == "mpeg1video" and info.audio_codec == "mp2"
    assert clip.fps == 25 and clip.frames.shape[1:] == (288, 360, 3)
    waveform, rate = soundfile.read(utterance.audio_path)
    assert rate == 16000 and len(waveform) == clip.num_frames * 640
    segments = grid.read_align(utterance.align_path)
    assert segments[0][2] == "sil" and segments[-1][2] == "sil"
    assert segments[-1][1] == pytest.approx(clip.num_frames / 25, abs=1e-3)
    words = [word for _, _, word in segments if word not in ("sil", "sp")]
    assert " ".join(words) == grid.Sentence.from_grid_id(utterance.utterance_id).text
    labels = au_labels.read_openface_csv(utterance.au_csv_path, (25, 26), clip.num_frames)
    mouth = np.load(tiny_root / utterance.speaker / "mouth" / f"{utterance.utterance_id}.npy")
    expected = visemes.au_intensities(mouth, (25, 26))
    np.testing.assert_allclose(labels.intensity, expected, atol=0.006)  # CSV keeps 2 decimals
    assert labels.intensity[:3].max() < 0.2  # lips closed in the leading silence
    assert labels.intensity[:, 1].max() > 1.5  # the jaw opens somewhere


def test_open_mouth_frames_are_darker_in_the_mouth_than_closed_ones(tiny_root):
    from keras_autalk.media import face

    utterance = corpora.read_corpus("demo", tiny_root)[1]
    clip = video.read_video(utterance.video_path)
    mouth = np.load(tiny_root / utterance.speaker / "mouth" / f"{utterance.utterance_id}.npy")
    opening = mouth[:, 0] + mouth[:, 1]
    open_index, closed_index = int(np.argmax(opening)), int(np.argmin(opening))
    landmarks = face.find_face(clip.frames[closed_index]).landmarks
    left, top = landmarks[48:68].min(axis=0).astype(int)
    right, bottom = landmarks[48:68].max(axis=0).astype(int)
    region = (slice(top, bottom + 8), slice(left, right))
    dark = lambda frame: np.mean(frame[region].mean(axis=2) < 60)  # noqa: E731
    assert dark(clip.frames[open_index]) > dark(clip.frames[closed_index]) + 0.05


def test_rendering_is_deterministic_and_resumable(tiny_root, tmp_path):
    manifest = json.loads((tiny_root / demo_corpus.MANIFEST_NAME).read_text())
    item = manifest["utterances"][0]
    copy = tmp_path / "copy"
    shutil.copytree(tiny_root, copy)
    mpg = copy / item["speaker"] / f"{item['id']}.mpg"
    mpg.unlink()
    others = {p: p.stat().st_mtime_ns for p in copy.rglob("*.mpg")}
    demo_corpus.render_corpus(copy, TINY, num_workers=1, progress=False)
    assert mpg.exists()
    assert {p: p.stat().st_mtime_ns for p in others} == others  # finished ones untouched
    wav = f"{item['speaker']}/audio/{item['id']}.wav"
    assert (copy / wav).read_bytes() == (tiny_root / wav).read_bytes()
    np.testing.assert_array_equal(
        video.read_video(mpg).frames,
        video.read_video(tiny_root / item["speaker"] / mpg.name).frames,
    )


def test_other_settings_in_the_same_folder_are_refused(tiny_root):
    with pytest.raises(AutalkError, match="other settings"):
        demo_corpus.render_corpus(
            tiny_root, demo_corpus.size_config("tiny", seed=5), num_workers=1, progress=False
        )


def test_shipped_au_estimator_reads_aus_from_rendered_video(tiny_root):
    # The full chain a real corpus without OpenFace takes: rendered video ->
    # dlib tracking -> crop landmarks -> the calibrated estimator shipped in
    # keras_autalk/assets, compared with the ground truth it never saw.
    import dataclasses

    from keras_autalk.datasets import prepare

    utterances = [u for u in corpora.read_corpus("demo", tiny_root) if u.speaker == "s3"]
    predicted, truth = [], []
    for utterance in utterances:
        unlabelled = dataclasses.replace(utterance, au_csv_path=None)
        result = prepare.prepare_utterance(
            unlabelled, au_estimator=au_labels.DEFAULT_ESTIMATOR_PATH
        )
        assert result.ok and result.stats["au_source"] == "estimator"
        num_frames = len(result.example["au_mask"])
        predicted.append(np.asarray(result.example["au_intensity"]).reshape(num_frames, -1))
        truth.append(
            au_labels.read_openface_csv(
                utterance.au_csv_path, (10, 14, 20, 25, 26), num_frames
            ).intensity
        )
    correlation = au_labels.per_au_correlation(
        np.concatenate(predicted), np.concatenate(truth), (10, 14, 20, 25, 26)
    )
    assert correlation["AU25"] > 0.85 and correlation["AU26"] > 0.85, correlation


def test_the_people_corpus_puts_training_people_on_training_utterances(people, festvox_ru):
    layout = demo_corpus.plan(demo_corpus.SIZES["people-tiny"])
    held_out = {person.name for person in people if person.held_out}
    known = {person.name for person in people}
    for item in layout["utterances"]:
        assert item["person"] in known
        assert (item["person"] in held_out) == (item["split"] == "test")
    sources = {item.get("source", "espeak") for item in layout["utterances"]}
    assert sources == {"espeak", "festvox-ru", "fillets-cs", "fillets-nl"}
    assert layout == demo_corpus.plan(demo_corpus.SIZES["people-tiny"])


def test_a_festvox_piece_and_a_fillets_line_render_with_their_ground_truth(
    tmp_path, people, festvox_ru
):
    layout = demo_corpus.plan(demo_corpus.SIZES["people-tiny"])
    config = demo_corpus.SIZES["people-tiny"]
    for source in ("festvox-ru", "fillets-nl"):
        item = next(u for u in layout["utterances"] if u.get("source") == source)
        frames = demo_corpus.render_recorded(tmp_path, config, item["speaker"], item)
        assert frames > 20
        folder = tmp_path / item["speaker"]
        waveform, rate = soundfile.read(folder / "audio" / f"{item['id']}.wav")
        assert rate == 16000 and waveform.size == frames * 640
        mouth = np.load(folder / "mouth" / f"{item['id']}.npy")
        assert mouth.shape == (frames, len(visemes.MOUTH_PARAMETERS))
        assert mouth[:, 0].max() > 0.3 and mouth[:3, 0].max() < 0.05  # opens, starts shut
        clip = video.read_video(folder / f"{item['id']}.mpg")
        assert clip.frames.shape == (frames, 288, 360, 3)
        words = grid.read_align(folder / "align" / f"{item['id']}.align")
        assert any(word not in ("sil", "sp") for _, _, word in words)
        assert demo_corpus.render_recorded(tmp_path, config, item["speaker"], item) == 0
