"""`autalk generate` and `autalk demo`: success, notes, and one-sentence errors on bad input."""

import json
import math

import numpy as np
import pytest
import soundfile
from PIL import Image

from keras_autalk.inference import generate as generation
from keras_autalk.media import video
from keras_autalk.presets import pretrained
from tests.conftest import files_in
from tests.pretrained_helpers import perturbed_talker, speech_like
from tests.test_cli import assert_one_sentence_error, run


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return pretrained.save_pretrained(
        perturbed_talker(seed=1), tmp_path_factory.mktemp("models") / "tiny"
    )


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, grace_hopper):
    folder = tmp_path_factory.mktemp("inputs")
    Image.fromarray(grace_hopper).save(folder / "photo.jpg", quality=95)
    # Two faces: the photo, and beside it the same face at half the size.
    small = np.asarray(
        Image.fromarray(grace_hopper).resize(
            (grace_hopper.shape[1] // 2, grace_hopper.shape[0] // 2)
        )
    )
    pair = np.full(
        (grace_hopper.shape[0], grace_hopper.shape[1] + small.shape[1], 3), 128, np.uint8
    )
    pair[:, : grace_hopper.shape[1]] = grace_hopper
    pair[: small.shape[0], grace_hopper.shape[1] :] = small
    Image.fromarray(pair).save(folder / "two_faces.png")
    soundfile.write(folder / "speech.flac", speech_like(1.2, 48000, channels=1), 48000)
    return folder


def test_generate_writes_video_and_au_csv(capsys, tmp_path, inputs, model_dir):
    output, csv = tmp_path / "talk.mp4", tmp_path / "talk_au.csv"
    status, out, err = run(
        capsys,
        "generate",
        "--image",
        str(inputs / "two_faces.png"),
        "--audio",
        str(inputs / "speech.flac"),
        "-o",
        str(output),
        "--au-csv",
        str(csv),
        "--articulation",
        "0",
        "--fps",
        "25",
        "--size",
        "128",
        "--model",
        str(model_dir),
    )
    assert status == 0, err
    assert err.strip().splitlines() == [
        line for line in err.strip().splitlines() if line.startswith("autalk: note: ")
    ]
    assert "found 2 faces (1 at 180,139,186,186; 2 at " in err and "animating face 1 at" in err
    assert out.startswith(f"wrote {output} and {csv}: 30 frames at 25 fps")
    info = video.video_info(output)
    assert info.num_frames == 30 and info.has_audio and info.sample_rate == 48000
    assert info.width == 768  # the whole photo, both faces
    rows = csv.read_text().splitlines()[1:]
    assert len(rows) == 30
    # Articulation 0: every AU intensity written is zero.
    assert {cell.strip() for row in rows for cell in row.split(",")[4:]} == {"0.00"}
    assert files_in(tmp_path) == ["talk.mp4", "talk_au.csv"]


def _bad_inputs(folder, rng, model_dir):
    """(args, expected words) for each kind of bad input."""
    photo, speech = folder / "photo.jpg", folder / "speech.flac"
    bad = folder / "bad"
    bad.mkdir(exist_ok=True)
    Image.fromarray(rng.integers(0, 255, (200, 200, 3), dtype=np.uint8)).save(bad / "noise.png")
    Image.new("RGB", (20, 20)).save(bad / "tiny.png")
    (bad / "empty.wav").write_bytes(b"")
    (bad / "corrupt.mp3").write_bytes(b"ID3" + bytes(range(256)) * 8)
    soundfile.write(bad / "silence.wav", np.zeros(32000, np.float32), 16000)
    soundfile.write(bad / "short.wav", speech_like(0.2, 16000, channels=1), 16000)
    old = bad / "old_model"
    if not old.exists():
        pretrained.save_pretrained(perturbed_talker(seed=1), old)
        record = json.loads((old / "model.json").read_text())
        record.update(format_version=0, package_version="0.0.1")
        (old / "model.json").write_text(json.dumps(record))
    return {
        "missing photo": (
            ["--image", str(bad / "nope.jpg"), "--audio", str(speech)],
            "does not exist",
        ),
        "no face": (
            ["--image", str(bad / "noise.png"), "--audio", str(speech)],
            "No face was found",
        ),
        "tiny image": (["--image", str(bad / "tiny.png"), "--audio", str(speech)], "20x20 pixels"),
        "missing audio": (
            ["--image", str(photo), "--audio", str(bad / "nope.wav")],
            "does not exist",
        ),
        "empty audio": (["--image", str(photo), "--audio", str(bad / "empty.wav")], "is empty"),
        "corrupt audio": (
            ["--image", str(photo), "--audio", str(bad / "corrupt.mp3")],
            "is corrupt",
        ),
        "silent audio": (["--image", str(photo), "--audio", str(bad / "silence.wav")], "is silent"),
        "short audio": (["--image", str(photo), "--audio", str(bad / "short.wav")], "0.20 s long"),
        "old model": (
            ["--image", str(photo), "--audio", str(speech), "--model", str(old)],
            "made by keras-autalk 0.0.1",
        ),
        "unknown model": (
            ["--image", str(photo), "--audio", str(speech), "--model", "nope"],
            "Unknown pretrained model 'nope'",
        ),
        "size mismatch": (
            ["--image", str(photo), "--audio", str(speech), "--size", "64"],
            "runs at 128x128 pixels, so --size 64 cannot be used",
        ),
        "articulation": (
            ["--image", str(photo), "--audio", str(speech), "--articulation", "-1"],
            "articulation must be a number from 0",
        ),
        "fps": (
            ["--image", str(photo), "--audio", str(speech), "--fps", "0"],
            "fps must be a number from 1",
        ),
    }


def test_bad_input_gives_one_sentence_and_leaves_nothing(capsys, tmp_path, inputs, model_dir, rng):
    outputs = tmp_path / "out"
    outputs.mkdir()
    for name, (args, message) in _bad_inputs(inputs, rng, model_dir).items():
        if "--model" not in args:
            args = args + ["--model", str(model_dir)]
        status, out, err = run(
            capsys,
            "generate",
            *args,
            "-o",
            str(outputs / "talk.mp4"),
            "--au-csv",
            str(outputs / "talk.csv"),
        )
        assert_one_sentence_error(status, err)
        assert status == 1
        assert message in err, (name, err)
        assert files_in(outputs) == [], name


def test_output_problems(capsys, tmp_path, inputs, model_dir):
    common = [
        "--image",
        str(inputs / "photo.jpg"),
        "--audio",
        str(inputs / "speech.flac"),
        "--model",
        str(model_dir),
    ]
    status, _, err = run(capsys, "generate", *common, "-o", str(tmp_path / "no" / "t.mp4"))
    assert_one_sentence_error(status, err)
    assert "does not exist" in err
    status, _, err = run(capsys, "generate", *common, "-o", str(tmp_path / "t.avi"))
    assert_one_sentence_error(status, err)
    assert "ending in .mp4" in err
    assert files_in(tmp_path) == []


def test_demo_without_the_bundled_model_says_what_is_missing(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(pretrained, "SEARCH_DIRS", (tmp_path / "no_models",))
    output = tmp_path / "demo.mp4"
    status, _, err = run(capsys, "demo", "-o", str(output))
    assert_one_sentence_error(status, err)
    assert "bundled pretrained model 'demo' is missing" in err
    assert files_in(tmp_path) == []


def test_demo(capsys, tmp_path):
    # The README's main command, on the bundled photo, speech and model.
    output = tmp_path / "demo.mp4"
    status, out, err = run(capsys, "demo", "-o", str(output))
    assert status == 0, err
    info = video.video_info(output)
    speech = soundfile.info(str(generation.demo_speech_path()))
    assert info.has_audio and info.num_frames == math.ceil(speech.duration * 25 - 1e-9)
    assert (info.width, info.height) == (512, 600)  # the grace_hopper photo
