"""Phonemes to visemes to per-frame mouth shapes and action-unit curves.

The demo corpus animates faces from speech timings. Three steps:

1. **Phoneme -> visemes.** Each espeak-ng English phoneme mnemonic (as
   `speech.synthesize` reports it; stress marks are read, then stripped)
   maps to one viseme, or to two or three for diphthongs (`aI` is `open`
   then `close_front`), which split the phoneme's time evenly.
   `PHONEME_VISEMES` covers every phoneme espeak-ng emits for GRID's words
   in all of `speech.VOICES`, plus the rest of espeak's English set.
2. **Viseme -> mouth targets.** `VISEMES` gives each viseme a target value
   in 0..1 for every `config.MOUTH_PARAMETERS` entry (jaw_drop, lip_part,
   pucker, stretch, corner_up, corner_down, upper_lip_raise, lip_press).
   Unstressed vowels open less (`UNSTRESSED_VOWEL_SCALE`).
3. **Co-articulation.** Cohen and Massaro's dominance model: every segment
   pulls each parameter toward its target with a dominance that is
   `alpha` inside the segment and decays exponentially outside it (time
   constant `ANTICIPATION_S` before, `CARRYOVER_S` after), so a rounded
   vowel starts rounding the lips during the consonants before it.
   `alpha` is per viseme and parameter: tongue consonants (t, s, k, ...)
   barely constrain the lips, so the neighbouring vowels' lip shapes run
   through them; bilabials dominate jaw and lips. The blend at each video
   frame's centre is the dominance-weighted mean of the targets. Time
   before the first phoneme, after the last, and pause phonemes are the
   `silence` viseme (lips closed, jaw at rest). Finally every frame inside
   a bilabial closure (/p b m/; for /p b/ the part before the release) is
   set closed: `lip_part` 0 and `jaw_drop` at most the bilabial target.

Action units (`au_intensities`), OpenFace's 0..5 intensity scale, each
`5 * clip(sum(weight * parameter) + offset, 0, 1)`:

    AU10 upper lip raiser    upper_lip_raise
    AU12 lip corner puller   corner_up
    AU14 dimpler             0.6 lip_press + 0.4 stretch
    AU15 lip corner depress. corner_down
    AU17 chin raiser         0.8 lip_press + 0.2 corner_down
    AU18 lip pucker          pucker
    AU20 lip stretcher       stretch
    AU22 lip funneler        clip(1.5 pucker - 0.5) * clip(2 (lip_part + 0.5 jaw_drop))
    AU23 lip tightener       0.6 lip_press + 0.3 pucker
    AU24 lip pressor         lip_press
    AU25 lips part           lip_part + 0.5 jaw_drop
    AU26 jaw drop            jaw_drop
    AU27 mouth stretch       (jaw_drop - 0.7) / 0.3

Example:
```python
from keras_autalk.media import audio
from keras_autalk.corpora.demo import speech, visemes
spoken = speech.synthesize("bin blue at f two now").padded(0.4, 0.4)
frames = audio.num_video_frames(spoken.waveform.size)
mouth = visemes.mouth_track(spoken.phonemes, frames, fps=25.0)   # (frames, 8)
aus = visemes.au_intensities(mouth)                              # (frames, 5), 0..5
```
"""

import logging

import numpy as np

from keras_autalk.config import DEFAULT_ACTION_UNITS, MOUTH_PARAMETERS
from keras_autalk.errors import AutalkError

logger = logging.getLogger(__name__)

_P = {name: index for index, name in enumerate(MOUTH_PARAMETERS)}


def _target(**values):
    vector = np.zeros(len(MOUTH_PARAMETERS), np.float32)
    for name, value in values.items():
        vector[_P[name]] = value
    return vector


