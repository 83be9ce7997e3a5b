"""The shared fetch-and-cache of other packages' data (`keras_autalk.corpora.packages`)."""

import os

import pytest

from keras_autalk.corpora import packages
from keras_autalk.errors import AutalkError


def test_deb_members_reads_an_ar_archive():
    body = b"hello"
    deb = (
        b"!<arch>\n"
        + b"debian-binary/".ljust(16)
        + b"0".ljust(32)
        + b"5".ljust(10)
        + b"`\n"
        + body
        + b"\n"
        + b"x.txt/".ljust(16)
        + b"0".ljust(32)
        + b"2".ljust(10)
        + b"`\n"
        + b"ok"
    )
    assert packages.deb_members(deb) == {"debian-binary": b"hello", "x.txt": b"ok"}
    with pytest.raises(AutalkError, match="not a Debian package"):
        packages.deb_members(b"<html>")


def test_a_cached_folder_is_filled_once_and_a_failed_fill_leaves_nothing(tmp_path):
    calls = []

    def fill(scratch, staging):
        calls.append(scratch)
        (staging / "a.txt").write_text("a")
        return 1

    folder = packages.cached_folder(tmp_path / "cache" / "source", fill, "the source")
    assert (folder / "a.txt").read_text() == "a" and (folder / packages.READY).is_file()
    assert packages.cached_folder(folder, fill, "the source") == folder
    assert len(calls) == 1
    with pytest.raises(AutalkError, match="The empty package holds none of the files"):
        packages.cached_folder(
            tmp_path / "cache" / "empty", lambda scratch, staging: 0, "the empty package"
        )
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["source"]


@pytest.mark.slow
def test_a_machine_without_package_lists_still_downloads(tmp_path, monkeypatch):
    # A fresh container has never run `apt-get update`: the first download
    # cannot locate the package, and the lists are fetched privately instead.
    empty = tmp_path / "no-lists"
    (empty / "partial").mkdir(parents=True)
    config = tmp_path / "apt.conf"
    config.write_text(f'Dir::State::Lists "{empty}";\n')
    monkeypatch.setenv("APT_CONFIG", str(config))
    folder = tmp_path / "download"
    folder.mkdir()
    try:
        deb = packages.apt_get_download(folder, "klettres-data")
    except AutalkError as error:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"the Debian registry cannot be reached here: {error}")
    assert deb.name.startswith("klettres-data_") and deb.stat().st_size > 30_000_000
    assert not any(empty.glob("*Packages*"))  # the system's (here: empty) lists untouched
