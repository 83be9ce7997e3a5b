"""The fault suite: bad inputs, stops, loads and full disks against the real `autalk` command.

One table (`CASES`), one test. Every case runs `python -m keras_autalk` as a
separate process in a folder of real input files and checks what a user
sees: the exit status, one sentence on stderr (never a traceback), which
files appear, and that no input changed and no temporary is left behind
(in the folder, as `.NAME.autalk-PID` scratch folders, or at the top of
the system's temporary directory: `autalk-run-*`, TensorFlow's
`__autograph_generated_file*.py`).

Kinds of case:
- "run": run the command and wait;
- "signal": start a long `generate`, send the signal once it is writing
  (its scratch folder exists), or after a fixed delay;
- "parallel": several runs at once;
- "disk": the output folder is a small or read-only tmpfs (skipped, with the
  reason, where this machine cannot mount one).

docs/reliability.md is this table in words, with the sentence each case
gives; `AUTALK_FAULT_REPORT=path.json pytest tests/test_faults.py` writes
the sentences measured.
"""

import contextlib
import dataclasses
import hashlib
import json
import math
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from typing import Callable, Optional, Sequence, Tuple

import numpy as np
import pytest
import soundfile
from PIL import Image

from keras_autalk.media import photos, video

SPEECH = (
    pathlib.Path(__file__).resolve().parents[1] / "keras_autalk" / "assets" / "demo_speech.flac"
)
STRANGE_NAME = 'it\'s "me"; $(touch pwned) `touch pwned2` & é ü.jpg'
REPORT_ENV = "AUTALK_FAULT_REPORT"
ONE_SENTENCE = re.compile(r"^autalk(?: [a-z]+)?: (error|note|stopped)")


@dataclasses.dataclass(frozen=True)
class Case:
    """One row of the fault table.

    Args:
        id: short name.
        args: the `autalk` arguments (run in the input folder).
        status: the exit status expected.
        says: a regular expression the last stderr line must match.
        creates: files (relative) that must exist afterwards (and are removed).
        kind: "run", "signal", "parallel" or "disk".
        signal: for "signal": the signal sent.
        delay: for "signal": seconds after start; None: once writing starts.
        tmpfs: for "disk": mount options of the output folder `disk/`.
        fill: for "disk": once the run is writing, fill the disk (`disk/filler`).
        check: optional extra check `check(folder, result)`.
    """

    id: str
    args: Sequence[str]
    status: int
    says: str = ""
    creates: Tuple[str, ...] = ()
    kind: str = "run"
    signal: Optional[int] = None
    delay: Optional[float] = None
    tmpfs: Optional[str] = None
    fill: bool = False
    check: Optional[Callable] = None


def gen(*extra, image="p.jpg", audio="talk.wav", output="o.mp4"):
    args = ["generate"]
    if image is not None:
        args += ["--image", image]
    if audio is not None:
        args += ["--audio", audio]
    if output is not None:
        args += ["-o", output]
    return args + list(extra)


def _no_pwned(folder, result):
    assert not (folder / "pwned").exists() and not (folder / "pwned2").exists()


def _valid_mp4(name, frames=None):
    def check(folder, result):
        clip = video.read_video(folder / name)
        assert clip.fps == 25 and clip.audio is not None and clip.audio.size > 0
        if frames is not None:
            assert clip.num_frames == frames

    return check


def _untouched_old_output(folder, result):
    assert (folder / "old.mp4").read_bytes() == (folder / "old.mp4.bak").read_bytes()


