"""The GRID corpus's sentence grammar, utterance ids and `.align` files.

Every GRID sentence has six words, one from each slot:

    command  colour  preposition  letter  digit  adverb
    bin      blue    at           a..z    zero   again
    lay      green   by           (no w)  ..     now
    place    red     in                   nine   please
    set      white   with                        soon

An utterance's id is six characters: the first letter of each word, with the
letter itself and the digit as its numeral ("bin blue at f two now" is
`bbaf2n`). Within each slot the first letters differ, so an id names exactly
one sentence.

GRID's `.align` files hold one line per segment, `start end word`, in units
of 1/25000 s (1000 per video frame at 25 fps), with `sil` before the first
word and after the last, and `sp` for pauses between words.
"""

import dataclasses
import pathlib

from keras_autalk.errors import AutalkError, InputFileError
from keras_autalk.files import atomic_output, check_input_file

COMMANDS = ("bin", "lay", "place", "set")
COLOURS = ("blue", "green", "red", "white")
PREPOSITIONS = ("at", "by", "in", "with")
LETTERS = tuple(chr(code) for code in range(ord("a"), ord("z") + 1) if chr(code) != "w")
DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
ADVERBS = ("again", "now", "please", "soon")

# The six word slots of a sentence, in order.
SLOTS = (COMMANDS, COLOURS, PREPOSITIONS, LETTERS, DIGITS, ADVERBS)
SLOT_NAMES = ("command", "colour", "preposition", "letter", "digit", "adverb")

# Every word of the grammar once (51 words).
VOCABULARY = tuple(word for slot in SLOTS for word in slot)

NUM_SENTENCES = 1
for _slot in SLOTS:
    NUM_SENTENCES *= len(_slot)

# GRID's .align time unit: 1/25000 s.
ALIGN_UNITS_PER_SECOND = 25000
SILENCE = "sil"
SHORT_PAUSE = "sp"

# How a letter is written for a speech synthesiser so that it says the
# letter's name: espeak-ng reads a lone "a" as the article (a schwa, merged
# into the preceding word), "eh" as the letter name /eI/.
SPOKEN_LETTERS = {"a": "eh"}


def _id_char(slot_index, word):
    if SLOTS[slot_index] is LETTERS:
        return word
    if SLOTS[slot_index] is DIGITS:
        return str(DIGITS.index(word))
    return word[0]


@dataclasses.dataclass(frozen=True)
class Sentence:
    """One sentence of the GRID grammar.

    Args:
        words: six lowercase words: command, colour, preposition, letter,
            digit, adverb.

    Raises:
        AutalkError: the words do not follow the grammar.

    Example:
    ```python
    sentence = Sentence(("bin", "blue", "at", "f", "two", "now"))
    sentence.grid_id          # "bbaf2n"
    Sentence.from_grid_id("bbaf2n") == sentence   # True
    ```
    """

    words: tuple

    def __post_init__(self):
        words = tuple(str(word).strip().lower() for word in self.words)
        if len(words) != len(SLOTS):
            raise AutalkError(
                f"A GRID sentence has {len(SLOTS)} words, got {len(words)}: {' '.join(words)!r}."
            )
        for slot_name, slot, word in zip(SLOT_NAMES, SLOTS, words):
            if word not in slot:
                raise AutalkError(
                    f"'{word}' is not a GRID {slot_name}; use one of {', '.join(slot)}."
                )
        object.__setattr__(self, "words", words)

    @property
    def text(self):
        """The sentence as GRID transcribes it: "bin blue at f two now"."""
        return " ".join(self.words)

    @property
    def spoken_text(self):
        """The text to give a speech synthesiser: letters spelled so that
        they are said as letter names (see `SPOKEN_LETTERS`), one word per
        GRID word, in the same order."""
        return " ".join(
            SPOKEN_LETTERS.get(word, word) if slot is LETTERS else word
            for slot, word in zip(SLOTS, self.words)
        )

    @property
    def grid_id(self):
        """GRID's six-character utterance id, e.g. "bbaf2n"."""
        return "".join(_id_char(index, word) for index, word in enumerate(self.words))

    @classmethod
    def from_text(cls, text):
        """The sentence written as six space-separated words."""
        return cls(tuple(str(text).split()))

    @classmethod
    def from_grid_id(cls, grid_id):
        """The sentence a six-character GRID id names ("bbaf2n").

        Raises:
            AutalkError: not a valid GRID id.
        """
        code = str(grid_id).strip().lower()
        if len(code) != len(SLOTS):
            raise AutalkError(f"A GRID id has {len(SLOTS)} characters, got {grid_id!r}.")
        words = []
        for index, (slot_name, slot, char) in enumerate(zip(SLOT_NAMES, SLOTS, code)):
            matches = [word for word in slot if _id_char(index, word) == char]
            if not matches:
                raise AutalkError(
                    f"'{char}' in the GRID id {grid_id!r} is not the code of any {slot_name}."
                )
            words.append(matches[0])
        return cls(tuple(words))

    @classmethod
    def from_index(cls, index):
        """The sentence numbered `index` in 0..NUM_SENTENCES-1 (slot by slot,
        the adverb varying fastest)."""
        index = int(index)
        if not 0 <= index < NUM_SENTENCES:
            raise AutalkError(f"A GRID sentence index is in 0..{NUM_SENTENCES - 1}, got {index}.")
        words = []
        for slot in reversed(SLOTS):
            index, position = divmod(index, len(slot))
            words.append(slot[position])
        return cls(tuple(reversed(words)))

    @property
    def index(self):
        """This sentence's number, the inverse of `from_index`."""
        index = 0
        for slot, word in zip(SLOTS, self.words):
            index = index * len(slot) + slot.index(word)
        return index