# Mouth-shape targets of each viseme (0..1 per parameter).
VISEMES = {
    "silence": _target(),
    "bilabial": _target(jaw_drop=0.03, lip_press=0.6),
    "labiodental": _target(jaw_drop=0.1, lip_part=0.12, upper_lip_raise=0.4, lip_press=0.2),
    "dental": _target(jaw_drop=0.2, lip_part=0.35, stretch=0.2, upper_lip_raise=0.15),
    "alveolar": _target(jaw_drop=0.2, lip_part=0.3, stretch=0.15),
    "sibilant": _target(jaw_drop=0.1, lip_part=0.25, stretch=0.35, upper_lip_raise=0.15),
    "postalveolar": _target(jaw_drop=0.12, lip_part=0.3, pucker=0.55, upper_lip_raise=0.25),
    "velar": _target(jaw_drop=0.3, lip_part=0.35, stretch=0.1),
    "glottal": _target(jaw_drop=0.3, lip_part=0.3),
    "r": _target(jaw_drop=0.18, lip_part=0.25, pucker=0.45),
    "w": _target(jaw_drop=0.1, lip_part=0.12, pucker=0.9),
    "y": _target(jaw_drop=0.12, lip_part=0.22, stretch=0.45, corner_up=0.15),
    "open": _target(jaw_drop=0.9, lip_part=0.5, stretch=0.2),
    "open_front": _target(jaw_drop=0.8, lip_part=0.5, stretch=0.3, upper_lip_raise=0.1),
    "open_mid": _target(jaw_drop=0.55, lip_part=0.45, stretch=0.3),
    "mid_front": _target(jaw_drop=0.4, lip_part=0.4, stretch=0.45, corner_up=0.1),
    "mid_central": _target(jaw_drop=0.35, lip_part=0.35),
    "close_front": _target(jaw_drop=0.15, lip_part=0.3, stretch=0.65, corner_up=0.25),
    "open_back_rounded": _target(jaw_drop=0.65, lip_part=0.4, pucker=0.45),
    "mid_back_rounded": _target(jaw_drop=0.4, lip_part=0.3, pucker=0.65),
    "close_back_rounded": _target(jaw_drop=0.15, lip_part=0.15, pucker=0.85),
}

VOWEL_VISEMES = (
    "open",
    "open_front",
    "open_mid",
    "mid_front",
    "mid_central",
    "close_front",
    "open_back_rounded",
    "mid_back_rounded",
    "close_back_rounded",
)
LIP_CLOSURE_VISEMES = ("bilabial",)

# espeak-ng's English phoneme mnemonics (stress marks removed) -> visemes.
PHONEME_VISEMES = {
    # pauses
    "_": ("silence",),
    "_:": ("silence",),
    "_!": ("silence",),
    "_^_": ("silence",),
    "_|": ("silence",),
    "_#": ("silence",),
    # lips
    "p": ("bilabial",),
    "b": ("bilabial",),
    "m": ("bilabial",),
    "m-": ("bilabial",),
    "f": ("labiodental",),
    "v": ("labiodental",),
    # tongue against teeth / ridge
    "T": ("dental",),
    "D": ("dental",),
    "t[": ("dental",),
    "d[": ("dental",),
    "t": ("alveolar",),
    "d": ("alveolar",),
    "n": ("alveolar",),
    "l": ("alveolar",),
    "t#": ("alveolar",),
    "d#": ("alveolar",),
    "t2": ("alveolar",),
    "d2": ("alveolar",),
    "n-": ("alveolar",),
    "l/": ("alveolar",),
    "l#": ("alveolar",),
    "@L": ("mid_central", "alveolar"),
    "s": ("sibilant",),
    "z": ("sibilant",),
    "s2": ("sibilant",),
    "z#": ("sibilant",),
    "S": ("postalveolar",),
    "Z": ("postalveolar",),
    "tS": ("postalveolar",),
    "dZ": ("postalveolar",),
    "k": ("velar",),
    "g": ("velar",),
    "N": ("velar",),
    "x": ("velar",),
    "k-": ("velar",),
    "g-": ("velar",),
    "h": ("glottal",),
    "?": ("glottal",),
    "C": ("y",),
    # approximants (";" is espeak's linking glide between vowels, as in "by r")
    "r": ("r",),
    "r-": ("r",),
    "r/": ("r",),
    "*": ("alveolar",),
    "w": ("w",),
    "w#": ("w",),
    "W": ("w",),
    "j": ("y",),
    ";": ("y",),
    # monophthong vowels
    "a": ("open_front",),
    "aa": ("open_front",),
    "a#": ("mid_central",),
    "A:": ("open",),
    "A@": ("open",),
    "A": ("open",),
    "E": ("open_mid",),
    "E2": ("open_mid",),
    "E#": ("open_mid",),
    "V": ("open_mid",),
    "e": ("mid_front",),
    "@": ("mid_central",),
    "@2": ("mid_central",),
    "@5": ("mid_central",),
    "3": ("mid_central",),
    "3:": ("mid_central",),
    "I": ("close_front",),
    "I2": ("close_front",),
    "I#": ("close_front",),
    "i": ("close_front",),
    "i:": ("close_front",),
    "0": ("open_back_rounded",),
    "O": ("open_back_rounded",),
    "O:": ("open_back_rounded",),
    "O@": ("open_back_rounded",),
    "o@": ("open_back_rounded",),
    "o": ("mid_back_rounded",),
    "U": ("close_back_rounded",),
    "u:": ("close_back_rounded",),
    "u": ("close_back_rounded",),
    "0#": ("open_back_rounded",),
    # diphthongs
    "aI": ("open", "close_front"),
    "aI2": ("open", "close_front"),
    "aI3": ("open", "close_front"),
    "aI@": ("open", "close_front", "mid_central"),
    "aU": ("open", "close_back_rounded"),
    "aU@": ("open", "close_back_rounded", "mid_central"),
    "eI": ("mid_front", "close_front"),
    "e@": ("open_mid", "mid_central"),
    "oU": ("mid_back_rounded", "close_back_rounded"),
    "oU#": ("mid_back_rounded", "close_back_rounded"),
    "OI": ("open_back_rounded", "close_front"),
    "i@": ("close_front", "mid_central"),
    "i@3": ("close_front", "mid_central"),
    "U@": ("close_back_rounded", "mid_central"),
    "u@": ("close_back_rounded", "mid_central"),
}

