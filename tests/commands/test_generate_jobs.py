"""`autalk generate` with several clips: repeated --audio, an -o folder, a --jobs file."""

import numpy as np
import pytest
import soundfile
from PIL import Image

from keras_autalk.media import video
from tests.conftest import files_in
from tests.pretrained_helpers import speech_like
from tests.test_cli import assert_one_sentence_error, run


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, grace_hopper):
    """Two photos and two short recordings in one folder."""
    folder = tmp_path_factory.mktemp("inputs")
    Image.fromarray(grace_hopper).save(folder / "grace.jpg", quality=95)
    Image.fromarray(grace_hopper[:, ::-1]).save(folder / "mirrored grace.png")
    soundfile.write(folder / "hello.wav", speech_like(0.8, 16000, channels=1), 16000)
    soundfile.write(folder / "goodbye.flac", speech_like(1.2, 44100, channels=2), 44100)
    soundfile.write(folder / "silence.wav", np.zeros(16000, np.float32), 16000)
    return folder


def write_jobs(folder, text):
    path = folder / "jobs.txt"
    path.write_text(text)
    return path


def test_a_jobs_file_renders_every_clip_relative_to_its_folder(capsys, tmp_path, inputs):
    (tmp_path / "out").mkdir()
    jobs = write_jobs(
        tmp_path,
        (
            "# photo  speech  output\n"
            f"{inputs}/grace.jpg {inputs}/hello.wav out/a.mp4\n"
            "\n"
            f"'{inputs}/mirrored grace.png' {inputs}/goodbye.flac out/b.mp4  # a comment\n"
            f"{inputs}/grace.jpg {inputs}/goodbye.flac out/c.mp4\n"
        ),
    )
    status, out, err = run(capsys, "generate", "--jobs", str(jobs))
    assert status == 0, err
    assert [line.split(":")[0] for line in out.splitlines()] == [
        f"wrote {tmp_path}/out/a.mp4",
        f"wrote {tmp_path}/out/c.mp4",  # grace's clips together
        f"wrote {tmp_path}/out/b.mp4",
    ]
    assert files_in(tmp_path / "out") == ["a.mp4", "b.mp4", "c.mp4"]
    frames = {name: video.video_info(tmp_path / "out" / f"{name}.mp4").num_frames for name in "abc"}
    assert frames == {"a": 20, "b": 30, "c": 30}
    assert "Clips" in err  # a progress bar over the clips


def test_several_audio_files_into_a_folder(capsys, tmp_path, inputs):
    status, out, err = run(
        capsys,
        "generate",
        "--image",
        str(inputs / "grace.jpg"),
        "--audio",
        str(inputs / "hello.wav"),
        "--audio",
        str(inputs / "goodbye.flac"),
        "-o",
        str(tmp_path),
    )
    assert status == 0, err
    assert files_in(tmp_path) == ["goodbye.mp4", "hello.mp4"]
    assert out.count("(litert)") == 2


def test_several_audio_files_each_with_its_output(capsys, tmp_path, inputs):
    status, _, err = run(
        capsys,
        "generate",
        "--image",
        str(inputs / "grace.jpg"),
        "--audio",
        str(inputs / "hello.wav"),
        "-o",
        str(tmp_path / "1.mp4"),
        "--audio",
        str(inputs / "goodbye.flac"),
        "-o",
        str(tmp_path / "2.mp4"),
    )
    assert status == 0, err
    assert video.video_info(tmp_path / "1.mp4").num_frames == 20
    assert video.video_info(tmp_path / "2.mp4").num_frames == 30


