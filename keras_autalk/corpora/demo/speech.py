"""Speech synthesis with phoneme and word timings, through espeak-ng.

The library and its voice data come from the `espeakng-loader` wheel (no
system package) and are driven through espeak-ng's C API with `ctypes`:
`espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, ..., espeakINITIALIZE_PHONEME_EVENTS)`
makes `espeak_Synth` hand every chunk of 22050 Hz int16 audio to a callback
together with its events: a WORD event where each word starts and a PHONEME
event (type 7) whose `id.string` holds the phoneme's mnemonic (espeak's
ASCII phoneme names, e.g. `p`, `'eI`, `aU`, `t#`, `_:`; a leading `'` or `,`
marks primary or secondary stress) at its audio position.

Timing conventions of the returned `SynthesizedSpeech`:

- A phoneme runs from its start to the next phoneme's start; the last ends
  with the audio.
- espeak places a stop's event at its *release*; the silent closure before
  it is audio of the previous phoneme's span. The closure belongs to the
  stop (the lips are closed for /p b m/ during it), so each stop's start is
  moved back to where the audio goes quiet before the release, as in
  TIMIT-style segmentations.
- A word runs from its first phoneme's start to its last phoneme's end;
  pause phonemes (`_`, `_:`, `_!`) belong to no word.

espeak-ng's engine is process-global and not thread-safe, so every call
holds a lock; and because its wave generator carries state from one
utterance to the next, each call loads the library afresh (see `_Espeak`),
which makes the output a function of the text and voice alone.
"""

import ctypes
import dataclasses
import os
import re
import threading

import numpy as np

from keras_autalk.config import AudioConfig
from keras_autalk.errors import AutalkError, MissingDependencyError
from keras_autalk.media import audio_backends
from keras_autalk.native import native_stderr_silenced

# espeak-ng's C API constants (speak_lib.h).
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_PHONEME_EVENTS = 0x0001
_INITIALIZE_DONT_EXIT = 0x8000
_CHARS_UTF8 = 1
_POS_CHARACTER = 1
_EVENT_LIST_TERMINATED = 0
_EVENT_WORD = 1
_EVENT_PHONEME = 7
_PARAMETER_RATE = 1
_PARAMETER_VOLUME = 2
_PARAMETER_PITCH = 3
_PARAMETER_RANGE = 4
_PARAMETER_WORDGAP = 7

# espeak's loudness (0..200, 100 its default): 80 keeps the loudest voices'
# peaks clear of int16 clipping.
_VOLUME = 80

# espeak's words-per-minute limits.
MIN_RATE = 80
MAX_RATE = 450

# Phonemes espeak uses for pauses.
PAUSE_PHONEMES = ("_", "_:", "_!", "_^_", "_|", "_#")

# Stop consonants (mnemonics without stress marks): their closure is moved
# into them (see the module docstring).
_STOPS = (
    "p",
    "b",
    "t",
    "d",
    "k",
    "g",
    "tS",
    "dZ",
    "t#",
    "d#",
    "t2",
    "d2",
    "t[",
    "d[",
    "k-",
    "g-",
    "?",
)
# A stop's closure is at most this long; a stop with no audible gap before it
# (utterance-initial) gets this much silence before its release.
_MAX_CLOSURE_S = 0.15
_DEFAULT_CLOSURE_S = 0.04
_ENVELOPE_HOP_S = 0.0025
_ENVELOPE_WINDOW_S = 0.005
# Audio quieter than this fraction of the utterance's loud level is closure.
_CLOSURE_LEVEL = 0.08


class _EspeakID(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _EspeakEvent(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EspeakID),
    ]


_SYNTH_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_EspeakEvent)
)


def strip_stress(phoneme):
    """The phoneme mnemonic without espeak's stress marks (`'eI` -> `eI`)."""
    return phoneme.lstrip("',%=")


