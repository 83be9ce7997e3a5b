"""The real-speech benchmark: its measures, its tracks, and `autalk evaluate --real-speech`."""

import json
import math

import numpy as np
import pytest
import soundfile

from keras_autalk.corpora import klettres
from keras_autalk.errors import AutalkError
from keras_autalk.evaluation import lip_sync, real_speech, speech_tracks
from keras_autalk.inference import generate
from tests.test_cli import assert_one_sentence_error, run

RATE = 16000


def face_landmarks(gap=2.0, eye_distance=10.0, scale=1.0, shift=(0.0, 0.0)):
    """68 points with the eye centres `eye_distance` apart and every inner-lip pair `gap` apart."""
    points = np.zeros((68, 2))
    points[36:42] = [0.0, 0.0]
    points[42:48] = [eye_distance, 0.0]
    for upper, lower in lip_sync.INNER_LIP_PAIRS:
        points[upper] = [upper - 60.0, 8.0]
        points[lower] = [upper - 60.0, 8.0 + gap]
    return points * scale + np.asarray(shift)


def smooth_noise(length, seed):
    rng = np.random.default_rng(seed)
    return np.convolve(rng.normal(size=length + 8), np.ones(5) / 5, mode="valid")[:length]


def test_lip_opening_is_the_inner_lip_gap_over_the_eye_distance():
    assert lip_sync.lip_opening(face_landmarks(gap=2.0, eye_distance=10.0)) == pytest.approx(0.2)
    # The size and place of the face in the frame do not matter.
    assert lip_sync.lip_opening(
        face_landmarks(2.0, 10.0, scale=3.5, shift=(40, -7))
    ) == pytest.approx(0.2)
    closed_then_open = np.stack([face_landmarks(gap=0.0), face_landmarks(gap=5.0)])
    np.testing.assert_allclose(lip_sync.lip_opening(closed_then_open), [0.0, 0.5])


def test_rms_envelope_and_frame_labels_follow_the_frames():
    waveform = np.concatenate([np.full(640, 0.5), -np.full(640, 0.25), np.zeros(320)])
    np.testing.assert_allclose(
        lip_sync.rms_envelope(waveform, 4, RATE, 25), [0.5, 0.25, 0.0, 0.0]
    )  # frame 3 lies past the audio
    labels = np.zeros(1600, bool)
    labels[640:1000] = True  # 360 of frame 1's 640 samples: more than half
    assert list(lip_sync.frame_labels(labels, 3, RATE, 25)) == [False, True, False]


def test_segment_labels_mark_the_words_not_the_silences():
    segments = [
        (0.0, 0.2, "sil"),
        (0.2, 0.4, "bin"),
        (0.4, 0.48, "sp"),
        (0.48, 0.6, "blue"),
        (0.6, 0.8, "sil"),
    ]
    labels = lip_sync.segment_labels(segments, 0.8, 25)
    assert len(labels) == 20
    assert list(np.flatnonzero(labels)) == [5, 6, 7, 8, 9, 12, 13, 14]


def test_pause_ratio_is_zero_when_the_mouth_opens_only_in_speech():
    speech = np.tile(np.repeat([False, True], 20), 5)
    opening = np.where(speech, 0.3, 0.05)
    assert lip_sync.pause_ratio(opening, speech) == 0.0


def test_pause_ratio_is_about_one_for_a_face_that_ignores_the_pauses(rng):
    speech = np.tile(np.repeat([False, True], 20), 50)
    opening = 0.2 + rng.normal(scale=0.01, size=speech.size)
    assert lip_sync.pause_ratio(opening, speech) == pytest.approx(1.0, abs=0.1)
    # Closed at rest now and then, half as open in pauses as in speech: a half.
    half = np.where(speech, 0.3, 0.2)
    half[::10] = 0.1
    assert lip_sync.pause_ratio(half, speech) == pytest.approx(0.5, abs=0.02)
    assert math.isnan(lip_sync.pause_ratio(opening, np.ones(speech.size, bool)))


@pytest.mark.parametrize("shift", [3, -4, 0])
def test_lag_recovers_a_known_shift_of_either_sign(shift):
    envelope = smooth_noise(300, seed=abs(shift))
    # opening[t] = envelope[t - shift]: the mouth trails the audio by `shift` frames.
    opening = np.roll(envelope, shift)
    assert lip_sync.lag_frames(opening, envelope) == shift


def test_trim_recording_keeps_only_the_sound():
    tone = 0.5 * np.sin(2 * np.pi * 220 * np.arange(4800) / RATE + 0.3)
    padded = np.concatenate([1e-4 * np.ones(1920), tone, np.zeros(1280)])
    np.testing.assert_array_equal(speech_tracks.trim_recording(padded, RATE), tone)


