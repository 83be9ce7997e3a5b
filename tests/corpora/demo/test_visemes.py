"""Tests for keras_autalk.corpora.demo.visemes: phonemes -> mouth shapes -> AU curves."""

import numpy as np
import pytest

from keras_autalk.config import DEFAULT_ACTION_UNITS, MOUTH_PARAMETERS
from keras_autalk.corpora import grid
from keras_autalk.corpora.demo import speech, visemes
from keras_autalk.errors import AutalkError

FPS = 25.0
P = {name: index for index, name in enumerate(MOUTH_PARAMETERS)}
# Bilabial closures, an open vowel (a in "at"), a close spread vowel (i: in
# the letter "p"), rounded vowels (u: in "two" and "soon").
TEXT = "place blue at p two soon"
PAD_S = 0.4


@pytest.fixture(scope="module")
def spoken():
    return speech.synthesize(TEXT, speech.VOICES[0]).padded(PAD_S, PAD_S)


@pytest.fixture(scope="module")
def mouth(spoken):
    num_frames = int(np.ceil(spoken.duration * FPS))
    return visemes.mouth_track(spoken.phonemes, num_frames, FPS, strict=True)


def frame_times(num_frames):
    return (np.arange(num_frames) + 0.5) / FPS


def frames_of(spoken, name, occurrence=0):
    """Frame indices whose centres fall in the `occurrence`-th `name` phoneme."""
    spans = [(s, e) for p, s, e in spoken.phonemes if speech.strip_stress(p) == name]
    start, end = spans[occurrence]
    times = frame_times(int(np.ceil(spoken.duration * FPS)))
    return np.nonzero((times >= start) & (times < end))[0]


def test_every_phoneme_espeak_says_for_grid_has_a_viseme():
    seen = set()
    for voice in speech.VOICES:
        for sentence in grid.covering_sentences():
            for phoneme, _, _ in speech.synthesize(sentence.spoken_text, voice).phonemes:
                seen.add(speech.strip_stress(phoneme))
                visemes.visemes_of(phoneme, strict=True)  # raises if missing
    # The inventory is what espeak really emits: stress-free mnemonics,
    # vowels, diphthongs, stops, pauses.
    assert {
        "p",
        "b",
        "m",
        "f",
        "v",
        "T",
        "D",
        "s",
        "z",
        "l",
        "r",
        "w",
        "j",
        "aI",
        "eI",
        "aU",
        "oU",
        "u:",
        "i:",
        "E",
        "I",
        "a",
        "_:",
    } <= seen
    assert len(seen) >= 35


def test_tables_are_consistent():
    for name, target in visemes.VISEMES.items():
        assert target.shape == (len(MOUTH_PARAMETERS),)
        assert np.all((target >= 0) & (target <= 1)), name
    for phoneme, names in visemes.PHONEME_VISEMES.items():
        assert 1 <= len(names) <= 3 and all(n in visemes.VISEMES for n in names), phoneme
    assert set(visemes.DOMINANCE) <= set(visemes.VISEMES)
    assert not visemes.VISEMES["silence"].any()


def test_lookup_reads_stress_and_guesses_only_when_asked():
    assert visemes.split_stress("'aU") == ("aU", "'")
    assert visemes.split_stress(",E") == ("E", ",")
    assert visemes.visemes_of("'aU") == ("open", "close_back_rounded")
    assert visemes.visemes_of("m") == ("bilabial",)
    with pytest.raises(AutalkError, match="no viseme"):
        visemes.visemes_of("Q9")
    assert visemes.visemes_of("t#x", strict=False) == visemes.visemes_of("t#")
    assert visemes.visemes_of("Q9", strict=False) == ("mid_central",)


def test_track_shape_and_range(spoken, mouth):
    assert mouth.shape == (int(np.ceil(spoken.duration * FPS)), len(MOUTH_PARAMETERS))
    assert mouth.dtype == np.float32
    assert mouth.min() >= 0 and mouth.max() <= 1
    again = visemes.mouth_track(spoken.phonemes, mouth.shape[0], FPS)
    np.testing.assert_array_equal(again, mouth)


