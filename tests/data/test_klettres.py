"""klettres-data: the real recordings of the real-speech benchmark, fetched and cached."""

import os

import numpy as np
import pytest

from keras_autalk.data import audio, klettres
from keras_autalk.errors import AutalkError


@pytest.fixture(scope="session")
def recordings(tmp_path_factory):
    """The cached recordings (fetched once; in CI a failed fetch fails, elsewhere it skips)."""
    try:
        return klettres.fetch_klettres()
    except AutalkError as error:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"klettres-data could not be fetched here: {error}")


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
