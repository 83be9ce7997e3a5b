"""Human speech from Debian packages: festvox-ru's labelled sentences, fillets-ng, phone prompts."""

import io
import tarfile

import numpy as np
import pytest

from keras_autalk.corpora import speech_packages
from keras_autalk.corpora.demo import visemes
from keras_autalk.errors import AutalkError
from keras_autalk.media import audio
from tests.conftest import fetched_or_skip


def fake_deb(files):
    """A minimal `.deb` (`ar` with data.tar) holding `{path: bytes}`."""
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as archive:
        for name, body in files.items():
            info = tarfile.TarInfo("./" + name)
            info.size = len(body)
            archive.addfile(info, io.BytesIO(body))
    body = data.getvalue()
    return (
        b"!<arch>\n"
        + b"data.tar/".ljust(16)
        + b"0".ljust(32)
        + str(len(body)).encode().ljust(10)
        + b"`\n"
        + body
        + b"\n" * (len(body) % 2)
    )


def test_a_source_keeps_only_its_files_below_its_folder(tmp_path):
    prefix = speech_packages.SOURCES["asterisk-es"].prefix
    deb = tmp_path / "asterisk-prompt-es-co_1_all.deb"
    deb.write_bytes(
        fake_deb(
            {
                prefix + "hello.gsm": b"gsm",
                prefix + "digits/1.gsm": b"1",
                prefix + "notes.txt": b"x",
                "usr/share/doc/copyright": b"c",
            }
        )
    )
    folder = speech_packages.fetch("asterisk-es", tmp_path / "cache", download=lambda _: deb)
    kept = sorted(str(path.relative_to(folder)) for path in folder.rglob("*.gsm"))
    assert kept == ["digits/1.gsm", "hello.gsm"]
    assert [path.name for path in speech_packages.phone_prompts(folder)] == ["hello.gsm"]
    with pytest.raises(AutalkError, match="Unknown speech source 'klingon'"):
        speech_packages.fetch("klingon")


def test_training_and_evaluation_sources_are_apart():
    training = {source.name for source in speech_packages.TRAINING_SOURCES}
    evaluation = {source.name for source in speech_packages.EVALUATION_SOURCES}
    assert training == {"festvox-ru", "fillets-cs", "fillets-nl"}
    assert evaluation == {"asterisk-fr", "asterisk-it", "asterisk-es"}
    assert all(source.licence for source in speech_packages.SOURCES.values())


def test_a_sentence_is_cut_at_pauses_into_pieces_of_two_seconds_or_more():
    phones = (
        ("pau", 0.0, 0.3),
        ("a", 0.3, 1.5),
        ("pau", 1.5, 1.7),
        ("k", 1.7, 2.6),
        ("pau", 2.6, 2.8),
        ("o", 2.8, 4.4),
        ("pau", 4.4, 4.6),
        ("m", 4.6, 6.2),
        ("pau", 6.2, 6.5),
    )
    sentence = speech_packages.LabelledSentence("ru_0001", None, phones, "")
    pieces = speech_packages.festvox_chunks(sentence)
    assert [(round(a, 2), round(b, 2)) for a, b, _ in pieces] == [(0.0, 2.7), (2.7, 6.5)]
    first = pieces[0][2]
    assert first[0] == ("pau", 0.0, 0.3) and first[-1][0] == "pau"
    assert pytest.approx(first[-1][2]) == 2.7  # the cut pause is split at its middle
    assert pytest.approx(pieces[1][2][0][1]) == 0.0  # times restart in each piece


def test_festvox_ru_is_620_labelled_sentences_on_the_viseme_path(festvox_ru):
    sentences = speech_packages.festvox_sentences(festvox_ru)
    assert len(sentences) == 620
    sentence = sentences[0]
    assert sentence.text.startswith("Корреспондент")
    waveform = audio.load_audio(sentence.audio)
    # The labels cover the recording (within 0.3 s).
    assert abs(sentence.phones[-1][2] - waveform.size / 16000) < 0.3
    phones = {phone for item in sentences for phone, _, _ in item.phones}
    assert phones <= set(visemes.RUSSIAN_PHONEMES)
    piece = speech_packages.festvox_chunks(sentence)[0]
    frames = int((piece[1] - piece[0]) * 25)
    mouth = visemes.mouth_track(visemes.from_russian(piece[2]), frames, 25.0, strict=True)
    assert mouth.shape == (frames, 8) and mouth[:, 0].max() > 0.5
    with pytest.raises(AutalkError, match="festvox-ru phone 'q' has no viseme"):
        visemes.from_russian([("q", 0.0, 0.1)])


def test_phone_prompts_decode_as_8_khz_speech_resampled():
    folder = fetched_or_skip(lambda: speech_packages.fetch("asterisk-es"), "asterisk-prompt-es-co")
    prompts = speech_packages.phone_prompts(folder)
    assert len(prompts) > 50
    waveform = audio.load_audio(prompts[0])
    assert waveform.size > 8000 and float(np.abs(waveform).max()) > 0.05


def test_the_energy_track_opens_with_speech_and_closes_in_silence():
    rate, fps = 16000, 25.0
    time = np.arange(rate * 2) / rate
    waveform = np.where(time < 1.0, 0.0, 0.3 * np.sin(2 * np.pi * 220 * time)).astype(np.float32)
    mouth = visemes.energy_mouth_track(waveform, rate, 50, fps)
    jaw = mouth[:, 0]
    assert mouth.shape == (50, 8)
    assert jaw[:24].max() == 0.0 and jaw[27:].min() > 0.6
    assert np.all(mouth[:, 2:] == 0.0)  # no rounding or spreading without labels
