"""The LiteRT runtime and the warm `Talker`: parity with Keras, runtime choice, several clips."""

import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile
from PIL import Image

from keras_autalk.errors import AutalkError
from keras_autalk.inference import generate as generation
from keras_autalk.inference import runtime
from keras_autalk.inference.session import Talker
from keras_autalk.media import video
from keras_autalk.presets import pretrained
from tests.conftest import files_in


@pytest.fixture(scope="module")
def speech(tmp_path_factory):
    """2.4 s of the bundled speech, at 44.1 kHz stereo as a user's recording may be."""
    from keras_autalk.media import audio_backends

    samples, rate = soundfile.read(generation.demo_speech_path(), dtype="float32")
    samples = audio_backends.resample(samples[: int(2.4 * rate)], rate, 44100, "soundfile")
    path = tmp_path_factory.mktemp("speech") / "speech.wav"
    soundfile.write(path, np.stack([samples, 0.8 * samples], axis=1), 44100)
    return path


def psnr(first, second):
    error = np.mean((first.astype(np.float64) - second.astype(np.float64)) ** 2)
    return 10 * np.log10(255.0**2 / error)


def test_litert_video_matches_the_keras_video(tmp_path, grace_hopper, speech):
    # The bundled model on both runtimes, same photo and speech, windows as
    # generate uses them (two windows and a crossfade: 60 frames in 40 + 28).
    results = {}
    for name in ("litert", "keras"):
        results[name] = generation.generate(
            grace_hopper,
            speech,
            tmp_path / f"{name}.mp4",
            progress=False,
            runtime=name,
            window_frames=40,
            overlap_frames=8,
        )
        assert results[name].runtime == name
    litert, keras = (video.read_video(tmp_path / f"{name}.mp4") for name in ("litert", "keras"))
    assert litert.frames.shape == keras.frames.shape == (60, 600, 512, 3)
    assert psnr(litert.frames, keras.frames) >= 45.0
    difference = np.abs(results["litert"].au_intensity - results["keras"].au_intensity)
    assert difference.max() <= 0.01
    assert results["keras"].au_intensity.max() > 0.2  # the curves compared are not flat


def test_auto_chooses_litert_for_the_bundled_model_and_keras_without_the_file(tmp_path):
    assert runtime.choose_runtime(pretrained.resolve_model_dir("demo")) == "litert"
    assert runtime.choose_runtime(pretrained.resolve_model_dir("demo"), "keras") == "keras"
    folder = tmp_path / "no_litert"
    folder.mkdir()
    assert runtime.choose_runtime(folder) == "keras"
    with pytest.raises(AutalkError, match="needs a generator.tflite in the model folder"):
        runtime.choose_runtime(folder, "litert")
    with pytest.raises(AutalkError, match="runtime must be one of auto, litert, keras, got 'onnx'"):
        runtime.choose_runtime(folder, "onnx")


def test_litert_generate_never_imports_tensorflow(tmp_path, speech):
    script = (
        "import sys\n"
        "from keras_autalk.inference import generate\n"
        "from keras_autalk.media import photos\n"
        f"result = generate.generate(photos.load_photo('grace_hopper'), {str(speech)!r}, "
        f"{str(tmp_path / 'talk.mp4')!r}, progress=False)\n"
        "print(result.runtime, result.num_frames,\n"
        "      sorted(name for name in ('tensorflow', 'keras', 'librosa') if name in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["litert", "60", "[]"]
    assert "XNNPACK" not in done.stderr  # LiteRT's notice is not the user's business


def test_a_talker_prepares_the_face_once_and_speaks_many_clips(tmp_path, grace_hopper, speech):
    talker = Talker(grace_hopper)
    assert talker.runtime == "litert" and talker.face_box == (180, 139, 366, 325)
    first = talker.speak(speech, tmp_path / "one.mp4", au_csv=tmp_path / "one.csv")
    second = talker.speak(speech, tmp_path / "two.mp4", articulation=0.5, progress=False)
    assert first.timings["face"] > 0 and first.timings["load model"] > 0
    assert second.timings["face"] == 0 and second.timings["load model"] == 0
    assert first.num_frames == second.num_frames == 60
    np.testing.assert_allclose(second.au_intensity, 0.5 * first.au_intensity, atol=1e-3)
    # The same clip spoken by a fresh generate() gives the same curves.
    again = generation.generate(grace_hopper, speech, tmp_path / "three.mp4", progress=False)
    np.testing.assert_array_equal(again.au_intensity, first.au_intensity)
    assert files_in(tmp_path) == ["one.csv", "one.mp4", "three.mp4", "two.mp4"]
    with pytest.raises(AutalkError, match="is silent"):
        soundfile.write(tmp_path / "quiet.wav", np.zeros(16000, np.float32), 16000)
        talker.speak(tmp_path / "quiet.wav", tmp_path / "four.mp4")
    assert "four.mp4" not in files_in(tmp_path)


def test_a_talker_refuses_litert_for_a_loaded_keras_model(grace_hopper):
    from tests.pretrained_helpers import perturbed_talker

    with pytest.raises(AutalkError, match="needs a model folder or name"):
        Talker(grace_hopper, model=perturbed_talker(seed=0), runtime="litert")


def test_export_litert_adds_a_checked_file_and_leaves_the_source(capsys, tmp_path, grace_hopper):
    from tests.pretrained_helpers import perturbed_talker
    from tests.test_cli import run

    source = pretrained.save_pretrained(perturbed_talker(seed=3), tmp_path / "tiny")
    before = {path.name: path.read_bytes() for path in source.iterdir()}
    status, out, err = run(
        capsys,
        "export",
        "--format",
        "litert",
        "--model",
        str(source),
        "-o",
        str(tmp_path / "tiny_litert"),
    )
    assert status == 0, err
    assert "runs it on LiteRT" in out
    assert {path.name: path.read_bytes() for path in source.iterdir()} == before
    folder = tmp_path / "tiny_litert"
    assert files_in(folder) == ["generator.tflite", "generator.weights.npz", "model.json"]
    record = json.loads((folder / "model.json").read_text())
    assert record["litert"]["weights"] == "float16"
    assert record["litert"]["parity"]["au_max_abs_diff"] <= 0.01
    assert pretrained.check_files(folder) == 2  # both files' SHA-256 recorded and checked
    assert Talker(grace_hopper, model=folder).runtime == "litert"
    assert Talker(grace_hopper, model=source).runtime == "keras"
    # A damaged LiteRT file is refused in one sentence naming it.
    damaged = bytearray((folder / "generator.tflite").read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF
    (folder / "generator.tflite").write_bytes(bytes(damaged))
    with pytest.raises(AutalkError, match="generator.tflite' does not match the SHA-256"):
        Talker(grace_hopper, model=folder)


def test_the_photo_is_kept_at_its_own_size(tmp_path, grace_hopper, speech):
    big = np.asarray(Image.fromarray(grace_hopper).resize((1024, 1200)))
    result = Talker(big).speak(speech, tmp_path / "big.mp4", progress=False)
    info = video.video_info(tmp_path / "big.mp4")
    assert (info.width, info.height, info.num_frames) == (1024, 1200, result.num_frames)
