"""The NumPy features: the TensorFlow features' values without importing TensorFlow."""

import pathlib
import subprocess
import sys

import numpy as np
import pytest

from keras_autalk.config import AudioConfig
from keras_autalk.features import log_mel, numpy_features
from keras_autalk.media import audio
from tests.audio_helpers import CONFIG, SILENCE, speech_like

DEMO_SPEECH = (
    pathlib.Path(__file__).resolve().parents[2] / "keras_autalk" / "assets" / "demo_speech.flac"
)
# Log-mel units (nepers). The TensorFlow FFT runs in float32 and the NumPy one in
# float64; on the demo speech they differ by at most 2e-4, in the quietest bins.
TOLERANCE = 1e-3


@pytest.fixture(scope="module")
def demo_speech():
    return audio.load_speech(DEMO_SPEECH)


def assert_same_features(numpy_values, tensorflow_values):
    tensorflow_values = np.asarray(tensorflow_values)
    assert numpy_values.shape == tensorflow_values.shape
    assert numpy_values.dtype == np.float32
    np.testing.assert_allclose(numpy_values, tensorflow_values, rtol=0, atol=TOLERANCE)


@pytest.mark.parametrize(
    "config", [CONFIG, AudioConfig(fps=30.0, context_steps=9, num_mel_bins=40)]
)
def test_spectrogram_of_real_speech_equals_tensorflow(demo_speech, config):
    assert_same_features(
        numpy_features.log_mel_spectrogram(demo_speech, config),
        log_mel.log_mel_spectrogram(demo_speech, config),
    )


@pytest.mark.parametrize("normalization", ["none", "utterance"])
@pytest.mark.parametrize(
    "config", [CONFIG, AudioConfig(fps=30.0, context_steps=9, num_mel_bins=40)]
)
def test_features_of_real_speech_equal_tensorflow(demo_speech, config, normalization):
    features = numpy_features.audio_features(demo_speech, config, normalization=normalization)

    assert_same_features(
        features, log_mel.audio_features(demo_speech, config, normalization=normalization)
    )
    assert features.shape[0] == audio.num_video_frames(demo_speech.size, config)


@pytest.mark.parametrize("normalization", ["none", "utterance"])
@pytest.mark.parametrize(
    "waveform, num_frames",
    [
        (speech_like(0.01, CONFIG.sample_rate), None),  # 160 samples: less than a window
        (np.float32([0.5]), None),
        (np.zeros(0, np.float32), None),
        (speech_like(0.5, CONFIG.sample_rate), 40),  # 15 frames past the audio's end
        (speech_like(1.0, CONFIG.sample_rate), 3),  # fewer frames than the audio
        (np.zeros(CONFIG.sample_rate, np.float32), None),  # digital silence
    ],
    ids=[
        "shorter_than_a_window",
        "one_sample",
        "empty",
        "frames_past_the_end",
        "fewer_frames",
        "silence",
    ],
)
def test_edge_cases_equal_tensorflow(waveform, num_frames, normalization):
    assert_same_features(
        numpy_features.audio_features(waveform, num_frames=num_frames, normalization=normalization),
        log_mel.audio_features(waveform, num_frames=num_frames, normalization=normalization),
    )


def test_windows_past_the_end_of_the_audio_are_silent():
    features = numpy_features.audio_features(speech_like(0.5, CONFIG.sample_rate), num_frames=40)

    # 0.5 s is 51 steps; frame 15's window (steps 52..71) lies wholly past them.
    np.testing.assert_array_equal(features[15:], np.float32(SILENCE))
    assert features[:12, CONFIG.context_steps // 2].mean() > SILENCE + 5


def test_batched_spectrogram_equals_one_by_one():
    batch = np.stack([speech_like(0.7, CONFIG.sample_rate, seed) for seed in (1, 2)])

    together = numpy_features.log_mel_spectrogram(batch)

    for row, waveform in zip(together, batch):
        np.testing.assert_array_equal(row, numpy_features.log_mel_spectrogram(waveform))


def test_batched_normalisation_treats_each_utterance_on_its_own():
    features = numpy_features.audio_features(speech_like(1.0, CONFIG.sample_rate))
    batch = np.stack([features, features + 2.0])

    normalised = numpy_features.normalize_features(batch)

    assert_same_features(normalised, log_mel.normalize_features(batch))
    np.testing.assert_allclose(normalised[0], normalised[1], atol=1e-5)


def test_unknown_normalisation_is_refused_by_both_implementations():
    features = numpy_features.audio_features(speech_like(0.5, CONFIG.sample_rate))
    message = "Unknown audio normalization 'cmvn'; choose one of none, utterance."

    with pytest.raises(ValueError, match=message):
        numpy_features.normalize_features(features, "cmvn")
    with pytest.raises(ValueError, match=message):
        numpy_features.audio_features(np.zeros(800, np.float32), normalization="cmvn")
    with pytest.raises(ValueError, match=message):
        log_mel.check_normalization("cmvn")
    numpy_features.check_normalization("utterance")  # accepted


def test_waveform_must_be_one_dimensional():
    with pytest.raises(ValueError, match=r"Expected a 1-D waveform, got shape \(2, 800\)"):
        numpy_features.audio_features(np.zeros((2, 800), np.float32))


def test_importing_and_computing_the_features_loads_no_tensorflow():
    script = (
        "import sys, numpy as np\n"
        "from keras_autalk.features import numpy_features\n"
        "waveform = np.ones(1600, np.float32)\n"
        "numpy_features.audio_features(waveform, normalization='utterance')\n"
        "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=pathlib.Path(__file__).resolve().parents[2],
        check=False,
    )
    assert result.returncode == 0, result.stderr
