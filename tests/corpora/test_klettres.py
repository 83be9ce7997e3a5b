"""klettres-data: the real recordings of the real-speech benchmark, fetched and cached."""

import os

import numpy as np
import pytest

from keras_autalk.media import audio
from keras_autalk.corpora import klettres
from keras_autalk.errors import AutalkError


@pytest.fixture(scope="session")
def recordings(klettres_folder):
    return klettres_folder


def test_deb_members_reads_an_ar_archive():
    body = b"hello"
    deb = (b"!<arch>\n" + b"debian-binary/".ljust(16) + b"0".ljust(32) + b"5".ljust(10)
           + b"`\n" + body + b"\n" + b"x.txt/".ljust(16) + b"0".ljust(32) + b"2".ljust(10)
           + b"`\n" + b"ok")
    assert klettres.deb_members(deb) == {"debian-binary": b"hello", "x.txt": b"ok"}
    with pytest.raises(AutalkError, match="not a Debian package"):
        klettres.deb_members(b"<html>")


def test_a_failed_download_leaves_no_cache(tmp_path):
    def broken(folder):
        raise AutalkError("no network")

    with pytest.raises(AutalkError, match="no network"):
        klettres.fetch_klettres(tmp_path / "cache", download=broken)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_english_recordings_are_real_speech_and_evaluation_only(recordings):
    english = klettres.list_recordings(recordings, "en")
    assert len(english) >= 40
    assert "en" in klettres.TRAINING_EXCLUDED and "en_GB" in klettres.TRAINING_EXCLUDED
    waveform = audio.load_audio(english[0])
    assert waveform.ndim == 1 and 0.2 < len(waveform) / 16000 < 5.0
    assert float(np.abs(waveform).max()) > 0.05  # not silence
    # Cached: a second call does not fetch again.
    assert klettres.fetch_klettres() == recordings
    with pytest.raises(AutalkError, match="the languages are"):
        klettres.list_recordings(recordings, "xx")


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
        deb = klettres.apt_get_download(folder)
    except AutalkError as error:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"the Debian registry cannot be reached here: {error}")
    assert deb.name.startswith("klettres-data_") and deb.stat().st_size > 30_000_000
    assert not any(empty.glob("*Packages*"))   # the system's (here: empty) lists untouched