CASES = [
    # ---- files that are missing, empty, truncated, mis-named, not files
    Case("photo missing", gen(image="nope.jpg"), 1, r"image 'nope\.jpg' does not exist"),
    Case("photo empty", gen(image="empty.jpg"), 1, r"'empty\.jpg' is empty \(0 bytes\)"),
    Case("photo truncated", gen(image="truncated.jpg"), 1, r"truncated\.jpg"),
    Case("photo is a folder", gen(image="folder"), 1, r"'folder' is a directory"),
    Case("photo is a WAV named .jpg", gen(image="sound.jpg"), 1, r"sound\.jpg"),
    Case("photo without a face", gen(image="faceless.png"), 1, r"[Nn]o face"),
    Case("photo 1x1", gen(image="tiny.png"), 1, r"1x1"),
    Case("photo is a text file", gen(image="notes.txt"), 1, r"notes\.txt"),
    Case("audio missing", gen(audio="nope.wav"), 1, r"audio file 'nope\.wav' does not exist"),
    Case("audio empty", gen(audio="empty.wav"), 1, r"'empty\.wav' is empty \(0 bytes\)"),
    Case("audio truncated to its header", gen(audio="header.wav"), 1, r"header\.wav"),
    Case(
        "audio is a JPEG named .wav",
        gen(audio="picture.wav"),
        1,
        r"'picture\.wav' is corrupt or not in a readable audio format",
    ),
    Case("audio is a folder", gen(audio="folder"), 1, r"'folder' is a directory"),
    Case("audio silent", gen(audio="silent.wav"), 1, r"is silent"),
    Case("audio NaN samples", gen(audio="nan.wav"), 1, r"nan\.wav"),
    Case("audio 0.05 s", gen(audio="short.wav"), 1, r"0\.05 s long; at least 0\.50 s"),
    Case("audio a video without sound", gen(audio="mute.mp4"), 1, r"mute\.mp4"),
    # ---- flags
    Case("articulation negative", gen("--articulation", "-1"), 1, r"articulation must be"),
    Case("articulation nan", gen("--articulation", "nan"), 1, r"articulation must be"),
    Case("fps zero", gen("--fps", "0"), 1, r"fps must be"),
    Case("fps 1000", gen("--fps", "1000"), 1, r"fps must be"),
    Case("size the model does not run at", gen("--size", "64"), 1, r"--size 64 cannot be used"),
    Case("unknown model", gen("--model", "nosuchmodel"), 1, r"nosuchmodel"),
    Case("model from another version", gen("--model", "future_model"), 1, r"version"),
    Case("model weights pickled", gen("--model", "pickled_model"), 1, r"pickled_model"),
    Case("output not .mp4", gen(output="o.avi"), 1, r"ending in \.mp4"),
    Case(
        "output folder missing",
        gen(output="nowhere/o.mp4"),
        1,
        r"the folder 'nowhere' does not exist",
    ),
    Case("output is a folder", gen(output="folder"), 1, r"'folder' is a directory"),
    Case(
        "AU CSV folder missing",
        gen("--au-csv", "nowhere/au.csv"),
        1,
        r"the folder 'nowhere' does not exist",
    ),
    Case("AU CSV is the video", gen("--au-csv", "o.mp4"), 1, r"cannot be the same file"),
    Case("unknown flag", gen("--articulaton", "2"), 2, r"unrecognized arguments"),
    Case("unknown command", ["generat"], 2, r"invalid choice"),
    # ---- an output that is an input
    Case(
        "AU CSV is the audio",
        gen("--au-csv", "talk.wav"),
        1,
        r"The AU CSV 'talk\.wav' is the audio file 'talk\.wav'; an input is never overwritten",
    ),
    Case(
        "output is the audio video",
        gen(audio="clip.mp4", output="clip.mp4"),
        1,
        r"The video 'clip\.mp4' is the audio file 'clip\.mp4'; an input is never overwritten",
    ),
    Case(
        "output spelled another way",
        gen(audio="clip.mp4", output="folder/../clip.mp4"),
        1,
        r"The video 'folder/\.\./clip\.mp4' is the audio file 'clip\.mp4'",
    ),
    Case(
        "output a hard link to the audio",
        gen(audio="clip.mp4", output="hardlink.mp4"),
        1,
        r"The video 'hardlink\.mp4' is the audio file 'clip\.mp4'",
    ),
    Case(
        "output a symbolic link to the audio",
        gen(audio="clip.mp4", output="symlink.mp4"),
        1,
        r"The video 'symlink\.mp4' is the audio file 'clip\.mp4'",
    ),
    Case(
        "AU CSV is the photo",
        gen("--au-csv", "p.jpg"),
        1,
        r"The AU CSV 'p\.jpg' is the photo 'p\.jpg'",
    ),
    Case(
        "align crop is the photo",
        ["align", "p.jpg", "-o", "p.jpg"],
        1,
        r"The crop image 'p\.jpg' is the photo 'p\.jpg'",
    ),
    Case(
        "align landmarks is the photo",
        ["align", "p.jpg", "-o", "crop.png", "--landmarks", "./p.jpg"],
        1,
        r"The landmarks file '\./p\.jpg' is the photo 'p\.jpg'",
    ),
    Case(
        "features output is the audio",
        ["features", "speech.npy", "-o", "speech.npy"],
        1,
        r"The features file 'speech\.npy' is the audio file 'speech\.npy'",
    ),
    Case(
        "export into the model's folder",
        ["export", "--format", "saved_model", "--model", "model_copy", "-o", "model_copy"],
        1,
        r"The output folder 'model_copy' is the model folder",
    ),
    Case(
        "prepare into the corpus folder",
        ["prepare", "--corpus", "folder", "--root", "folder", "--out", "folder"],
        1,
        r"The output folder 'folder' is the corpus folder 'folder'",
    ),
    Case(
        "evaluate into the prepared folder",
        ["evaluate", "--prepared", "folder", "-o", "./folder"],
        1,
        r"The output folder '\./folder' is the prepared folder 'folder'",
    ),
    # ---- names a shell or ffmpeg would misread
    Case(
        "a name that is an ffmpeg protocol",
        gen(audio="concat:a.ogg|b.ogg"),
        1,
        r"'concat:a\.ogg\|b\.ogg' is corrupt or not in a readable audio format",
    ),
    Case(
        "names with spaces, quotes, ;, $(...), non-ASCII; an M4A",
        gen(image=STRANGE_NAME, audio="my talk é.m4a", output="out put é.mp4"),
        0,
        r"^wrote out put é\.mp4",
        creates=("out put é.mp4",),
        check=_no_pwned,
    ),
    # ---- what users send, that works
    Case(
        "stereo 44.1 kHz MP3, greyscale PNG, AU CSV, an output name starting with a dash",
        gen("--au-csv", "au.csv", image="grey.png", audio="talk.mp3", output="./-o.mp4"),
        0,
        r"^wrote \./-o\.mp4 and au\.csv",
        creates=("-o.mp4", "au.csv"),
        check=_valid_mp4("-o.mp4", frames=30),
    ),
    Case(
        "RGBA PNG, 8 kHz FLAC",
        gen(image="rgba.png", audio="phone.flac"),
        0,
        r"^wrote o\.mp4",
        creates=("o.mp4",),
    ),
    # ---- stops
    Case(
        "SIGINT while writing",
        gen(audio="long.wav"),
        130,
        r"^autalk: stopped by SIGINT; nothing was written\.$",
        kind="signal",
        signal=signal.SIGINT,
    ),
    Case(
        "SIGTERM while writing",
        gen(audio="long.wav"),
        143,
        r"^autalk: stopped by SIGTERM; nothing was written\.$",
        kind="signal",
        signal=signal.SIGTERM,
    ),
    Case(
        "SIGHUP while writing",
        gen(audio="long.wav"),
        129,
        r"^autalk: stopped by SIGHUP; nothing was written\.$",
        kind="signal",
        signal=signal.SIGHUP,
    ),
    Case(
        "SIGTERM 3 s in",
        gen(audio="long.wav"),
        143,
        r"^autalk: stopped by SIGTERM; nothing was written\.$",
        kind="signal",
        signal=signal.SIGTERM,
        delay=3.0,
    ),
    Case(
        "SIGKILL while writing over an older output",
        gen(audio="long.wav", output="old.mp4"),
        -signal.SIGKILL,
        "",
        kind="signal",
        signal=signal.SIGKILL,
        check=_untouched_old_output,
    ),
    # ---- loads
    Case("three runs at once give the same bytes", gen(), 0, r"^wrote", kind="parallel"),
    Case(
        "two runs onto one output leave one valid MP4",
        gen(),
        0,
        r"^wrote o\.mp4",
        kind="parallel",
        check=_valid_mp4("o.mp4"),
    ),
    # ---- disks
    Case(
        "a 300 KB disk, 30 s of speech",
        gen(audio="long.wav", output="disk/o.mp4"),
        1,
        r"Cannot write the video 'disk/o\.mp4': there is no space left on its disk "
        r"\(\d+\.\d KB free, about \d+\.\d MB needed\)",
        kind="disk",
        tmpfs="size=300k",
    ),
    Case(
        "a 100 KB disk, 1.2 s of speech",
        gen(output="disk/o.mp4"),
        1,
        r"Cannot write the video 'disk/o\.mp4': there is no space left on its disk "
        r"\(\d+\.\d KB free, about \d+\.\d KB needed\)",
        kind="disk",
        tmpfs="size=100k",
    ),
    Case(
        "a 600 KB disk that fits 1.2 s of speech",
        gen(output="disk/o.mp4"),
        0,
        r"^wrote disk/o\.mp4",
        kind="disk",
        tmpfs="size=600k",
        creates=("disk/o.mp4",),
    ),
    Case(
        "a disk another program fills while writing",
        gen(audio="long.wav", output="disk/o.mp4"),
        1,
        r"Cannot write the video 'disk/o\.mp4': there is no space left on its disk "
        r"\([\d.]+ (bytes|KB|MB) free, (about [\d.]+ MB needed|not enough for it)\)",
        kind="disk",
        tmpfs="size=8m",
        fill=True,
    ),
    Case(
        "a read-only disk",
        gen(output="disk/o.mp4"),
        1,
        r"Cannot write the video 'disk/o\.mp4': the folder 'disk' is on a read-only "
        r"filesystem",
        kind="disk",
        tmpfs="size=1m,ro",
    ),
]


