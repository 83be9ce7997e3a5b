"""Atomic outputs: all or nothing, with ordinary permissions."""

import os

import pytest

from keras_autalk.errors import InputFileError
from keras_autalk.files import atomic_output


def test_atomic_output_renames_on_success_with_umask_permissions(tmp_path):
    target = tmp_path / "out.txt"
    with atomic_output(target) as temporary:
        assert temporary.parent == tmp_path and temporary.suffix == ".txt"
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