# festvox-ru's phones (festival's MSU Russian set) -> espeak mnemonics, so
# that labelled human speech takes the same viseme path as espeak-ng's.
# Doubled vowels are stressed (a primary stress mark is added), doubled
# consonants palatalised (same lip shape); "ay", "ae" and "y" are the reduced
# and central vowels; Russian /r/ is trilled with unrounded lips (an
# alveolar), "c" is /ts/, "sch" /ɕː/, "h" /x/.
RUSSIAN_PHONEMES = {
    "pau": "_",
    "#": "_",
    "a": "a",
    "aa": "'A:",
    "ay": "@",
    "ae": "I2",
    "e": "e",
    "ee": "'e",
    "i": "I",
    "ii": "'i:",
    "y": "I#",
    "yy": "'I#",
    "oo": "'o",
    "u": "U",
    "uu": "'u:",
    "ur": "'u:",
    "p": "p",
    "pp": "p",
    "b": "b",
    "bb": "b",
    "m": "m",
    "mm": "m",
    "f": "f",
    "ff": "f",
    "v": "v",
    "vv": "v",
    "t": "t",
    "tt": "t",
    "d": "d",
    "dd": "d",
    "n": "n",
    "nn": "n",
    "l": "l",
    "ll": "l",
    "r": "*",
    "rr": "*",
    "s": "s",
    "ss": "s",
    "z": "z",
    "zz": "z",
    "c": "s",
    "ch": "tS",
    "sh": "S",
    "sch": "S",
    "zh": "Z",
    "k": "k",
    "kk": "k",
    "g": "g",
    "gg": "g",
    "h": "x",
    "hh": "x",
    "j": "j",
}


def from_russian(phones):
    """festvox-ru `(phone, start_s, end_s)` -> the same with espeak mnemonics.

    Raises:
        AutalkError: a phone outside the MSU set.

    Example:
    >>> from_russian([("pau", 0.0, 0.3), ("aa", 0.3, 0.4)])
    [('_', 0.0, 0.3), ("'A:", 0.3, 0.4)]
    """
    converted = []
    for phone, start, end in phones:
        if phone not in RUSSIAN_PHONEMES:
            raise AutalkError(f"The festvox-ru phone {phone!r} has no viseme.")
        converted.append((RUSSIAN_PHONEMES[phone], start, end))
    return converted


