"""Tests for keras_autalk.corpora.grid: the GRID grammar, ids and .align files."""

import numpy as np
import pytest

from keras_autalk.corpora import grid
from keras_autalk.errors import AutalkError, InputFileError
from tests.conftest import files_in

# A real GRID align file (speaker s1, "bbaf2n"), as distributed.
REAL_ALIGN = """0 23750 sil
23750 29500 bin
29500 34000 blue
34000 35500 at
35500 41000 f
41000 47250 two
47250 53000 now
53000 74500 sil
"""


def test_grammar_matches_grid():
    assert [len(slot) for slot in grid.SLOTS] == [4, 4, 4, 25, 10, 4]
    assert "w" not in grid.LETTERS and "z" in grid.LETTERS
    assert grid.NUM_SENTENCES == 64000
    assert len(set(grid.VOCABULARY)) == 51


def test_grid_id_of_a_known_sentence():
    sentence = grid.Sentence(("bin", "blue", "at", "f", "two", "now"))
    assert sentence.grid_id == "bbaf2n"
    assert sentence.text == "bin blue at f two now"
    assert grid.Sentence.from_text("Set White with Z zero please").grid_id == "swwz0p"


def test_every_sentence_has_its_own_id_and_round_trips():
    ids = set()
    for index in range(0, grid.NUM_SENTENCES, 7):
        sentence = grid.Sentence.from_index(index)
        assert sentence.index == index
        assert grid.Sentence.from_grid_id(sentence.grid_id) == sentence
        assert grid.Sentence.from_text(sentence.text) == sentence
        ids.add(sentence.grid_id)
    assert len(ids) == len(range(0, grid.NUM_SENTENCES, 7))


@pytest.mark.parametrize(
    "words",
    [
        ("bin", "blue", "at", "w", "two", "now"),
        ("bin", "blue", "at", "f", "two"),
        ("stop", "blue", "at", "f", "two", "now"),
        ("bin", "blue", "at", "f", "2", "now"),
    ],
)
def test_words_outside_the_grammar_are_refused(words):
    with pytest.raises(AutalkError, match="GRID"):
        grid.Sentence(words)


@pytest.mark.parametrize("grid_id", ["bbaf2", "xbaf2n", "bbawn2", "bbaf2nn"])
def test_bad_ids_are_refused(grid_id):
    with pytest.raises(AutalkError, match="GRID id"):
        grid.Sentence.from_grid_id(grid_id)


def test_spoken_text_says_letters_as_names_word_for_word():
    sentence = grid.Sentence.from_grid_id("srba4p")
    assert sentence.spoken_text == "set red by eh four please"
    assert len(sentence.spoken_text.split()) == 6
    other = grid.Sentence.from_grid_id("bbaf2n")
    assert other.spoken_text == other.text


def test_sample_sentences_is_seeded_distinct_and_respects_exclusions():
    first = grid.sample_sentences(np.random.default_rng(5), 200)
    again = grid.sample_sentences(np.random.default_rng(5), 200)
    other = grid.sample_sentences(np.random.default_rng(6), 200)
    assert first == again
    assert first != other
    assert len({s.grid_id for s in first}) == 200

    held_out = first[:50]
    exclude = [s.grid_id for s in held_out[:25]] + held_out[25:]
    drawn = grid.sample_sentences(np.random.default_rng(5), 3000, exclude=exclude)
    assert not {s.grid_id for s in drawn} & {s.grid_id for s in held_out}


def test_sample_sentences_refuses_more_than_remain():
    with pytest.raises(AutalkError, match="remain"):
        grid.sample_sentences(np.random.default_rng(0), grid.NUM_SENTENCES + 1)
    assert len(grid.sample_sentences(np.random.default_rng(0), 0)) == 0


def test_read_a_real_grid_align_file(tmp_path):
    path = tmp_path / "bbaf2n.align"
    path.write_text(REAL_ALIGN)
    segments = grid.read_align(path)
    assert segments[0] == (0.0, 0.95, "sil")
    assert segments[1] == (0.95, 1.18, "bin")
    assert segments[-1] == (2.12, 2.98, "sil")
    words = grid.read_align(path, include_silence=False)
    assert [w for _, _, w in words] == ["bin", "blue", "at", "f", "two", "now"]
    # 1000 units per video frame at 25 fps.
    assert words[0][0] * 25 == pytest.approx(23.75)


def test_write_then_read_round_trips_with_silence_and_pauses(tmp_path):
    path = tmp_path / "s1" / "bbaf2n.align"
    path.parent.mkdir()
    words = [(0.4, 0.62, "bin"), (0.62, 0.9, "blue"), (1.0, 1.2, "at")]
    grid.write_align(path, words, duration_s=3.0)
    assert path.read_text().splitlines() == [
        "0 10000 sil",
        "10000 15500 bin",
        "15500 22500 blue",
        "22500 25000 sp",
        "25000 30000 at",
        "30000 75000 sil",
    ]
    assert grid.read_align(path, include_silence=False) == words
    # Writing what was read gives the same file.
    again = tmp_path / "again.align"
    grid.write_align(again, grid.read_align(path))
    assert again.read_text() == path.read_text()
    assert files_in(path.parent) == ["bbaf2n.align"]


def test_times_are_quantised_to_align_units(tmp_path):
    path = tmp_path / "q.align"
    grid.write_align(path, [(0.123456, 0.5, "lay")])
    ((start, end, word),) = grid.read_align(path, include_silence=False)
    assert start == pytest.approx(0.123456, abs=0.5 / grid.ALIGN_UNITS_PER_SECOND)
    assert (word, end) == ("lay", 0.5)


@pytest.mark.parametrize(
    "segments, duration",
    [
        ([], None),
        ([(0.5, 0.4, "bin")], None),
        ([(0.5, 0.8, "bin"), (0.7, 0.9, "blue")], None),
        ([(0.5, 0.8, "two words")], None),
        ([(0.5, 0.8, "bin")], 0.6),
    ],
)
def test_bad_segments_are_refused_and_nothing_is_written(tmp_path, segments, duration):
    path = tmp_path / "bad.align"
    with pytest.raises(AutalkError):
        grid.write_align(path, segments, duration_s=duration)
    assert files_in(tmp_path) == []


@pytest.mark.parametrize("text", ["0 100\n", "0 x sil\n", "100 50 bin\n", "", "\n\n"])
def test_malformed_align_files_are_refused(tmp_path, text):
    path = tmp_path / "bad.align"
    path.write_text(text)
    with pytest.raises(InputFileError, match="align file"):
        grid.read_align(path)


def test_word_segments_use_grid_words_for_spelled_letters():
    sentence = grid.Sentence.from_grid_id("srba4p")
    timed = [(w, 0.1 * i, 0.1 * i + 0.1) for i, w in enumerate(sentence.spoken_text.split())]
    segments = grid.word_segments(sentence, timed)
    assert [w for _, _, w in segments] == list(sentence.words)
    assert segments[3] == (pytest.approx(0.3), pytest.approx(0.4), "a")
    with pytest.raises(AutalkError, match="timed words"):
        grid.word_segments(sentence, timed[:5])


def test_covering_sentences_use_every_word():
    sentences = grid.covering_sentences()
    assert {word for s in sentences for word in s.words} == set(grid.VOCABULARY)
    assert len({s.grid_id for s in sentences}) == len(sentences)