@pytest.fixture(scope="module")
def tone_recordings(tmp_path_factory):
    """Four recordings: tones of 0.3-0.9 s with silence around them."""
    folder = tmp_path_factory.mktemp("tones")
    paths = []
    for index, seconds in enumerate((0.3, 0.5, 0.7, 0.9)):
        time = np.arange(int(seconds * RATE)) / RATE
        tone = 0.3 * np.sin(2 * np.pi * (200 + 50 * index) * time + 0.1) + 0.05
        waveform = np.concatenate([np.zeros(3200), tone, np.zeros(4000)])
        paths.append(folder / f"tone{index}.wav")
        soundfile.write(paths[-1], waveform, RATE)
    return paths


def runs(labels):
    """`(value, length)` of each run of equal values."""
    edges = np.flatnonzero(np.diff(labels.astype(int))) + 1
    return [(bool(part[0]), len(part)) for part in np.split(labels, edges)]


def test_build_track_joins_recordings_with_seeded_pauses(tone_recordings):
    track = speech_tracks.build_track(tone_recordings, seed=5, duration_s=6.0)
    assert track.sample_rate == RATE and track.duration >= 6.0
    assert track.speech.shape == track.waveform.shape
    pieces = runs(track.speech)
    assert not pieces[0][0] and not pieces[-1][0]  # starts and ends with a pause
    pauses = [length for speaking, length in pieces if not speaking]
    assert len(pauses) == len(track.recordings) + 1 >= 6
    assert all(0.4 * RATE <= length <= 0.8 * RATE for length in pauses)
    assert np.ptp(pauses) > 0.05 * RATE  # the pauses differ
    # The labels are the waveform's zero regions: pauses are silent, speech is not.
    assert not track.waveform[~track.speech].any()
    assert np.mean(track.waveform[track.speech] != 0) > 0.99
    # Every recording, trimmed of its silence, at -20 dBFS RMS.
    speech_lengths = [length for speaking, length in pieces if speaking]
    assert all(length <= 0.9 * RATE + 320 for length in speech_lengths)
    start = pieces[0][1]
    first = track.waveform[start : start + speech_lengths[0]]
    assert 20 * np.log10(np.sqrt(np.mean(first.astype(np.float64) ** 2))) == pytest.approx(
        -20.0, abs=0.01
    )
    same = speech_tracks.build_track(tone_recordings, seed=5, duration_s=6.0)
    np.testing.assert_array_equal(same.waveform, track.waveform)
    other = speech_tracks.build_track(tone_recordings, seed=6, duration_s=6.0)
    assert other.recordings != track.recordings or len(other.waveform) != len(track.waveform)


def test_build_track_needs_a_recording():
    with pytest.raises(AutalkError, match="at least one recording"):
        speech_tracks.build_track([], seed=0)


def synthetic_track(waveform, speech=None):
    """A `Track` of `waveform` at 16 kHz, all speech unless `speech` says otherwise."""
    waveform = np.asarray(waveform, np.float32)
    speech = np.ones(len(waveform), bool) if speech is None else np.asarray(speech, bool)
    return speech_tracks.Track(waveform, RATE, speech, [])


def band_energy(waveform, low, high):
    """The fraction of `waveform`'s energy between `low` and `high` Hz (Hann window)."""
    waveform = np.asarray(waveform, np.float64)
    power = np.abs(np.fft.rfft(waveform * np.hanning(len(waveform)))) ** 2
    frequency = np.fft.rfftfreq(len(waveform), 1.0 / RATE)
    return float(power[(frequency >= low) & (frequency < high)].sum() / power.sum())


def level_db(samples):
    return 10 * np.log10(np.mean(np.asarray(samples, np.float64) ** 2))


def test_clean_is_the_track_itself_and_unknown_conditions_are_named(rng):
    track = synthetic_track(0.1 * rng.normal(size=RATE))
    clean = speech_tracks.apply_condition(track, "clean", seed=3)
    assert clean.dtype == np.float32
    np.testing.assert_array_equal(clean, track.waveform)
    with pytest.raises(
        AutalkError, match="'loud' is unknown; the conditions are clean, phone, noisy and reverb"
    ):
        speech_tracks.apply_condition(track, "loud", seed=0)
    assert speech_tracks.check_conditions(["phone", "clean"]) == ("phone", "clean")
    with pytest.raises(AutalkError, match="'noisy' is given twice"):
        speech_tracks.check_conditions(["noisy", "clean", "noisy"])
    with pytest.raises(AutalkError, match="at least one condition"):
        speech_tracks.check_conditions([])