@dataclasses.dataclass(frozen=True)
class Voice:
    """One espeak-ng speaker: a language voice, a variant and prosody.

    Args:
        name: espeak-ng voice, e.g. "en-us", "en", "en-gb-x-rp",
            "en-gb-scotland" (see `espeak-ng --voices=en`).
        variant: a file in `espeak-ng-data/voices/!v` ("m3", "f4",
            "steph", ...), or "" for the voice's own. Variants with breath
            noise (f2, f3, f5, Alicia, whisperf) work but are not
            reproducible from one process to the next.
        rate: speaking rate in words per minute (80..450).
        pitch: base pitch, 0..100 (50 is the voice's normal).
        pitch_range: pitch variation, 0..100 (0 is monotone).

    Example:
    ```python
    voice = Voice("en-gb-x-rp", "m3", rate=165)
    voice.espeak_name   # "en-gb-x-rp+m3"
    ```
    """

    name: str = "en-us"
    variant: str = ""
    rate: int = 165
    pitch: int = 50
    pitch_range: int = 50

    def __post_init__(self):
        if not MIN_RATE <= int(self.rate) <= MAX_RATE:
            raise AutalkError(
                f"A voice's rate must be {MIN_RATE}..{MAX_RATE} words per minute, got {self.rate}."
            )
        for field in ("pitch", "pitch_range"):
            if not 0 <= int(getattr(self, field)) <= 100:
                raise AutalkError(f"A voice's {field} must be 0..100, got {getattr(self, field)}.")

    @property
    def espeak_name(self):
        """The name `espeak_SetVoiceByName` takes: "voice+variant"."""
        return f"{self.name}+{self.variant}" if self.variant else self.name

    @property
    def label(self):
        """A short file-name-safe label, e.g. "en-gb-x-rp_m3"."""
        return f"{self.name}_{self.variant}" if self.variant else self.name

    def jittered(self, rng, rate_fraction=0.08, pitch_steps=6):
        """This voice with its rate and pitch randomly varied.

        Args:
            rng: a `numpy.random.Generator`.
            rate_fraction: the rate is scaled by up to +/- this fraction.
            pitch_steps: the pitch moves by up to +/- this many steps.

        Example:
        ```python
        voice = VOICES[0].jittered(np.random.default_rng(0))
        ```
        """
        rate = int(round(self.rate * (1.0 + rng.uniform(-rate_fraction, rate_fraction))))
        pitch = int(round(self.pitch + rng.uniform(-pitch_steps, pitch_steps)))
        return dataclasses.replace(
            self, rate=int(np.clip(rate, MIN_RATE, MAX_RATE)), pitch=int(np.clip(pitch, 0, 100))
        )


# The demo corpus's speakers: British, American, Scottish, Caribbean and
# regional English accents, four male and four female variants. The tests
# check that each says every GRID word as one espeak word and gives the
# same audio in every process. Variants with breath noise ("breath" in their
# file: f2, f3, f5, Alicia, whisperf) are left out: espeak-ng's breath
# noise depends on memory layout, so their audio differs between processes.
VOICES = (
    Voice("en-gb-x-rp", "m3", rate=160, pitch=48, pitch_range=55),
    Voice("en-us", "steph", rate=170, pitch=52, pitch_range=60),
    Voice("en-gb-scotland", "m1", rate=155, pitch=45, pitch_range=50),
    Voice("en", "belinda", rate=165, pitch=50, pitch_range=45),
    Voice("en-us-nyc", "m4", rate=175, pitch=50, pitch_range=50),
    Voice("en-gb-x-gbclan", "f4", rate=160, pitch=48, pitch_range=55),
    Voice("en-029", "m6", rate=165, pitch=50, pitch_range=60),
    Voice("en-gb-x-gbcwmd", "f1", rate=170, pitch=50, pitch_range=50),
)