# ------------------------------------------------------------------ the inputs
def _speech(seconds):
    waveform, rate = soundfile.read(SPEECH, dtype="float32")
    reps = math.ceil(seconds * rate / len(waveform))
    return np.tile(waveform, reps)[: int(seconds * rate)], rate


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """A folder holding every input the table names, made once."""
    root = tmp_path_factory.mktemp("faults")
    face = photos.load_photo("grace_hopper")
    Image.fromarray(face).save(root / "p.jpg", quality=95)
    shutil.copy(root / "p.jpg", root / STRANGE_NAME)
    Image.fromarray(face).convert("L").save(root / "grey.png")
    Image.fromarray(face).convert("RGBA").save(root / "rgba.png")
    gradient = np.tile(np.linspace(0, 255, 256, dtype=np.uint8)[None, :, None], (256, 1, 3))
    Image.fromarray(gradient).save(root / "faceless.png")
    Image.fromarray(np.zeros((1, 1, 3), np.uint8)).save(root / "tiny.png")
    (root / "p.jpg").read_bytes()
    (root / "truncated.jpg").write_bytes((root / "p.jpg").read_bytes()[:2000])
    (root / "notes.txt").write_text("not a photo\n")
    (root / "empty.jpg").write_bytes(b"")
    (root / "empty.wav").write_bytes(b"")
    (root / "folder").mkdir()
    speech, rate = _speech(1.2)
    soundfile.write(root / "talk.wav", speech, rate)
    shutil.copy(root / "talk.wav", root / "sound.jpg")
    shutil.copy(root / "talk.wav", root / "speech.npy")
    (root / "header.wav").write_bytes((root / "talk.wav").read_bytes()[:44])
    shutil.copy(root / "p.jpg", root / "picture.wav")
    soundfile.write(root / "silent.wav", np.zeros(rate, np.float32), rate)
    nan = speech.copy()
    nan[100:200] = np.nan
    soundfile.write(root / "nan.wav", nan, rate, subtype="FLOAT")
    soundfile.write(root / "short.wav", speech[: int(0.05 * rate)], rate)
    soundfile.write(root / "a.ogg", speech, rate)
    soundfile.write(root / "b.ogg", speech, rate)
    (root / "concat:a.ogg|b.ogg").write_text("a text file with a strange name\n")
    stereo = np.stack([speech, 0.8 * speech], axis=1)
    soundfile.write(root / "talk.mp3", _resample(stereo, rate, 44100), 44100, format="MP3")
    soundfile.write(root / "phone.flac", _resample(speech, rate, 8000), 8000)
    long_speech, _ = _speech(30.0)
    soundfile.write(root / "long.wav", long_speech, rate)
    frames = np.repeat(face[None, ::4, ::4], 30, axis=0)
    video.write_video(root / "clip.mp4", frames, 25, audio=speech, sample_rate=rate)
    video.write_video(root / "mute.mp4", frames, 25)
    video.write_video(root / "my talk é.m4a.mp4", frames, 25, audio=speech, sample_rate=rate)
    # An M4A (AAC in MP4) with a non-ASCII name and a space.
    subprocess.run(
        [
            _ffmpeg(),
            "-v",
            "error",
            "-i",
            f"file:{root / 'my talk é.m4a.mp4'}",
            "-vn",
            "-c:a",
            "copy",
            "-f",
            "mp4",
            f"file:{root / 'my talk é.m4a'}",
        ],
        check=True,
    )
    (root / "my talk é.m4a.mp4").unlink()
    os.link(root / "clip.mp4", root / "hardlink.mp4")
    os.symlink("clip.mp4", root / "symlink.mp4")
    _model_variants(root)
    shutil.copy(root / "clip.mp4", root / "old.mp4")
    shutil.copy(root / "clip.mp4", root / "old.mp4.bak")
    (root / "disk").mkdir()
    return root


