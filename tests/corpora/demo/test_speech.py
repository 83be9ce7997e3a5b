"""Tests for keras_autalk.corpora.demo.speech: espeak-ng synthesis with timings."""

import hashlib
import subprocess
import sys
import threading

import librosa
import numpy as np
import pytest

from keras_autalk.config import AudioConfig
from keras_autalk.corpora import grid
from keras_autalk.corpora.demo import speech
from keras_autalk.errors import AutalkError

TEXT = "place blue at p two soon"
STOPS = ("p", "b", "t", "k", "d", "g")
FEMALE_VARIANTS = {"f1", "f4", "steph", "belinda"}


@pytest.fixture(scope="module")
def spoken():
    return speech.synthesize(TEXT, speech.VOICES[0])


def frame_rms(waveform, rate, window_s=0.01):
    size = int(rate * window_s)
    frames = waveform[: waveform.size // size * size].reshape(-1, size)
    return np.sqrt((frames.astype(np.float64) ** 2).mean(axis=1)), window_s


def median_f0(speech_result):
    waveform, rate = speech_result.waveform, speech_result.sample_rate
    f0 = librosa.yin(waveform, fmin=60, fmax=400, sr=rate, frame_length=1024, hop_length=256)
    rms = librosa.feature.rms(y=waveform, frame_length=1024, hop_length=256)[0]
    n = min(f0.size, rms.size)
    return float(np.median(f0[:n][rms[:n] > 0.3 * rms.max()]))


def test_espeak_synthesises_at_22050_hz():
    assert speech.espeak_sample_rate() == 22050


def test_output_is_16k_mono_float_speech(spoken):
    assert spoken.sample_rate == AudioConfig().sample_rate == 16000
    assert spoken.waveform.dtype == np.float32 and spoken.waveform.ndim == 1
    assert 0.8 < spoken.duration < 3.0
    peak = np.abs(spoken.waveform).max()
    assert 0.2 < peak < 1.0
    assert np.sqrt(np.mean(spoken.waveform**2)) > 0.02


def test_synthesis_is_deterministic(spoken):
    speech.synthesize("lay green with z nine again", speech.VOICES[3])  # another voice between
    again = speech.synthesize(TEXT, speech.VOICES[0])
    np.testing.assert_array_equal(again.waveform, spoken.waveform)
    assert again.phonemes == spoken.phonemes
    assert again.words == spoken.words


def test_every_voice_gives_the_same_audio_in_another_process():
    # espeak-ng's wave generator keeps state between utterances and some of
    # its noise depends on memory layout; a fresh process with a different
    # heap must still produce the same bytes for every voice.
    code = (
        "import hashlib\n"
        "junk = [bytearray(n * 977) for n in range(1, 300)]\n"
        "from keras_autalk.corpora.demo import speech\n"
        f"for voice in speech.VOICES:\n"
        f"    print(hashlib.md5(speech.synthesize({TEXT!r}, voice).waveform.tobytes()).hexdigest())\n"
    )
    other = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    here = [
        hashlib.md5(speech.synthesize(TEXT, voice).waveform.tobytes()).hexdigest()
        for voice in speech.VOICES
    ]
    assert other == here


def test_phonemes_are_espeaks_and_timed_inside_the_audio(spoken):
    names = [speech.strip_stress(p) for p, _, _ in spoken.phonemes]
    assert names == [
        "p",
        "l",
        "eI",
        "s",
        "b",
        "l",
        "u:",
        "a",
        "t",
        "p",
        "i:",
        "t",
        "u:",
        "s",
        "u:",
        "n",
        "_:",
        "_",
    ]
    starts = np.array([s for _, s, _ in spoken.phonemes])
    ends = np.array([e for _, _, e in spoken.phonemes])
    assert np.all(np.diff(starts) >= 0)
    assert np.all(ends >= starts)
    np.testing.assert_allclose(ends[:-1], starts[1:])  # contiguous
    assert starts[0] >= 0 and ends[-1] <= spoken.duration
    assert ends[-1] == pytest.approx(spoken.duration, abs=2 / spoken.sample_rate)
    assert starts[0] < 0.1


def test_words_are_timed_where_the_audio_is(spoken):
    padded = spoken.padded(0.3, 0.4)
    assert [w for w, _, _ in padded.words] == TEXT.split()
    starts = np.array([s for _, s, _ in padded.words])
    ends = np.array([e for _, _, e in padded.words])
    assert np.all(np.diff(starts) > 0) and np.all(ends > starts)
    np.testing.assert_allclose(ends[:-1], starts[1:])

    rms, window = frame_rms(padded.waveform, padded.sample_rate)
    centres = (np.arange(rms.size) + 0.5) * window
    loud = rms > 0.05 * rms.max()
    # All audible audio lies within the words (one window of tolerance)...
    assert centres[loud].min() >= starts[0] - window
    assert centres[loud].max() <= ends[-1] + window
    # ... the padding is silent, and every word holds loud speech.
    assert rms[centres < 0.29].max() == 0 and rms[centres > padded.duration - 0.39].max() == 0
    for word, start, end in padded.words:
        inside = (centres > start) & (centres < end)
        assert rms[inside].max() > 0.2 * rms.max(), word


def test_stops_start_at_their_silent_closure(spoken):
    # espeak's event marks a stop's release; the silent closure before it is
    # moved into the stop, so each word-internal stop begins quiet.
    rms, window = frame_rms(spoken.waveform, spoken.sample_rate, window_s=0.005)
    loud = np.percentile(rms, 95)
    checked = 0
    for index, (phoneme, start, _end) in enumerate(spoken.phonemes):
        if index == 0 or speech.strip_stress(phoneme) not in STOPS:
            continue
        first = int(np.ceil(start / window))
        assert rms[first : first + 2].max() < 0.1 * loud, (phoneme, start)
        checked += 1
    assert checked >= 4


def test_timings_survive_padding_and_other_rates(spoken):
    padded = spoken.padded(0.5, 0.25)
    assert padded.waveform.size == spoken.waveform.size + int(0.75 * spoken.sample_rate)
    for (p, s, e), (q, s2, e2) in zip(spoken.phonemes, padded.phonemes):
        assert p == q and s2 == pytest.approx(s + 0.5) and e2 == pytest.approx(e + 0.5)
    at_8k = speech.synthesize(TEXT, speech.VOICES[0], AudioConfig(sample_rate=8000))
    assert at_8k.sample_rate == 8000
    assert at_8k.duration == pytest.approx(spoken.duration, abs=1e-3)
    assert [p for p, _, _ in at_8k.phonemes] == [p for p, _, _ in spoken.phonemes]


def test_every_voice_says_every_grid_word_as_one_word():
    for voice in speech.VOICES:
        for sentence in grid.covering_sentences():
            result = speech.synthesize(sentence.spoken_text, voice)
            assert [w for w, _, _ in result.words] == sentence.spoken_text.split(), voice


def test_voices_are_distinct_and_shipped():
    assert len(speech.VOICES) >= 6
    assert len({(v.name, v.variant) for v in speech.VOICES}) == len(speech.VOICES)
    shipped = speech.available_variants()
    assert {"m1", "f4"} <= set(shipped)
    assert all(v.variant in shipped for v in speech.VOICES)


def test_different_voices_sound_different():
    sentence = "lay green in eh nine again"
    results = [speech.synthesize(sentence, voice) for voice in speech.VOICES]
    pitches = {r.voice.variant: median_f0(r) for r in results}
    female = [f0 for variant, f0 in pitches.items() if variant in FEMALE_VARIANTS]
    male = [f0 for variant, f0 in pitches.items() if variant not in FEMALE_VARIANTS]
    assert len(female) >= 3 and len(male) >= 3
    assert min(female) > 1.4 * max(male), pitches
    # No two voices give the same audio.
    means = [
        np.log(librosa.feature.melspectrogram(y=r.waveform, sr=16000).mean(axis=1) + 1e-8)
        for r in results
    ]
    for i in range(len(means)):
        for j in range(i + 1, len(means)):
            assert np.abs(means[i] - means[j]).mean() > 0.1, (i, j)


def test_rate_and_pitch_change_the_speech():
    slow = speech.synthesize(TEXT, speech.Voice("en-us", "m3", rate=110))
    fast = speech.synthesize(TEXT, speech.Voice("en-us", "m3", rate=260))
    assert slow.duration > 1.5 * fast.duration
    low = speech.synthesize(TEXT, speech.Voice("en-us", "m3", pitch=20))
    high = speech.synthesize(TEXT, speech.Voice("en-us", "m3", pitch=80))
    assert median_f0(high) > 1.2 * median_f0(low)


def test_jittered_voices_are_seeded_and_bounded():
    voice = speech.VOICES[1]
    first = [voice.jittered(np.random.default_rng(3)) for _ in range(2)]
    assert first[0] == first[1]
    many = [voice.jittered(np.random.default_rng(seed)) for seed in range(30)]
    rates = np.array([v.rate for v in many])
    pitches = np.array([v.pitch for v in many])
    assert np.all(np.abs(rates - voice.rate) <= 0.08 * voice.rate + 1)
    assert np.all(np.abs(pitches - voice.pitch) <= 6)
    assert len(set(rates)) > 5 and len(set(pitches)) > 5
    assert all((v.name, v.variant) == (voice.name, voice.variant) for v in many)


def test_concurrent_calls_give_the_same_results_as_serial_ones():
    voices = speech.VOICES[:4]
    serial = [speech.synthesize(TEXT, v).waveform for v in voices]
    results = [None] * len(voices)

    def run(index):
        results[index] = speech.synthesize(TEXT, voices[index]).waveform

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(voices))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for expected, got in zip(serial, results):
        np.testing.assert_array_equal(expected, got)


@pytest.mark.parametrize("text", ["", "   ", "...", "?"])
def test_nothing_to_say_is_refused(text):
    with pytest.raises(AutalkError, match="(no text|nothing to say)"):
        speech.synthesize(text)


def test_unknown_voices_and_bad_settings_are_refused():
    with pytest.raises(AutalkError, match="no voice named"):
        speech.synthesize(TEXT, speech.Voice("xx-nowhere"))
    with pytest.raises(AutalkError, match="no voice variant"):
        speech.synthesize(TEXT, speech.Voice("en-us", "robot9000"))
    with pytest.raises(AutalkError, match="rate"):
        speech.Voice("en-us", rate=10)
    with pytest.raises(AutalkError, match="pitch"):
        speech.Voice("en-us", pitch=101)
    with pytest.raises(AutalkError, match="zero or positive"):
        speech.synthesize(TEXT).padded(-0.1, 0)