@dataclasses.dataclass(frozen=True, eq=False)
class SynthesizedSpeech:
    """Synthesised speech and its timings.

    Attributes:
        waveform: float32 mono samples at `sample_rate`.
        sample_rate: Hz (`AudioConfig.sample_rate`).
        phonemes: `(phoneme, start_s, end_s)` tuples covering the audio
            from the first phoneme on, in time order; `phoneme` is espeak's
            mnemonic with its stress mark (`'eI`).
        words: `(word, start_s, end_s)` tuples, one per spoken word, in text
            order; `word` is the word as written in the text.
        voice: the `Voice` that spoke.
    """

    waveform: np.ndarray
    sample_rate: int
    phonemes: tuple
    words: tuple
    voice: Voice

    @property
    def duration(self):
        """Length of the waveform in seconds."""
        return self.waveform.size / self.sample_rate

    def padded(self, before_s, after_s):
        """This speech with `before_s` / `after_s` seconds of silence added
        at the start / end; every timing is shifted to match.

        Example:
        ```python
        speech = synthesize("bin blue at f two now", VOICES[0]).padded(0.4, 0.4)
        ```
        """
        if before_s < 0 or after_s < 0:
            raise AutalkError("Padding must be zero or positive.")
        before = int(round(before_s * self.sample_rate))
        after = int(round(after_s * self.sample_rate))
        shift = before / self.sample_rate
        waveform = np.pad(self.waveform, (before, after)).astype(np.float32)
        return dataclasses.replace(
            self,
            waveform=waveform,
            phonemes=tuple((p, s + shift, e + shift) for p, s, e in self.phonemes),
            words=tuple((w, s + shift, e + shift) for w, s, e in self.words),
        )


def _data_path():
    try:
        import espeakng_loader
    except ImportError:
        raise MissingDependencyError(
            "Speech synthesis needs the 'espeakng-loader' package; "
            "install it with 'pip install espeakng-loader'."
        ) from None
    return espeakng_loader.get_library_path(), espeakng_loader.get_data_path()


def _unload(handle):
    """dlclose / FreeLibrary the library, so its static state goes with it."""
    import _ctypes

    close = getattr(_ctypes, "dlclose", None) or getattr(_ctypes, "FreeLibrary", None)
    if close is not None:
        close(handle)


class _Espeak:
    """One fresh load of libespeak-ng: initialised, used, then unloaded.

    espeak-ng's wave generator keeps state in static variables (pitch
    flutter phase, glottal phase, echo buffer...) that `espeak_Terminate`
    does not reset, so the same text comes out slightly different every
    time within one load. Loading the library afresh for each utterance
    (about 4 ms) makes every synthesis start from the same state, so the
    output depends on the text and the voice only.
    """

    def __init__(self):
        library_path, self.data_path = _data_path()
        try:
            lib = ctypes.CDLL(library_path)
        except OSError as error:
            raise MissingDependencyError(
                f"The espeak-ng library of espeakng-loader cannot be loaded ({error})."
            ) from None
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_Terminate.argtypes = []
        lib.espeak_Terminate.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_SYNTH_CALLBACK]
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.POINTER(ctypes.c_uint),
            ctypes.c_void_p,
        ]
        lib.espeak_Synth.restype = ctypes.c_int
        self.lib = lib
        with native_stderr_silenced():
            rate = lib.espeak_Initialize(
                _AUDIO_OUTPUT_SYNCHRONOUS,
                0,
                self.data_path.encode(),
                _INITIALIZE_PHONEME_EVENTS | _INITIALIZE_DONT_EXIT,
            )
        if rate <= 0:
            self.close(terminate=False)
            raise MissingDependencyError(
                f"espeak-ng could not start with its data at '{self.data_path}'."
            )
        self.sample_rate = rate
        self._chunks = []
        self._events = []
        # Keep a reference: ctypes callbacks die with their Python object.
        self._callback = _SYNTH_CALLBACK(self._on_audio)
        lib.espeak_SetSynthCallback(self._callback)

    def close(self, terminate=True):
        """Terminate espeak and unload the library."""
        if self.lib is None:
            return
        if terminate:
            self.lib.espeak_Terminate()
        handle, self.lib = self.lib._handle, None
        _unload(handle)

    def _on_audio(self, wav, num_samples, events):
        if num_samples > 0 and wav:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(num_samples,)).copy())
        index = 0
        while events[index].type != _EVENT_LIST_TERMINATED:
            event = events[index]
            if event.type == _EVENT_PHONEME:
                name = bytes(event.id.string).split(b"\0", 1)[0].decode("ascii", "replace")
                self._events.append((_EVENT_PHONEME, event.sample, name, 0))
            elif event.type == _EVENT_WORD:
                self._events.append((_EVENT_WORD, event.sample, event.text_position, event.length))
            index += 1
        return 0

    def synthesize(self, text, voice):
        """Return `(int16 samples, events)` for `text` spoken by `voice`."""
        if voice.variant and voice.variant not in available_variants():
            raise AutalkError(
                f"espeak-ng has no voice variant '{voice.variant}'; "
                f"choose one of {', '.join(available_variants())}."
            )
        if self.lib.espeak_SetVoiceByName(voice.espeak_name.encode()) != 0:
            raise AutalkError(f"espeak-ng has no voice named '{voice.name}'.")
        for parameter, value in (
            (_PARAMETER_RATE, voice.rate),
            (_PARAMETER_PITCH, voice.pitch),
            (_PARAMETER_RANGE, voice.pitch_range),
            (_PARAMETER_VOLUME, _VOLUME),
            (_PARAMETER_WORDGAP, 0),
        ):
            self.lib.espeak_SetParameter(parameter, int(value), 0)
        data = text.encode("utf-8") + b"\0"
        self._chunks, self._events = [], []
        with native_stderr_silenced():
            status = self.lib.espeak_Synth(
                data, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None
            )
        if status != 0:
            raise AutalkError(f"espeak-ng failed to synthesise the text (error {status}).")
        samples = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
        events, self._chunks, self._events = self._events, [], []
        return samples, events