def test_lips_closed_in_leading_and_trailing_silence(spoken, mouth):
    times = frame_times(mouth.shape[0])
    first = spoken.phonemes[0][1]
    last = max(e for p, s, e in spoken.phonemes if speech.strip_stress(p) not in ("_", "_:"))
    silent = (times < first - 0.15) | (times > last + 0.15)
    assert silent.sum() >= 6
    assert mouth[silent, P["jaw_drop"]].max() < 0.02
    assert mouth[silent, P["lip_part"]].max() < 0.02
    # ... while the lips do open during speech.
    assert mouth[:, P["lip_part"]].max() > 0.3


def test_lips_closed_at_every_bilabial_closure(spoken, mouth):
    times = frame_times(mouth.shape[0])
    closures = [(p, s, e) for p, s, e in spoken.phonemes if speech.strip_stress(p) in "pbm"]
    assert len(closures) == 3
    for phoneme, start, end in closures:
        # The closure is the part before the release (at most 30 ms).
        closed = (times >= start) & (times < end - min(0.03, 0.4 * (end - start)))
        frames = np.nonzero(closed)[0]
        if frames.size == 0:
            frames = [int(np.argmin(np.abs(times - (start + end) / 2)))]
        for frame in frames:
            assert mouth[frame, P["lip_part"]] == 0, (phoneme, start)
            assert mouth[frame, P["jaw_drop"]] < 0.05, (phoneme, start)
            assert mouth[frame, P["lip_press"]] > 0.25, (phoneme, start)


def test_open_vowel_opens_the_jaw_more_than_a_close_vowel(spoken, mouth):
    open_jaw = mouth[frames_of(spoken, "a"), P["jaw_drop"]].max()
    close_jaw = mouth[frames_of(spoken, "i:"), P["jaw_drop"]].max()
    assert open_jaw > 0.4
    assert open_jaw > 2 * close_jaw
    # The close front vowel spreads the lips instead.
    close_stretch = mouth[frames_of(spoken, "i:"), P["stretch"]].max()
    assert close_stretch > 0.35
    assert close_stretch > mouth[frames_of(spoken, "u:", 2), P["stretch"]].max() + 0.2


def test_rounded_vowels_pucker(spoken, mouth):
    for occurrence in (1, 2):  # "two", "soon"
        pucker = mouth[frames_of(spoken, "u:", occurrence), P["pucker"]].max()
        assert pucker > 0.6, occurrence
    assert mouth[frames_of(spoken, "i:"), P["pucker"]].max() < 0.15
    assert mouth[frames_of(spoken, "a"), P["pucker"]].min() < 0.25


def test_coarticulation_anticipates_rounding_through_a_tongue_consonant():
    # "k u:" vs "k i:": lips round already during the k before u:.
    rounded = [("k", 0.4, 0.5), ("'u:", 0.5, 0.7)]
    spread = [("k", 0.4, 0.5), ("'i:", 0.5, 0.7)]
    frame_in_k = int(0.46 * FPS)
    before = visemes.mouth_track(rounded, 30, FPS)[frame_in_k]
    other = visemes.mouth_track(spread, 30, FPS)[frame_in_k]
    assert before[P["pucker"]] > 0.3 and other[P["pucker"]] < 0.05
    assert other[P["stretch"]] > before[P["stretch"]] + 0.2
    # The mouth starts to open before the vowel starts and closes smoothly after.
    jaw = visemes.mouth_track([("'A:", 0.4, 0.6)], 30, FPS)[:, P["jaw_drop"]]
    assert 0.05 < jaw[int(0.37 * FPS)] < jaw[int(0.5 * FPS)]
    assert np.all(np.abs(np.diff(jaw)) < 0.5)