def energy_mouth_track(waveform, sample_rate, num_frames, fps):
    """Mouth shapes from speech energy alone, for recordings without labels.

    Per video frame, the RMS level over the frame's span (dB) sets the
    opening: 0 at or below 45 dB under the recording's loudest frame (after
    a 3-frame median), 1 at 6 dB under it, in between linearly.
    `jaw_drop` = 0.75 * opening and `lip_part` = 0.5 * opening + 0.1 where
    there is any opening; every other parameter stays 0. There are no
    visemes here: no rounding, no spreading, no bilabial closures other than
    quiet frames.

    Args:
        waveform: float mono samples.
        sample_rate: Hz.
        num_frames: video frames to return.
        fps: video frame rate.

    Returns:
        `(num_frames, len(MOUTH_PARAMETERS))` float32 in 0..1.
    """
    from scipy.ndimage import median_filter

    waveform = np.asarray(waveform, np.float64)
    span = sample_rate / fps
    levels = np.full(num_frames, -120.0)
    for frame in range(num_frames):
        piece = waveform[int(frame * span) : int((frame + 1) * span)]
        if piece.size:
            levels[frame] = 10.0 * np.log10(np.mean(piece**2) + 1e-12)
    levels = median_filter(levels, size=3, mode="nearest")
    top = levels.max()
    opening = np.clip((levels - (top - 45.0)) / 39.0, 0.0, 1.0)
    mouth = np.zeros((num_frames, len(MOUTH_PARAMETERS)), np.float32)
    mouth[:, _P["jaw_drop"]] = 0.75 * opening
    mouth[:, _P["lip_part"]] = np.where(opening > 0, 0.5 * opening + 0.1, 0.0)
    return mouth


# Unstressed vowels open less: jaw_drop and lip_part are scaled by this.
UNSTRESSED_VOWEL_SCALE = 0.85

# Dominance time constants (seconds) before and after a segment.
ANTICIPATION_S = 0.045
CARRYOVER_S = 0.035

# Release part of a /p b/ (the lips open before the next phoneme starts):
# at most this long and this fraction of the stop.
_RELEASE_S = 0.03
_RELEASE_FRACTION = 0.4


def _dominance(jaw, lips, press=None):
    """Per-parameter dominance: `jaw` for jaw_drop and lip_part, `lips` for
    the lip-shape parameters, `press` for lip_press (default `lips`)."""
    alpha = np.full(len(MOUTH_PARAMETERS), lips, np.float32)
    alpha[_P["jaw_drop"]] = jaw
    alpha[_P["lip_part"]] = jaw
    alpha[_P["lip_press"]] = lips if press is None else press
    return alpha


_DEFAULT_DOMINANCE = _dominance(1.0, 1.0)
DOMINANCE = {
    "silence": _dominance(1.0, 1.0),
    "bilabial": _dominance(1.5, 1.0, press=1.5),
    "labiodental": _dominance(1.5, 1.5),
    "dental": _dominance(0.8, 0.3),
    "alveolar": _dominance(0.6, 0.25),
    "sibilant": _dominance(0.9, 0.4),
    "postalveolar": _dominance(0.8, 1.2),
    "velar": _dominance(0.5, 0.25),
    "glottal": _dominance(0.2, 0.2),
    "r": _dominance(0.6, 0.8),
    "w": _dominance(1.0, 2.0),
    "y": _dominance(0.6, 0.6),
    "open": _dominance(1.5, 1.0),
    "open_front": _dominance(1.5, 1.0),
    "open_mid": _dominance(1.3, 1.0),
    "open_back_rounded": _dominance(1.5, 1.2),
    "mid_back_rounded": _dominance(1.2, 1.3),
    "close_back_rounded": _dominance(1.0, 1.5),
}


def split_stress(phoneme):
    """`(mnemonic, stress)` of an espeak phoneme: stress is "'" (primary),
    "," (secondary) or "" (unstressed)."""
    stripped = phoneme.lstrip("',%=")
    marks = phoneme[: len(phoneme) - len(stripped)]
    stress = "'" if "'" in marks else ("," if "," in marks else "")
    return stripped, stress


def visemes_of(phoneme, strict=True):
    """The viseme names of an espeak phoneme (one, or two or three for a
    diphthong).

    Args:
        phoneme: espeak mnemonic, with or without a stress mark.
        strict: raise on a phoneme not in `PHONEME_VISEMES`; otherwise
            guess from its leading characters (`"t2x"` -> `t2` -> `t`), and
            fall back to `mid_central`.

    Raises:
        AutalkError: unknown phoneme with `strict=True`.

    Example:
    ```python
    visemes_of("'aU")   # ("open", "close_back_rounded")
    ```
    """
    name, _ = split_stress(phoneme)
    if name in PHONEME_VISEMES:
        return PHONEME_VISEMES[name]
    if strict:
        raise AutalkError(f"The phoneme {phoneme!r} has no viseme.")
    for length in range(len(name) - 1, 0, -1):
        if name[:length] in PHONEME_VISEMES:
            return PHONEME_VISEMES[name[:length]]
    return ("mid_central",)