def _ffmpeg():
    from keras_autalk.media import ffmpeg

    return ffmpeg.ffmpeg_exe()


def _resample(samples, rate_in, rate_out):
    import librosa

    return librosa.resample(np.asarray(samples).T, orig_sr=rate_in, target_sr=rate_out).T


def _model_variants(root):
    """A copy of the bundled model, one claiming a future version, one with pickled weights."""
    from keras_autalk.presets import pretrained

    bundled = pretrained.resolve_model_dir("demo")
    shutil.copytree(bundled, root / "model_copy")
    future = root / "future_model"
    shutil.copytree(bundled, future)
    config = json.loads((future / pretrained.CONFIG_FILE).read_text())
    config["format_version"] = 99
    (future / pretrained.CONFIG_FILE).write_text(json.dumps(config))
    pickled = root / "pickled_model"
    shutil.copytree(bundled, pickled)
    np.save(
        pickled / "payload.npy", np.array([{"evil": "pickle"}], dtype=object), allow_pickle=True
    )
    (pickled / "payload.npy").replace(pickled / pretrained.WEIGHTS_FILE)


# ------------------------------------------------------------------ running
def _command(args):
    return [sys.executable, "-m", "keras_autalk", *args]


# The runs' system temporary directory (TMPDIR): theirs alone, so what they
# leave at its top level is seen, and nothing else on the machine adds to it.
SYSTEM_TEMP = pathlib.Path(tempfile.mkdtemp(prefix="autalk-faults-tmp-"))