def test_a_short_bilabial_between_open_vowels_still_closes():
    # A 20 ms /b/ that no frame centre falls in: the nearest frame closes.
    phonemes = [("'A:", 0.2, 0.465), ("b", 0.465, 0.485), ("A:", 0.485, 0.7)]
    mouth = visemes.mouth_track(phonemes, 25, FPS, strict=True)
    nearest = int(np.argmin(np.abs(frame_times(25) - 0.475)))
    assert mouth[nearest, P["lip_part"]] == 0 and mouth[nearest, P["jaw_drop"]] <= 0.03
    assert mouth[nearest - 2, P["jaw_drop"]] > 0.4 and mouth[nearest + 2, P["jaw_drop"]] > 0.4


def test_unstressed_vowels_open_less():
    stressed = visemes.mouth_track([("'a", 0.2, 0.5)], 20, FPS)[:, P["jaw_drop"]].max()
    unstressed = visemes.mouth_track([("a", 0.2, 0.5)], 20, FPS)[:, P["jaw_drop"]].max()
    assert unstressed == pytest.approx(stressed * visemes.UNSTRESSED_VOWEL_SCALE, rel=0.05)


def test_bad_tracks_are_refused():
    with pytest.raises(AutalkError, match="invalid times"):
        visemes.mouth_track([("a", 0.5, 0.4)], 10, FPS)
    with pytest.raises(AutalkError, match="frame rate"):
        visemes.mouth_track([("a", 0.1, 0.4)], 10, 0)
    with pytest.raises(AutalkError, match="no viseme"):
        visemes.mouth_track([("Q9", 0.1, 0.4)], 10, FPS, strict=True)
    assert visemes.mouth_track([("Q9", 0.1, 0.4)], 10, FPS).shape == (10, len(MOUTH_PARAMETERS))
    assert visemes.mouth_track([], 4, FPS).sum() == 0
    assert visemes.mouth_track([("a", 0.1, 0.4)], 0, FPS).shape == (0, len(MOUTH_PARAMETERS))


def test_action_units_follow_the_mouth(mouth):
    aus = visemes.au_intensities(mouth)
    assert aus.shape == (mouth.shape[0], len(DEFAULT_ACTION_UNITS)) and aus.dtype == np.float32
    assert aus.min() >= 0 and aus.max() <= 5
    column = {au: aus[:, i] for i, au in enumerate(DEFAULT_ACTION_UNITS)}
    np.testing.assert_allclose(column[26], 5 * mouth[:, P["jaw_drop"]], atol=1e-5)
    assert np.corrcoef(column[25], mouth[:, P["lip_part"]])[0, 1] > 0.9
    assert np.corrcoef(column[20], mouth[:, P["stretch"]])[0, 1] > 0.99
    # Lips closed -> no AU25; open mouth -> strong AU25.
    closed = mouth[:, P["lip_part"]] + mouth[:, P["jaw_drop"]] < 0.01
    assert closed.any() and column[25][closed].max() < 0.05
    assert column[25].max() > 2.0


def test_every_documented_action_unit_is_defined():
    required = (10, 12, 14, 15, 17, 18, 20, 23, 25, 26)
    assert set(required) <= set(visemes.SUPPORTED_ACTION_UNITS)
    rng = np.random.default_rng(0)
    mouth = rng.uniform(0, 1, size=(50, len(MOUTH_PARAMETERS))).astype(np.float32)
    aus = visemes.au_intensities(mouth, visemes.SUPPORTED_ACTION_UNITS)
    assert aus.shape == (50, len(visemes.SUPPORTED_ACTION_UNITS))
    assert aus.min() >= 0 and aus.max() <= 5
    assert np.all(aus.std(axis=0) > 0.1)
    assert np.all(
        visemes.au_intensities(np.zeros((3, len(MOUTH_PARAMETERS))), visemes.SUPPORTED_ACTION_UNITS)
        == 0
    )


@pytest.mark.parametrize("action_units", [(1,), (25, 45), (6,)])
def test_unknown_action_units_are_refused(mouth, action_units):
    with pytest.raises(AutalkError, match="cannot be derived"):
        visemes.au_intensities(mouth, action_units)


def test_mouth_of_the_wrong_shape_is_refused():
    with pytest.raises(AutalkError, match="shape"):
        visemes.au_intensities(np.zeros((4, 3)))
