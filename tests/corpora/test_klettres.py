"""klettres-data: the real recordings of the real-speech benchmark, fetched and cached."""

import numpy as np
import pytest

from keras_autalk.corpora import klettres
from keras_autalk.errors import AutalkError
from keras_autalk.media import audio


@pytest.fixture(scope="session")
def recordings(klettres_folder):
    return klettres_folder


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
