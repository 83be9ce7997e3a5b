"""The `autalk` command: doctor, align, and one-sentence errors on bad input."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from keras_autalk import cli
from tests.conftest import files_in


def run(capsys, *argv):
    status = cli.main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def assert_one_sentence_error(status, err):
    assert status != 0
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("autalk: error: ")
    assert "Traceback" not in err


def test_doctor_reports_every_component(capsys):
    status, out, _ = run(capsys, "doctor")
    assert status == 0, out
    names = [line.split()[1] for line in out.strip().splitlines()]
    for name in (
        "keras-autalk",
        "tensorflow",
        "keras",
        "tensorflow-io",
        "dlib",
        "ffmpeg",
        "espeak-ng",
    ):
        assert name in names
    dlib_line = next(line for line in out.splitlines() if line.split()[1] == "dlib")
    assert dlib_line.startswith("ok") and "68-point" in dlib_line
    ffmpeg_line = next(line for line in out.splitlines() if line.split()[1] == "ffmpeg")
    assert "libx264" in ffmpeg_line


def test_doctor_full_imports_tensorflow_and_loads_the_models(capsys):
    status, out, _ = run(capsys, "doctor", "--full")
    assert status == 0, out
    lines = {line.split()[1]: line for line in out.strip().splitlines()}
    assert lines["tensorflow"].split()[2] == "2.17.1" and "installed" not in lines["tensorflow"]
    assert "backend tensorflow" in lines["keras"]
    assert "HOG + CNN detectors, 68-point predictor and face embedding load" in lines["dlib"]
    assert "runs the bundled generator.tflite" in lines["ai-edge-litert"]


def test_doctor_fails_when_a_required_part_is_missing(capsys, monkeypatch):
    from keras_autalk.commands import doctor
    from keras_autalk.media import face

    def missing(kind):
        raise face.MissingDependencyError("dlib's model file x.dat is missing.")

    monkeypatch.setattr(face, "model_path", missing)
    face._cnn_detector.cache_clear()
    face._shape_predictor.cache_clear()
    try:
        checks = doctor.run_checks()
    finally:
        monkeypatch.undo()
        face._cnn_detector.cache_clear()
        face._shape_predictor.cache_clear()
    assert not doctor.all_required_ok(checks)
    assert "MISSING  dlib" in doctor.format_report(checks)


@pytest.mark.parametrize("photo_name", ["astronaut", "grace_hopper"])
def test_align_writes_crop_and_landmarks(capsys, tmp_path, request, photo_name):
    photo = request.getfixturevalue(photo_name)
    source = tmp_path / f"{photo_name}.png"
    Image.fromarray(photo).save(source)
    crop, landmarks = tmp_path / "crop.png", tmp_path / "landmarks.json"
    status, out, err = run(
        capsys, "align", str(source), "-o", str(crop), "--landmarks", str(landmarks)
    )
    assert status == 0, err
    assert np.asarray(Image.open(crop)).shape == (128, 128, 3)
    record = json.loads(landmarks.read_text())
    assert np.asarray(record["landmarks"]).shape == (68, 2)
    assert np.asarray(record["crop_landmarks"]).shape == (68, 2)
    assert record["image_size"] == [photo.shape[1], photo.shape[0]]
    if photo_name == "astronaut":
        assert "ignored a detection" in err  # the suit false positive, said so


def test_align_size_option(capsys, tmp_path, photo_file):
    crop = tmp_path / "crop.jpg"
    status, _, err = run(capsys, "align", str(photo_file), "-o", str(crop), "--size", "64")
    assert status == 0, err
    assert Image.open(crop).size == (64, 64)


def _bad_images(folder, rng):
    (folder / "empty.png").write_bytes(b"")
    (folder / "corrupt.png").write_bytes(
        b"\x89PNG\r\n\x1a\n" + bytes(rng.integers(0, 256, 500, dtype=np.uint8))
    )
    Image.new("RGB", (1, 1)).save(folder / "one.png")
    Image.new("L", (12000, 12000)).save(folder / "huge.png", compress_level=1)
    Image.fromarray(rng.integers(0, 255, (200, 200, 3), dtype=np.uint8)).save(folder / "noface.png")
    (folder / "a_folder").mkdir()
    return {
        "missing": (folder / "nope.jpg", "does not exist"),
        "directory": (folder / "a_folder", "is a directory"),
        "empty": (folder / "empty.png", "is empty"),
        "corrupt": (folder / "corrupt.png", "not an image file"),
        "tiny": (folder / "one.png", "1x1 pixels"),
        "huge": (folder / "huge.png", "12000x12000 pixels"),
        "no face": (folder / "noface.png", "No face was found"),
    }


def test_align_bad_images_give_one_sentence_and_no_output(capsys, tmp_path, rng):
    inputs, outputs = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    outputs.mkdir()
    for name, (path, message) in _bad_images(inputs, rng).items():
        status, _, err = run(
            capsys,
            "align",
            str(path),
            "-o",
            str(outputs / "crop.png"),
            "--landmarks",
            str(outputs / "crop.json"),
        )
        assert_one_sentence_error(status, err)
        assert message in err, (name, err)
        assert files_in(outputs) == [], name


def test_align_output_in_missing_folder(capsys, tmp_path, photo_file):
    status, _, err = run(capsys, "align", str(photo_file), "-o", str(tmp_path / "no" / "crop.png"))
    assert_one_sentence_error(status, err)
    assert "does not exist" in err


def test_align_unknown_crop_format(capsys, tmp_path, photo_file):
    status, _, err = run(capsys, "align", str(photo_file), "-o", str(tmp_path / "crop.xyz"))
    assert_one_sentence_error(status, err)
    assert ".png" in err
    assert files_in(tmp_path) == ["grace_hopper.jpg"]


def test_console_script_errors_without_traceback(tmp_path):
    # The installed entry point itself, as a user runs it.
    autalk = os.path.join(os.path.dirname(sys.executable), "autalk")
    result = subprocess.run(
        [autalk, "align", str(tmp_path / "missing.jpg"), "-o", str(tmp_path / "c.png")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"autalk: error: The image '{tmp_path / 'missing.jpg'}' does not exist."
    )
    assert result.stdout == ""


def _speech_like(seconds, sample_rate=22050, channels=1):
    """Syllable-like tone bursts (a stand-in for speech with a clear rhythm)."""
    time = np.arange(int(seconds * sample_rate)) / sample_rate
    envelope = np.clip(np.sin(2 * np.pi * 3 * time), 0, None)
    signal = (
        0.3 * envelope * np.sin(2 * np.pi * 220 * time) * (1 + 0.5 * np.sin(2 * np.pi * 900 * time))
    )
    return np.repeat(signal[:, None], channels, axis=1).astype(np.float32)


def test_features_writes_per_frame_windows(capsys, tmp_path):
    import soundfile

    source = tmp_path / "speech.flac"
    soundfile.write(source, _speech_like(2.0, 44100, channels=2), 44100)
    target = tmp_path / "feats.npy"
    status, out, err = run(capsys, "features", str(source), "-o", str(target))
    assert status == 0, err
    features = np.load(target)
    assert features.shape == (50, 20, 80)
    assert "50 frames" in out


def test_features_bad_audio_gives_one_sentence_and_no_output(capsys, tmp_path):
    import soundfile

    inputs, outputs = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    outputs.mkdir()
    (inputs / "empty.wav").write_bytes(b"")
    (inputs / "corrupt.mp3").write_bytes(b"ID3" + bytes(range(256)) * 8)
    soundfile.write(inputs / "short.wav", _speech_like(0.1, 16000), 16000)
    soundfile.write(inputs / "silence.wav", np.zeros(32000, np.float32), 16000)
    cases = {
        "missing.wav": "does not exist",
        "empty.wav": "is empty",
        "corrupt.mp3": "is corrupt",
        "short.wav": "0.10 s long",
        "silence.wav": "silent",
    }
    for name, message in cases.items():
        status, _, err = run(capsys, "features", str(inputs / name), "-o", str(outputs / "f.npy"))
        assert_one_sentence_error(status, err)
        assert message in err, (name, err)
        assert files_in(outputs) == [], name
    status, _, err = run(
        capsys, "features", str(inputs / "silence.wav"), "-o", str(tmp_path / "missing" / "f.npy")
    )
    assert_one_sentence_error(status, err)
    assert "does not exist" in err


def test_console_script_bad_audio_prints_only_one_line(tmp_path):
    # Native libraries (TensorFlow's start-up, libmpg123) write to stderr from
    # C; the user must still see just our sentence.
    corrupt = tmp_path / "corrupt.mp3"
    corrupt.write_bytes(b"ID3\x00\x00\x00" + b"garbage" * 200)
    autalk = os.path.join(os.path.dirname(sys.executable), "autalk")
    result = subprocess.run(
        [autalk, "features", str(corrupt), "-o", str(tmp_path / "f.npy")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"autalk: error: The audio file '{corrupt}' is corrupt or not in a readable audio format."
    ]
    assert files_in(tmp_path) == ["corrupt.mp3"]


@pytest.mark.parametrize("mode", ["RGBA", "L", "I;16"])
def test_align_accepts_rgba_grayscale_and_16_bit_photos(capsys, tmp_path, grace_hopper, mode):
    photo = Image.fromarray(grace_hopper)
    if mode == "RGBA":
        photo = photo.convert("RGBA")
    elif mode == "L":
        photo = photo.convert("L")
    else:
        gray = np.asarray(photo.convert("L")).astype(np.uint16) * 257
        photo = Image.fromarray(gray)
    source = tmp_path / "photo.png"
    photo.save(source)
    crop = tmp_path / "crop.png"
    status, _, err = run(capsys, "align", str(source), "-o", str(crop))
    assert status == 0, err
    assert np.asarray(Image.open(crop)).shape == (128, 128, 3)