def _segments(phonemes, strict):
    """Viseme segments `(viseme, start, end, stress_scale)`, time-ordered."""
    segments = []
    warned = set()
    for phoneme, start, end in phonemes:
        start, end = float(start), float(end)
        if not (np.isfinite(start) and np.isfinite(end)) or end < start:
            raise AutalkError(f"The phoneme {phoneme!r} has invalid times {start:.3f}-{end:.3f} s.")
        name, stress = split_stress(str(phoneme))
        if name not in PHONEME_VISEMES and not strict and name not in warned:
            warned.add(name)
            logger.warning("The phoneme %r has no viseme; guessing one.", phoneme)
        visemes = visemes_of(name, strict=strict)
        scale = 1.0
        if visemes[0] in VOWEL_VISEMES and stress == "":
            scale = UNSTRESSED_VOWEL_SCALE
        step = (end - start) / len(visemes)
        for index, viseme in enumerate(visemes):
            segments.append((viseme, name, start + index * step, start + (index + 1) * step, scale))
    return segments


def mouth_track(phonemes, num_frames, fps, strict=False):
    """Per-frame mouth-shape parameters for timed phonemes.

    Args:
        phonemes: `(phoneme, start_s, end_s)` in time order (espeak
            mnemonics, as `SynthesizedSpeech.phonemes`).
        num_frames: video frames to produce; frame `i` is sampled at its
            centre, `(i + 0.5) / fps` s.
        fps: video frame rate.
        strict: raise on a phoneme without a viseme instead of guessing.

    Returns:
        float32 `(num_frames, len(MOUTH_PARAMETERS))` in 0..1.

    Raises:
        AutalkError: bad times, frame count or rate, or (strict) an unknown
            phoneme.

    Example:
    ```python
    mouth = mouth_track([("b", 0.4, 0.45), ("'A:", 0.45, 0.7)], 30, 25.0)
    ```
    """
    num_frames = int(num_frames)
    if num_frames < 0:
        raise AutalkError(f"The number of frames must be zero or more, got {num_frames}.")
    if not fps or fps <= 0:
        raise AutalkError(f"The frame rate must be positive, got {fps}.")
    segments = _segments(phonemes, strict)
    times = (np.arange(num_frames, dtype=np.float64) + 0.5) / fps
    parameters = len(MOUTH_PARAMETERS)
    if not segments or num_frames == 0:
        return np.zeros((num_frames, parameters), np.float32)
    # Silence before the first phoneme and after the last.
    first = min(segment[2] for segment in segments)
    last = max(segment[3] for segment in segments)
    segments = (
        [("silence", "_", -np.inf, first, 1.0)] + segments + [("silence", "_", last, np.inf, 1.0)]
    )

    starts = np.array([s[2] for s in segments])
    ends = np.array([s[3] for s in segments])
    targets = np.stack([VISEMES[s[0]] for s in segments])
    alphas = np.stack([DOMINANCE.get(s[0], _DEFAULT_DOMINANCE) for s in segments])
    for row, segment in enumerate(segments):
        if segment[0] in VOWEL_VISEMES:
            targets[row, _P["jaw_drop"]] *= segment[4]
            targets[row, _P["lip_part"]] *= segment[4]

    t = times[:, None]
    before = np.maximum(starts[None, :] - t, 0.0)
    after = np.maximum(t - ends[None, :], 0.0)
    decay = np.exp(-before / ANTICIPATION_S - after / CARRYOVER_S)  # (T, S)
    weights = decay[:, :, None] * alphas[None, :, :]  # (T, S, P)
    mouth = (weights * targets[None]).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-12)

    # Lips closed on every frame inside a bilabial closure.
    for viseme, name, start, end, _ in segments:
        if viseme not in LIP_CLOSURE_VISEMES:
            continue
        closed_end = end
        if name in ("p", "b"):
            closed_end = end - min(_RELEASE_S, _RELEASE_FRACTION * (end - start))
        inside = np.nonzero((times >= start) & (times < closed_end))[0]
        if inside.size == 0:
            middle = 0.5 * (start + closed_end)
            nearest = int(np.clip(np.floor(middle * fps), 0, num_frames - 1))
            if abs(times[nearest] - middle) > 0.5 / fps:
                continue  # the closure lies outside the frames asked for
            inside = np.array([nearest])
        mouth[inside, _P["lip_part"]] = 0.0
        mouth[inside, _P["jaw_drop"]] = np.minimum(
            mouth[inside, _P["jaw_drop"]], VISEMES[viseme][_P["jaw_drop"]]
        )
        mouth[inside, _P["lip_press"]] = np.maximum(
            mouth[inside, _P["lip_press"]], 0.5 * VISEMES[viseme][_P["lip_press"]]
        )
    return np.clip(mouth, 0.0, 1.0).astype(np.float32)


