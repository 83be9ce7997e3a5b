"""Atomic outputs, outputs that are inputs, scratch folders of dead runs, write errors in words."""

import errno
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import pytest

from keras_autalk import files
from keras_autalk.errors import InputFileError
from keras_autalk.files import atomic_output


def test_atomic_output_renames_on_success_with_umask_permissions(tmp_path):
    target = tmp_path / "out.txt"
    with atomic_output(target) as temporary:
        # In this process's scratch folder beside the output, under the output's name.
        assert temporary.parent.parent == tmp_path and temporary.name == "out.txt"
        assert temporary.parent.name == f".out.txt.autalk-{os.getpid()}"
        temporary.write_text("done")
        assert not target.exists()
    assert target.read_text() == "done"
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_atomic_output_leaves_nothing_on_failure_and_keeps_the_old_file(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_output(target) as temporary:
            temporary.write_text("half")
            raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_atomic_output_refuses_a_missing_folder(tmp_path):
    with pytest.raises(InputFileError, match="does not exist"):
        with atomic_output(tmp_path / "missing" / "out.txt"):
            pass


# ------------------------------------------------------------------ outputs that are inputs
def test_an_output_that_is_an_input_is_refused_however_it_is_spelled(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "talk.wav").write_bytes(b"RIFF")
    (tmp_path / "sub").mkdir()
    os.link(tmp_path / "talk.wav", tmp_path / "hard.wav")
    os.symlink("talk.wav", tmp_path / "soft.wav")
    for spelling in (
        "talk.wav",
        "./talk.wav",
        "sub/../talk.wav",
        str(tmp_path / "talk.wav"),
        "hard.wav",
        "soft.wav",
    ):
        with pytest.raises(InputFileError) as caught:
            files.refuse_overwriting_inputs([("AU CSV", spelling)], [("audio file", "talk.wav")])
        assert str(caught.value) == (
            f"The AU CSV '{spelling}' is the audio file 'talk.wav'; an input is never "
            "overwritten, so give the AU CSV another name."
        )
    assert (tmp_path / "talk.wav").read_bytes() == b"RIFF"


def test_different_files_none_and_arrays_pass(tmp_path):
    (tmp_path / "talk.wav").write_bytes(b"RIFF")
    files.refuse_overwriting_inputs(
        [("video", tmp_path / "talk.mp4"), ("AU CSV", None)],
        [
            ("audio file", tmp_path / "talk.wav"),
            ("photo", np.zeros((4, 4, 3), np.uint8)),
            ("model", None),
        ],
    )


# ------------------------------------------------------------------ write errors in words
@pytest.mark.parametrize(
    "code, words",
    [
        (errno.ENOSPC, "there is no space left on its disk"),
        (errno.EDQUOT, "the disk quota is used up"),
        (errno.EROFS, "is on a read-only filesystem"),
        (errno.EIO, "the disk reported an input/output error"),
    ],
)
def test_a_write_error_is_one_sentence_naming_the_users_path(tmp_path, code, words):
    target = tmp_path / "talk.mp4"
    with pytest.raises(InputFileError) as caught:
        with atomic_output(target, "video", needed=5000) as temporary:
            temporary.write_bytes(b"x" * 10)
            raise OSError(code, os.strerror(code))
    message = str(caught.value)
    assert message.startswith(f"Cannot write the video '{target}': ") and words in message
    assert message.count(". ") == 0 and message.endswith(".")
    assert ".autalk-" not in message and list(tmp_path.iterdir()) == []


def test_a_nested_temporary_is_reported_as_the_users_file(tmp_path):
    target = tmp_path / "talk.mp4"
    with pytest.raises(InputFileError) as caught:
        with atomic_output(target, "video") as outer:
            with atomic_output(outer, "video") as inner:
                assert inner != outer and target in [files.user_path(inner)]
                raise OSError(errno.ENOSPC, "No space left on device")
    assert str(caught.value).startswith(f"Cannot write the video '{target}': there is no space")
    assert list(tmp_path.iterdir()) == []


def test_other_os_errors_pass_through_unchanged(tmp_path):
    with pytest.raises(OSError) as caught:
        with atomic_output(tmp_path / "a.txt"):
            raise OSError(errno.EBADF, "bad descriptor")
    assert caught.value.errno == errno.EBADF
    assert list(tmp_path.iterdir()) == []


def test_an_output_that_cannot_fit_is_refused_before_the_work(tmp_path):
    free = files.free_bytes(tmp_path)
    ran = []
    with pytest.raises(
        InputFileError,
        match=r"there is no space left on its disk \(.* free, "
        r"about .* needed\)",
    ):
        with atomic_output(tmp_path / "big.mp4", "video", needed=free * 2):
            ran.append(True)
    assert ran == [] and list(tmp_path.iterdir()) == []


def test_format_bytes():
    assert [files.format_bytes(n) for n in (512, 1536, 2.5e6, 3.2e9)] == [
        "512 bytes",
        "1.5 KB",
        "2.5 MB",
        "3.2 GB",
    ]


# ------------------------------------------------------------------ scratch folders
HOLD_LOCK = """
import fcntl, os, sys, time
descriptor = os.open(sys.argv[1], os.O_CREAT | os.O_RDWR)
fcntl.flock(descriptor, fcntl.LOCK_EX)
print("locked", flush=True)
time.sleep(60)
"""


def test_a_dead_runs_scratch_folder_goes_and_a_live_runs_stays(tmp_path):
    live = tmp_path / ".a.mp4.autalk-111"
    dead = tmp_path / ".b.mp4.autalk-222"
    for folder in (live, dead):
        folder.mkdir()
        (folder / "b.mp4").write_bytes(b"partial")
    (dead / ".lock").touch()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(live / ".lock")], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with atomic_output(tmp_path / "c.txt") as temporary:
            temporary.write_text("done")
        assert sorted(p.name for p in tmp_path.iterdir()) == [".a.mp4.autalk-111", "c.txt"]
    finally:
        holder.kill()
        holder.wait()
    # Its process is gone: the next run removes it.
    assert files.remove_stale_scratch(tmp_path) == [live]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.txt"]


def test_a_scratch_folder_without_its_lock_goes_only_when_old(tmp_path):
    young = tmp_path / ".a.autalk-1"
    old = tmp_path / ".b.autalk-2"
    young.mkdir()
    old.mkdir()
    past = time.time() - 3600
    os.utime(old, (past, past))
    assert files.remove_stale_scratch(tmp_path) == [old]
    assert young.exists()


def test_the_process_temp_dir_holds_temporaries_and_goes(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    stale = tmp_path / "autalk-run-999-abc"
    stale.mkdir()
    (stale / ".lock").touch()
    with files.process_temp_dir() as folder:
        assert folder.parent == tmp_path and folder.name.startswith(f"autalk-run-{os.getpid()}-")
        assert tempfile.gettempdir() == str(folder) and os.environ["TMPDIR"] == str(folder)
        with tempfile.NamedTemporaryFile(delete=False) as handle:
            assert os.path.dirname(handle.name) == str(folder)
        assert not stale.exists()
    assert list(tmp_path.iterdir()) == []
    assert tempfile.gettempdir() == str(tmp_path)