# espeak-ng is process-global and not thread-safe: one call at a time.
_LOCK = threading.Lock()
_SAMPLE_RATE = None


def _synthesize_raw(text, voice):
    """`(int16 samples, events, rate)` from a fresh load of espeak-ng."""
    global _SAMPLE_RATE
    with _LOCK:
        engine = _Espeak()
        try:
            samples, events = engine.synthesize(text, voice)
        finally:
            engine.close()
        _SAMPLE_RATE = engine.sample_rate
        return samples, events, engine.sample_rate


def espeak_sample_rate():
    """The rate espeak-ng synthesises at (22050 Hz)."""
    global _SAMPLE_RATE
    if _SAMPLE_RATE is None:
        with _LOCK:
            engine = _Espeak()
            engine.close()
            _SAMPLE_RATE = engine.sample_rate
    return _SAMPLE_RATE


def available_variants():
    """The voice variants shipped with espeak-ng ("m1", "f2", "klatt", ...)."""
    folder = os.path.join(_data_path()[1], "voices", "!v")
    return tuple(sorted(os.listdir(folder))) if os.path.isdir(folder) else ()


def _envelope(samples, rate):
    """RMS level on a `_ENVELOPE_HOP_S` grid; entry `i` is centred on
    `i * hop`."""
    hop = max(1, int(round(_ENVELOPE_HOP_S * rate)))
    half = max(1, int(round(_ENVELOPE_WINDOW_S * rate / 2)))
    power = np.concatenate([[0.0], np.cumsum(samples.astype(np.float64) ** 2)])
    centres = np.arange(0, samples.size + 1, hop)
    lo = np.clip(centres - half, 0, samples.size)
    hi = np.clip(centres + half, 0, samples.size)
    return np.sqrt((power[hi] - power[lo]) / np.maximum(hi - lo, 1)), hop