def covering_sentences():
    """25 fixed sentences that together use every word of the grammar (one
    per letter; the other slots cycle), e.g. to check a voice says them all.

    Example:
    ```python
    words = {w for s in covering_sentences() for w in s.words}   # all 51
    ```
    """
    return [
        Sentence(
            (
                COMMANDS[i % 4],
                COLOURS[(i // 4) % 4],
                PREPOSITIONS[(i + 1) % 4],
                letter,
                DIGITS[i % 10],
                ADVERBS[(i + 2) % 4],
            )
        )
        for i, letter in enumerate(LETTERS)
    ]


def _as_sentence(item):
    if isinstance(item, Sentence):
        return item
    item = str(item)
    return Sentence.from_text(item) if " " in item.strip() else Sentence.from_grid_id(item)


def sample_sentences(rng, n, exclude=()):
    """Draw `n` distinct random GRID sentences.

    Args:
        rng: a `numpy.random.Generator` (the draw is deterministic given it).
        n: how many sentences.
        exclude: sentences never to draw: `Sentence`s, GRID ids or texts
            (e.g. a held-out set).

    Returns:
        A list of `n` distinct `Sentence`s, none in `exclude`.

    Raises:
        AutalkError: fewer than `n` sentences remain after `exclude`.

    Example:
    ```python
    sentences = sample_sentences(np.random.default_rng(0), 10)
    ```
    """
    n = int(n)
    excluded = {_as_sentence(item).index for item in exclude}
    available = NUM_SENTENCES - len(excluded)
    if n < 0 or n > available:
        raise AutalkError(
            f"Cannot draw {n} distinct GRID sentences: {available} remain after the exclusions."
        )
    chosen = []
    seen = set(excluded)
    # Rejection sampling: the grammar has 64000 sentences, so collisions are
    # rare unless nearly all of them are asked for.
    while len(chosen) < n:
        batch = rng.integers(0, NUM_SENTENCES, size=2 * (n - len(chosen)) + 8)
        for index in batch.tolist():
            if index not in seen:
                seen.add(index)
                chosen.append(Sentence.from_index(index))
                if len(chosen) == n:
                    break
    return chosen


def word_segments(sentence, timed_words):
    """Pair a sentence's words with spoken word timings, for `write_align`.

    Args:
        sentence: the `Sentence` that was spoken (from its `spoken_text`).
        timed_words: `(word, start_s, end_s)` per spoken word, in order, as
            `speech.SynthesizedSpeech.words` gives them.

    Returns:
        `(start_s, end_s, word)` with GRID's own words (the letter "a", not
        its spelling "eh").

    Raises:
        AutalkError: not one timing per word of the sentence.

    Example:
    ```python
    write_align(path, word_segments(sentence, speech.words), speech.duration)
    ```
    """
    timed_words = list(timed_words)
    if len(timed_words) != len(sentence.words):
        raise AutalkError(
            f"The speech has {len(timed_words)} timed words but '{sentence.text}' "
            f"has {len(sentence.words)}."
        )
    return [
        (float(start), float(end), word)
        for word, (_, start, end) in zip(sentence.words, timed_words)
    ]


def _to_units(seconds):
    return int(round(float(seconds) * ALIGN_UNITS_PER_SECOND))


def write_align(path, segments, duration_s=None):
    """Write a GRID `.align` file.

    `sil` is added before the first word when it starts after 0, `sp` in any
    gap between words, and `sil` after the last word up to `duration_s`.

    Args:
        path: the `.align` file to write (written atomically).
        segments: `(start_s, end_s, word)` in time order (what `read_align`
            returns); entries may already include `sil` / `sp`.
        duration_s: the utterance's length; when given, a final `sil` runs
            to it.

    Raises:
        AutalkError: no segments, times out of order, negative, past
            `duration_s`, or a word that is empty or contains whitespace.

    Example:
    ```python
    write_align("bbaf2n.align", [(0.5, 0.8, "bin"), (0.8, 1.1, "blue")], duration_s=3.0)
    ```
    """
    segments = [(float(start), float(end), str(word)) for start, end, word in segments]
    if not segments:
        raise AutalkError("An align file needs at least one word.")
    lines = []
    cursor = 0
    for number, (start, end, word) in enumerate(segments, 1):
        if not word or any(char.isspace() for char in word):
            raise AutalkError(f"Align segment {number} has an invalid word {word!r}.")
        start_units, end_units = _to_units(start), _to_units(end)
        if start < 0 or end_units < start_units or start_units < cursor:
            raise AutalkError(
                f"Align segment {number} ({word!r}, {start:.3f}-{end:.3f} s) is out of time order."
            )
        if start_units > cursor:
            lines.append((cursor, start_units, SILENCE if not lines else SHORT_PAUSE))
        lines.append((start_units, end_units, word))
        cursor = end_units
    if duration_s is not None:
        total = _to_units(duration_s)
        if total < cursor:
            raise AutalkError(
                f"The align segments end at {cursor / ALIGN_UNITS_PER_SECOND:.3f} s, "
                f"after the utterance's duration {float(duration_s):.3f} s."
            )
        if total > cursor:
            if lines[-1][2] == SILENCE:
                lines[-1] = (lines[-1][0], total, SILENCE)
            else:
                lines.append((cursor, total, SILENCE))
    with atomic_output(path, "align file") as tmp:
        pathlib.Path(tmp).write_text(
            "".join(f"{start} {end} {word}\n" for start, end, word in lines), encoding="ascii"
        )


def read_align(path, include_silence=True):
    """Read a GRID `.align` file.

    Args:
        path: the `.align` file.
        include_silence: keep the `sil` and `sp` segments.

    Returns:
        A list of `(start_s, end_s, word)`.

    Raises:
        InputFileError: missing, empty, or a line that is not `start end word`.

    Example:
    ```python
    words = read_align("s1/align/bbaf2n.align", include_silence=False)
    ```
    """
    path = check_input_file(path, "align file")
    try:
        text = path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError) as error:
        raise InputFileError(f"The align file '{path}' cannot be read as text ({error}).") from None
    segments = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split()
        try:
            if len(fields) != 3:
                raise ValueError
            start, end = int(fields[0]), int(fields[1])
            if start < 0 or end < start:
                raise ValueError
        except ValueError:
            raise InputFileError(
                f"Line {number} of the align file '{path}' is not 'start end word': "
                f"{line.strip()!r}."
            ) from None
        word = fields[2]
        if include_silence or word not in (SILENCE, SHORT_PAUSE):
            segments.append((start / ALIGN_UNITS_PER_SECOND, end / ALIGN_UNITS_PER_SECOND, word))
    if include_silence and not segments:
        raise InputFileError(f"The align file '{path}' holds no segments.")
    return segments