def test_phone_keeps_only_the_phone_band(rng):
    white = synthetic_track(0.1 * rng.normal(size=2 * RATE))
    assert band_energy(white.waveform, 4000, RATE) > 0.45  # white: half above 4 kHz
    assert band_energy(white.waveform, 0, 300) > 0.03
    phone = speech_tracks.apply_condition(white, "phone", seed=0)
    assert phone.dtype == np.float32 and phone.shape == white.waveform.shape
    assert band_energy(phone, 0, 4000) > 0.99
    assert band_energy(phone, 4100, RATE) < 1e-4
    assert band_energy(phone, 0, 300) < 0.005  # the high-pass: mostly gone
    assert band_energy(phone, 0, 200) < 1e-4
    # A 1 kHz tone, well inside the band, keeps its level (and its shape).
    time = np.arange(RATE) / RATE
    tone = synthetic_track(0.5 * np.sin(2 * np.pi * 1000 * time))
    passed = speech_tracks.apply_condition(tone, "phone", seed=0)
    middle = slice(2000, -2000)  # away from the filter's start and end
    assert level_db(passed[middle]) == pytest.approx(level_db(tone.waveform[middle]), abs=0.2)
    assert np.max(np.abs(passed[middle] - tone.waveform[middle])) < 0.02


def test_noisy_adds_pink_noise_at_10_db_snr_on_the_speech(rng):
    # Speech in the middle second only; digital silence around it.
    speech = np.zeros(3 * RATE, bool)
    speech[RATE : 2 * RATE] = True
    waveform = np.where(speech, 0.1 * np.sin(np.arange(3 * RATE) / 4.0), 0.0)
    track = synthetic_track(waveform, speech)
    noisy = speech_tracks.apply_condition(track, "noisy", seed=7)
    noise = noisy.astype(np.float64) - track.waveform
    snr = level_db(track.waveform[speech]) - level_db(noise[speech])
    assert snr == pytest.approx(10.0, abs=0.5)
    # The noise is there in the pauses too, at the same level (stationary).
    assert level_db(noise[~speech]) == pytest.approx(level_db(noise[speech]), abs=1.0)
    # Pink-ish: far more energy per hertz at the bottom than at the top.
    assert band_energy(noise, 0, 1000) / 1000 > 20 * band_energy(noise, 6000, 8000) / 2000
    np.testing.assert_array_equal(speech_tracks.apply_condition(track, "noisy", seed=7), noisy)
    assert not np.allclose(speech_tracks.apply_condition(track, "noisy", seed=8), noisy)