def _environment():
    env = dict(os.environ)
    env.pop("AUTALK_DEBUG", None)
    env["TMPDIR"] = str(SYSTEM_TEMP)
    return env


def _snapshot(folder):
    """Every file under `folder` (links not followed) -> a hash of its bytes."""
    state = {}
    for path in sorted(folder.rglob("*")):
        if path.is_symlink():
            state[str(path.relative_to(folder))] = "link:" + os.readlink(path)
        elif path.is_file():
            state[str(path.relative_to(folder))] = hashlib.sha1(path.read_bytes()).hexdigest()
        elif path.is_dir():
            state[str(path.relative_to(folder))] = "dir"
    return state


def _system_temp_debris():
    return sorted(path.name for path in SYSTEM_TEMP.iterdir())


def _wait_for_writing(process, folder, timeout=120.0):
    """Wait until the run has a scratch folder (it is writing its output)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if any(folder.rglob(".*.autalk-*")):
            time.sleep(0.3)
            return
        time.sleep(0.05)
    raise AssertionError("the run never started writing")


def _fill(disk):
    """Write zeros into `disk/filler` until the disk is full."""
    block = b"\0" * 65536
    with open(disk / "filler", "wb") as handle:
        try:
            while True:
                handle.write(block)
                handle.flush()
        except OSError:
            pass


def _run(case, folder):
    if case.kind == "disk" and case.fill:
        process = subprocess.Popen(
            _command(case.args),
            cwd=folder,
            env=_environment(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        _wait_for_writing(process, folder / "disk")
        _fill(folder / "disk")
        out, err = process.communicate(timeout=300)
        (folder / "disk" / "filler").unlink()
        return [subprocess.CompletedProcess(process.args, process.returncode, out, err)]
    if case.kind == "signal":
        process = subprocess.Popen(
            _command(case.args),
            cwd=folder,
            env=_environment(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        if case.delay is None:
            _wait_for_writing(process, folder)
        else:
            time.sleep(case.delay)
        process.send_signal(case.signal)
        out, err = process.communicate(timeout=120)
        return [subprocess.CompletedProcess(process.args, process.returncode, out, err)]
    if case.kind == "parallel":
        same_output = "one output" in case.id
        runs = []
        for index in range(2 if same_output else 3):
            args = list(case.args)
            if not same_output:
                args[args.index("-o") + 1] = f"o{index}.mp4"
            runs.append(
                subprocess.Popen(
                    _command(args),
                    cwd=folder,
                    env=_environment(),
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
            )
        results = []
        for process in runs:
            out, err = process.communicate(timeout=300)
            results.append(subprocess.CompletedProcess(process.args, process.returncode, out, err))
        return results
    result = subprocess.run(
        _command(case.args),
        cwd=folder,
        env=_environment(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    return [result]


def _last_line(result):
    lines = [
        line
        for line in (result.stderr.strip().splitlines() + result.stdout.strip().splitlines())
        if line.strip()
    ]
    if result.returncode == 0:
        lines = [line for line in result.stdout.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


@pytest.fixture(scope="module")
def report():
    lines = {}
    yield lines
    target = os.environ.get(REPORT_ENV)
    if target:
        pathlib.Path(target).write_text(json.dumps(lines, indent=1, ensure_ascii=False))


@contextlib.contextmanager
def _mounted(folder, options):
    """`folder` as a fresh tmpfs with `options`; skip the case where mounting is refused."""
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        reason = result.stderr.strip() or f"mount exit status {result.returncode}"
        pytest.skip(f"cannot mount a small filesystem here ({reason})")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_fault(case, folder, report):
    before = _snapshot(folder)
    temp_before = _system_temp_debris()
    with contextlib.ExitStack() as stack:
        if case.kind == "disk":
            stack.enter_context(_mounted(folder / "disk", case.tmpfs))
        results = _run(case, folder)
        for result in results:
            assert result.returncode == case.status, (result.stdout, result.stderr)
            assert "Traceback" not in result.stderr, result.stderr
            said = _last_line(result)
            assert re.search(case.says, said), said
            if case.status not in (0, -signal.SIGKILL):
                errors = [line for line in result.stderr.splitlines() if line.strip()]
                assert errors and ONE_SENTENCE.match(errors[-1]), result.stderr
        if case.kind == "parallel" and "same bytes" in case.id:
            outputs = [(folder / f"o{index}.mp4").read_bytes() for index in range(3)]
            assert outputs[0] == outputs[1] == outputs[2]
            for index in range(3):
                (folder / f"o{index}.mp4").unlink()
        if case.check is not None:
            case.check(folder, results)
        for name in case.creates:
            assert (folder / name).is_file(), name
        if case.kind == "disk":
            leftovers = sorted(path.name for path in (folder / "disk").iterdir())
            assert leftovers == sorted(
                pathlib.Path(name).name for name in case.creates if name.startswith("disk/")
            ), leftovers
    after = _snapshot(folder)
    if case.signal == signal.SIGKILL:
        # A killed run cannot clean up: its scratch folder stays until the next
        # run writing into this folder removes it (and never the output).
        scratch = sorted(name for name in after if ".autalk-" in name and "/" not in name)
        assert scratch, "the killed run had started writing"
        follow_up = subprocess.run(
            _command(["align", "p.jpg", "-o", "crop.png"]),
            cwd=folder,
            env=_environment(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert follow_up.returncode == 0, follow_up.stderr
        (folder / "crop.png").unlink()
        after = _snapshot(folder)
    created = {name for name in case.creates}
    if case.kind == "parallel" and "one output" in case.id:
        created.add("o.mp4")
    for name in created:
        if not name.startswith("disk/"):  # those went with the unmounted disk
            (folder / name).unlink()
    after = {name: digest for name, digest in after.items() if name not in created}
    assert after == before, {"changed or left": sorted(set(after.items()) ^ set(before.items()))}
    assert _system_temp_debris() == temp_before == []
    # Recorded only for a case that held in every respect.
    report[case.id] = {"status": results[0].returncode, "says": _last_line(results[0])}