def _au(offset=0.0, scale=1.0, **weights):
    vector = np.zeros(len(MOUTH_PARAMETERS), np.float32)
    for name, weight in weights.items():
        vector[_P[name]] = weight * scale
    return vector, offset * scale


# AU -> (weights over MOUTH_PARAMETERS, offset); intensity is
# 5 * clip(weights . mouth + offset, 0, 1). AU22 is special-cased.
AU_FROM_MOUTH = {
    10: _au(upper_lip_raise=1.0),
    12: _au(corner_up=1.0),
    14: _au(lip_press=0.6, stretch=0.4),
    15: _au(corner_down=1.0),
    17: _au(lip_press=0.8, corner_down=0.2),
    18: _au(pucker=1.0),
    20: _au(stretch=1.0),
    22: None,
    23: _au(lip_press=0.6, pucker=0.3),
    24: _au(lip_press=1.0),
    25: _au(lip_part=1.0, jaw_drop=0.5),
    26: _au(jaw_drop=1.0),
    27: _au(offset=-0.7, scale=1.0 / 0.3, jaw_drop=1.0),
}

SUPPORTED_ACTION_UNITS = tuple(sorted(AU_FROM_MOUTH))


def _funneler(mouth):
    """AU22 lip funneler: strong rounding with the lips apart (as in "sh")."""
    pucker = mouth[:, _P["pucker"]]
    opening = np.clip(mouth[:, _P["lip_part"]] + 0.5 * mouth[:, _P["jaw_drop"]], 0.0, 1.0)
    return np.clip(1.5 * pucker - 0.5, 0.0, 1.0) * np.clip(2.0 * opening, 0.0, 1.0)


def au_intensities(mouth, action_units=DEFAULT_ACTION_UNITS):
    """Ground-truth AU intensities (OpenFace's 0..5 scale) from mouth shapes.

    Args:
        mouth: `(num_frames, len(MOUTH_PARAMETERS))` from `mouth_track`.
        action_units: AU numbers, any of `SUPPORTED_ACTION_UNITS`.

    Returns:
        float32 `(num_frames, len(action_units))` in 0..5.

    Raises:
        AutalkError: an AU without a mapping, or `mouth` of the wrong shape.

    Example:
    ```python
    aus = au_intensities(mouth, (25, 26))
    ```
    """
    mouth = np.asarray(mouth, dtype=np.float32)
    if mouth.ndim != 2 or mouth.shape[1] != len(MOUTH_PARAMETERS):
        raise AutalkError(
            f"Mouth parameters must have shape (frames, {len(MOUTH_PARAMETERS)}), "
            f"got {mouth.shape}."
        )
    columns = []
    for au in action_units:
        if int(au) not in AU_FROM_MOUTH:
            raise AutalkError(
                f"AU{int(au):02d} cannot be derived from mouth shapes; use one of "
                f"{', '.join(f'AU{a:02d}' for a in SUPPORTED_ACTION_UNITS)}."
            )
        if int(au) == 22:
            level = _funneler(mouth)
        else:
            weights, offset = AU_FROM_MOUTH[int(au)]
            level = np.clip(mouth @ weights + offset, 0.0, 1.0)
        columns.append(5.0 * level)
    if not columns:
        return np.zeros((mouth.shape[0], 0), np.float32)
    return np.stack(columns, axis=1).astype(np.float32)