def test_reverb_turns_a_click_into_a_tail_60_db_down_after_half_a_second():
    click = np.zeros(2 * RATE, np.float32)
    click[RATE // 2] = 0.5
    wet = speech_tracks.apply_condition(synthetic_track(click), "reverb", seed=1)
    assert wet.shape == click.shape and wet.dtype == np.float32
    before, after = wet[: RATE // 2], wet[RATE // 2 + 1 :]
    assert np.max(np.abs(before)) < 1e-6  # nothing before the click
    assert wet[RATE // 2] == pytest.approx(0.5, abs=1e-5)  # the direct sound

    def block(seconds):  # the tail's level over 20 ms from `seconds` after the click
        start = int(seconds * RATE)
        return level_db(after[start : start + 320])

    assert block(0.1) > block(0.0) - 20  # it rings on ...
    assert block(0.49) - block(0.0) == pytest.approx(-60.0, abs=5.0)  # ... and dies away
    assert np.max(np.abs(after[int(0.61 * RATE) :])) < 1e-6
    np.testing.assert_array_equal(
        speech_tracks.apply_condition(synthetic_track(click), "reverb", seed=1), wet
    )
    assert not np.allclose(
        speech_tracks.apply_condition(synthetic_track(click), "reverb", seed=2), wet
    )


def test_conditions_stay_within_full_scale_by_scaling_down():
    time = np.arange(RATE) / RATE
    loud = synthetic_track(0.99 * np.sign(np.sin(2 * np.pi * 200 * time)))
    for name in ("reverb", "noisy"):  # both raise the peak past 1
        changed = speech_tracks.apply_condition(loud, name, seed=0)
        peak = np.max(np.abs(changed))
        assert peak == pytest.approx(1.0, abs=1e-6), name  # scaled down to 1, not clipped
        assert np.mean(np.abs(changed) >= 1.0 - 1e-6) < 0.001, name
    assert np.max(np.abs(speech_tracks.apply_condition(loud, "phone", seed=0))) <= 1.0


def test_targets_and_tables():
    assert (
        real_speech.missed_targets({"corr": 0.6, "pause_ratio": 0.4, "lag": -1.0, "identity": 0.39})
        == []
    )
    assert real_speech.missed_targets(
        {"corr": 0.59, "pause_ratio": None, "lag": 1.5, "identity": 0.4}
    ) == [text for _, text in real_speech.TARGETS.values()]
    means = {"corr": 0.7, "pause_ratio": 0.3, "lag": 0.0, "identity": 0.2}
    report = {
        "command": "autalk evaluate --real-speech -o out",
        "settings": {
            "duration_s": 15.0,
            "tracks_per_language": 2,
            "seed": 0,
            "pause_range_s": [0.4, 0.8],
            "conditions": ["clean", "phone"],
        },
        "photos": [{"name": "grace_hopper"}, {"name": "astronaut"}],
        "english": ["en"],
        "means": [
            {
                "model": "m",
                "photo": photo,
                "language": language,
                "condition": condition,
                "tracks": 2,
                **means,
            }
            for photo in ("grace_hopper", "astronaut")
            for language in ("en", "fr")
            for condition in ("clean", "phone")
        ],
        "language_means": [
            {"model": "m", "language": "en", "condition": condition, "tracks": 2, **means}
            for condition in ("clean", "phone")
        ],
        "reference": {"utterances": 3, "mean": {**means, "identity": None}},
    }
    text = real_speech.benchmark_markdown(report)
    assert "`autalk evaluate --real-speech -o out`" in text and "seeds 0-1" in text
    assert "### Photo: grace_hopper (matplotlib's grace_hopper, the bundled photo)" in text
    assert "| model | language | condition | tracks |" in text
    assert "phone: 8 kHz phone audio" in text and "noisy:" not in text
    # Only the clean English rows are judged, in each photo's table.
    assert text.count("| m | en | clean | 2 | 0.70 | 0.30 | +0.0 | 0.200 | met |") == 2
    assert text.count("| m | en | phone | 2 | 0.70 | 0.30 | +0.0 | 0.200 |  |") == 2
    assert text.count("| m | fr | clean | 2 | 0.70 | 0.30 | +0.0 | 0.200 |  |") == 2
    assert "| m | en | phone | 2 | 0.70 | 0.30 | +0.0 | 0.200 |\n" in text  # per language
    assert "judges the clean English rows only" in text
    assert text.count("| ground truth (demo corpus) | en (espeak-ng) | clean | 3 videos |") == 3
    # Every table row has as many cells as its header.
    for block in text.split("\n\n"):
        rows = [row for row in block.splitlines() if row.startswith("|")]
        assert len({row.count("|") for row in rows}) <= 1, block


def test_reference_videos_take_each_held_out_speaker_in_turn(prepared, tmp_path):
    corpus = prepared.parent / "corpus"
    manifest = json.loads((corpus / "demo_corpus.json").read_text())
    test = [(u["speaker"], u["id"]) for u in manifest["utterances"] if u["split"] == "test"]
    speakers = list(dict.fromkeys(speaker for speaker, _ in test))
    assert 1 < len(speakers) < len(test)
    chosen = real_speech.reference_videos(corpus, len(speakers) + 1)
    firsts = [next(t for t in test if t[0] == speaker) for speaker in speakers]
    seconds = [t for t in test if t not in firsts]
    assert [(entry["speaker"], entry["utterance_id"]) for entry in chosen] == firsts + seconds[:1]
    assert all(entry["video"].is_file() and entry["align"].is_file() for entry in chosen)
    assert len(real_speech.reference_videos(corpus, 100)) == len(test)
    with pytest.raises(AutalkError, match="no demo_corpus.json"):
        real_speech.reference_videos(tmp_path, 3)


@pytest.mark.slow
def test_real_track_end_to_end(klettres_folder, grace_hopper, tmp_path):
    track = speech_tracks.build_track(
        klettres.list_recordings(klettres_folder, "en"), seed=0, duration_s=3.0
    )
    wav = tmp_path / "track.wav"
    soundfile.write(wav, track.waveform, track.sample_rate)
    mp4 = tmp_path / "track.mp4"
    generate.generate(grace_hopper, wav, mp4, model="demo", progress=False)
    result = lip_sync.measure_video(mp4, speech_samples=track.speech, photo=grace_hopper)
    assert result["frames"] == math.ceil(track.duration * 25 - 1e-9)
    for key in ("corr", "pause_ratio", "identity"):
        assert math.isfinite(result[key]), key
    assert abs(result["lag"]) <= 10
    assert result["identity"] < 0.6
    assert np.std(result["opening"]) > 0
    assert result["opening"].shape == result["envelope"].shape == (result["frames"],)


@pytest.mark.slow
def test_evaluate_real_speech_cli_writes_the_tables(klettres_folder, prepared, tmp_path, capsys):
    out = tmp_path / "rs"
    status, stdout, stderr = run(
        capsys,
        "evaluate",
        "--real-speech",
        "--model",
        "bundled=demo",
        "--photo",
        "grace_hopper",
        "--language",
        "en",
        "--duration",
        "2",
        "--condition",
        "clean",
        "--condition",
        "phone",
        "--reference-corpus",
        str(prepared.parent / "corpus"),
        "--reference-utterances",
        "2",
        "-o",
        str(out),
    )
    assert status == 0, stderr
    assert "[1/2] bundled / grace_hopper / en seed 0 clean" in stderr
    assert "[2/2] bundled / grace_hopper / en seed 0 phone" in stderr
    report = json.loads((out / "real_speech.json").read_text())
    assert [
        (row["model"], row["photo"], row["language"], row["seed"], row["condition"])
        for row in report["rows"]
    ] == [
        ("bundled", "grace_hopper", "en", 0, "clean"),
        ("bundled", "grace_hopper", "en", 0, "phone"),
    ]
    for row in report["rows"]:
        assert row["frames"] >= 50 and all(row[key] is not None for key in ("corr", "identity"))
    assert report["settings"]["conditions"] == ["clean", "phone"]
    assert report["reference"]["utterances"] == 2
    assert report["reference"]["mean"]["corr"] is not None
    assert report["english"] == ["en"]
    clean, _ = soundfile.read(out / "tracks" / "en_seed0.wav")
    phone, _ = soundfile.read(out / "tracks" / "en_seed0_phone.wav")
    assert clean.shape == phone.shape and band_energy(phone, 4100, RATE) < 1e-4 < band_energy(
        clean, 4100, RATE
    )
    assert not (out / "videos").exists()  # the MP4s are deleted after measuring
    table = (out / "real_speech.md").read_text()
    assert table in stdout
    assert "--model bundled=demo --photo grace_hopper --language en" in table
    assert "--condition clean --condition phone" in table
    assert "| bundled | en | clean | 1 |" in table and "| bundled | en | phone | 1 |" in table
    assert "| ground truth (demo corpus) |" in table


@pytest.mark.parametrize(
    "case",
    ["prepared", "photo_only", "no_corpus", "bad_photo", "no_tracks", "no_prepared", "twice"],
)
def test_evaluate_real_speech_bad_input_is_one_sentence(case, tmp_path, capsys):
    argv = ["evaluate", "--real-speech", "--language", "en", "-o", str(tmp_path / "rs")]
    expected = {
        "prepared": (["--prepared", str(tmp_path)], "does not apply to --real-speech"),
        "photo_only": (["--photo", "astronaut"], "applies only with --real-speech"),
        "no_corpus": (["--reference-corpus", str(tmp_path)], "no demo_corpus.json"),
        "bad_photo": (["--photo", "nobody"], "neither a bundled photo"),
        "no_tracks": (["--tracks", "0"], "at least 1"),
        "no_prepared": ([], "needs --prepared"),
        "twice": (["--language", "en"], "given twice"),
    }
    extra, message = expected[case]
    if case in ("photo_only", "no_prepared"):
        argv = ["evaluate", "-o", str(tmp_path / "rs")]
    status, _, stderr = run(capsys, *argv, *extra)
    assert_one_sentence_error(status, stderr)
    assert message in stderr
    assert not (tmp_path / "rs").exists()


def test_an_unknown_condition_lists_the_conditions(tmp_path, capsys):
    status, _, stderr = run(
        capsys,
        "evaluate",
        "--real-speech",
        "--language",
        "en",
        "--condition",
        "clean",
        "--condition",
        "underwater",
        "-o",
        str(tmp_path / "rs"),
    )
    assert_one_sentence_error(status, stderr)
    assert "'underwater' is unknown; the conditions are clean, phone, noisy and reverb" in stderr
    assert not (tmp_path / "rs").exists()


def test_an_unknown_language_lists_the_languages(klettres_folder, tmp_path, capsys):
    status, _, stderr = run(
        capsys, "evaluate", "--real-speech", "--language", "xx", "-o", str(tmp_path / "rs")
    )
    assert_one_sentence_error(status, stderr)
    assert "the languages are" in stderr and "en_GB" in stderr
    assert not (tmp_path / "rs").exists()