@pytest.mark.parametrize(
    "text, message",
    [
        (
            "{i}/grace.jpg {i}/hello.wav\n",
            "line 1: expected 3 fields (photo, speech, output), found 2; quote a path that has "
            "spaces.",
        ),
        ("# only a comment\n\n", "lists no job"),
        ("{i}/grace.jpg '{i}/hello.wav out/a.mp4\n", "line 1: No closing quotation."),
        (
            "{i}/grace.jpg {i}/hello.wav a.mp4\n{i}/grace.jpg {i}/missing.wav b.mp4\n",
            "line 2: The audio file '{i}/missing.wav' does not exist.",
        ),
        (
            "{i}/grace.jpg {i}/hello.wav a.mp4\n{i}/grace.jpg {i}/goodbye.flac a.mp4\n",
            "line 2: The output '{t}/a.mp4' is also written by '{t}/jobs.txt' line 1; give each "
            "clip its own output.",
        ),
        (
            "{i}/grace.jpg {i}/hello.wav a.mp4\n{i}/grace.jpg {i}/silence.wav b.mp4\n",
            "line 2: The audio file '{i}/silence.wav' is silent",
        ),
        (
            "{i}/grace.jpg {i}/hello.wav {i}/goodbye.mp4\n{i}/grace.jpg {i}/hello.wav {i}/grace.jpg\n",
            "line 2: Cannot write the video '{i}/grace.jpg': give a file name ending in .mp4.",
        ),
        (
            "{i}/grace.jpg {i}/hello.wav b.mp4\n{i}/grace.jpg {i}/hello.wav missing/c.mp4\n",
            "line 2: Cannot write the video",
        ),
    ],
)
def test_a_bad_jobs_line_is_named_and_nothing_is_written(capsys, tmp_path, inputs, text, message):
    jobs = write_jobs(tmp_path, text.format(i=inputs, t=tmp_path))
    before = files_in(inputs)
    status, out, err = run(capsys, "generate", "--jobs", str(jobs))
    assert_one_sentence_error(status, err)
    assert f"'{jobs}' " in err or "lists no job" in err
    assert message.format(i=inputs, t=tmp_path) in err
    assert files_in(tmp_path) == ["jobs.txt"]  # no clip written, not even the good ones
    assert files_in(inputs) == before
    assert out == ""


def test_a_clip_that_fails_while_rendering_names_its_line(capsys, tmp_path, inputs):
    # No face in a grey picture: found only when its clip is rendered. The
    # clips before it are complete; it leaves nothing.
    Image.fromarray(np.full((300, 300, 3), 128, np.uint8)).save(tmp_path / "grey.png")
    jobs = write_jobs(
        tmp_path,
        f"{inputs}/grace.jpg {inputs}/hello.wav a.mp4\ngrey.png {inputs}/hello.wav b.mp4\n",
    )
    status, _, err = run(capsys, "generate", "--jobs", str(jobs))
    shown = err.rsplit("\r", 1)[-1]  # what a terminal shows: the bar is cleared first
    assert_one_sentence_error(status, shown)
    assert shown.startswith(f"autalk: error: '{jobs}' line 2: No face was found")
    assert files_in(tmp_path) == ["a.mp4", "grey.png", "jobs.txt"]


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["--audio", "{i}/hello.wav", "--audio", "{i}/goodbye.flac", "-o", "{t}/a.mp4"],
            "Give one -o per --audio (got 2 --audio and 1 -o), or one existing folder as -o.",
        ),
        (
            [
                "--audio",
                "{i}/hello.wav",
                "--audio",
                "{i}/goodbye.flac",
                "-o",
                "{t}",
                "--au-csv",
                "{t}/au.csv",
            ],
            "--au-csv writes the AU curves of one clip",
        ),
        (["--jobs", "{t}/jobs.txt", "-o", "{t}/a.mp4"], "leave out --image, -o"),
        (
            ["--runtime", "onnx", "--audio", "{i}/hello.wav", "-o", "{t}/a.mp4"],
            "runtime must be one of auto, litert, keras, got 'onnx'.",
        ),
    ],
)
def test_bad_clip_options_are_one_sentence(capsys, tmp_path, inputs, argv, message):
    write_jobs(tmp_path, f"{inputs}/grace.jpg {inputs}/hello.wav a.mp4\n")
    argv = [part.format(i=inputs, t=tmp_path) for part in argv]
    status, _, err = run(capsys, "generate", "--image", str(inputs / "grace.jpg"), *argv)
    assert_one_sentence_error(status, err)
    assert message in err
    assert files_in(tmp_path) == ["jobs.txt"]