def _closure_start(envelope, hop, quiet, release, earliest, rate):
    """Sample where the quiet stretch ending at `release` begins (not before
    `earliest`), or None when there is no audible gap."""
    index = int(release // hop) - 1
    first = int(np.ceil(earliest / hop))
    start = None
    while index >= first and envelope[index] < quiet:
        start = index
        index -= 1
    if start is None or (release - start * hop) < 0.01 * rate:
        return None
    return start * hop


def _word_at(text, index, length):
    """The word espeak's event points at (`index` 0-based, `length` chars).

    After a sentence break espeak's position can land on the space before
    the word; then the next word in the text is taken.
    """
    word = text[index : index + length].strip()
    if word:
        return word
    following = re.search(r"\S+", text[max(index, 0) :])
    return following.group(0) if following else ""


def _timings(samples, events, rate, text):
    """Phoneme and word timings (seconds) from espeak's events."""
    envelope, hop = _envelope(samples, rate)
    loud = np.percentile(envelope, 95) if envelope.size else 0.0
    quiet = _CLOSURE_LEVEL * loud
    starts, names, word_of = [], [], []
    word_spans = []
    current_word = None
    for kind, sample, value, length in events:
        if kind == _EVENT_WORD:
            word_spans.append((value, length))
            current_word = len(word_spans) - 1
        elif kind == _EVENT_PHONEME:
            starts.append(min(int(sample), samples.size))
            names.append(value)
            word_of.append(None if value in PAUSE_PHONEMES else current_word)
    # Move each stop's start back over its silent closure.
    for index, name in enumerate(names):
        if strip_stress(name) not in _STOPS:
            continue
        release = starts[index]
        previous = starts[index - 1] if index > 0 else 0
        earliest = max(
            previous + int(0.015 * rate) if index > 0 else 0, release - int(_MAX_CLOSURE_S * rate)
        )
        start = _closure_start(envelope, hop, quiet, release, earliest, rate)
        if start is None and index == 0:
            start = max(0, release - int(_DEFAULT_CLOSURE_S * rate))
        if start is not None:
            starts[index] = int(start)
    ends = starts[1:] + [samples.size]
    phonemes = tuple(
        (name, start / rate, max(start, end) / rate)
        for name, start, end in zip(names, starts, ends)
    )
    words = []
    for number, (position, length) in enumerate(word_spans):
        members = [i for i, owner in enumerate(word_of) if owner == number]
        if not members:
            continue
        word = _word_at(text, position - 1, length)
        words.append((word, phonemes[members[0]][1], phonemes[members[-1]][2]))
    return phonemes, tuple(words)


def synthesize(text, voice=VOICES[0], config=AudioConfig()):
    """Speak `text` with espeak-ng; return the audio and its timings.

    The result is the same for the same text and voice, in any process.
    espeak starts the speech after ~10 ms and ends it with a short pause;
    callers that need silence around the speech add it with
    `SynthesizedSpeech.padded`.

    Args:
        text: the words to say (plain text, UTF-8).
        voice: a `Voice` (default: the first of `VOICES`).
        config: `AudioConfig`; the audio is resampled to its `sample_rate`.

    Returns:
        A `SynthesizedSpeech`.

    Raises:
        AutalkError: empty text, text with nothing to say, or an unknown
            voice or variant.
        MissingDependencyError: espeak-ng cannot be loaded.

    Example:
    ```python
    speech = synthesize("bin blue at f two now", VOICES[1])
    speech.words[0]   # ("bin", 0.0, 0.15...)
    ```
    """
    text = str(text)
    if not text.strip():
        raise AutalkError("There is no text to synthesise.")
    samples, events, rate = _synthesize_raw(text, voice)
    phonemes, words = _timings(samples, events, rate, text)
    if not any(strip_stress(name) not in PAUSE_PHONEMES for name, _, _ in phonemes):
        raise AutalkError(f"espeak-ng found nothing to say in the text {text!r}.")
    mono = samples.astype(np.float32) / 32768.0
    waveform = audio_backends.resample(mono, rate, config.sample_rate, backend="soundfile")
    duration = waveform.size / config.sample_rate
    # Keep every timing inside the resampled audio (it can be a sample shorter).
    phonemes = tuple((p, min(s, duration), min(e, duration)) for p, s, e in phonemes)
    words = tuple((w, min(s, duration), min(e, duration)) for w, s, e in words)
    return SynthesizedSpeech(
        waveform=np.ascontiguousarray(waveform, dtype=np.float32),
        sample_rate=config.sample_rate,
        phonemes=phonemes,
        words=words,
        voice=voice,
    )
