"""`keras_autalk.inference.generate`: photo + speech -> MP4, windows, frame rate, paste-back, AU CSV."""

import numpy as np
import pytest
import soundfile

import keras_autalk
from keras_autalk.config import AudioConfig
from keras_autalk.inference import generate as generation
from keras_autalk.inference import runtime, session
from keras_autalk.layers import receptive_field
from keras_autalk.media import au_labels, face, video
from keras_autalk.presets import pretrained
from tests.conftest import files_in
from tests.pretrained_helpers import perturbed_talker, speech_like

SECONDS = 2.0  # 50 frames at 25 fps


@pytest.fixture(scope="module")
def talker():
    return perturbed_talker(seed=1)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, talker):
    return pretrained.save_pretrained(talker, tmp_path_factory.mktemp("models") / "tiny")


@pytest.fixture(scope="module")
def speech_file(tmp_path_factory):
    # 44.1 kHz stereo: the model's 16 kHz mono is made from it, the video
    # carries it as it is.
    path = tmp_path_factory.mktemp("speech") / "speech.wav"
    soundfile.write(path, speech_like(SECONDS, 44100, channels=2), 44100)
    return path


@pytest.fixture(scope="module")
def aligned(grace_hopper):
    found = face.find_face(grace_hopper)
    return face.align_face(grace_hopper, found.landmarks)


@pytest.fixture(scope="module")
def generated(tmp_path_factory, photo_file_module, speech_file, model_dir):
    folder = tmp_path_factory.mktemp("out")
    result = keras_autalk.generate(
        photo_file_module,
        speech_file,
        folder / "talk.mp4",
        model=model_dir,
        au_csv=folder / "talk.csv",
        progress=False,
    )
    return result


@pytest.fixture(scope="module")
def photo_file_module(tmp_path_factory, grace_hopper):
    from PIL import Image

    path = tmp_path_factory.mktemp("photo") / "grace_hopper.png"
    Image.fromarray(grace_hopper).save(path)
    return path


def test_video_has_one_frame_per_25th_of_a_second_and_the_audio(generated, grace_hopper):
    info = video.video_info(generated.output)
    assert generated.num_frames == info.num_frames == round(SECONDS * 25) == 50
    assert info.fps == 25.0
    assert (info.width, info.height) == (grace_hopper.shape[1], grace_hopper.shape[0])
    assert info.has_audio and info.audio_codec == "aac"
    assert info.sample_rate == 44100 and info.channels == 2  # the original audio
    assert abs(info.duration - SECONDS) < 0.05
    assert generated.audio_seconds == pytest.approx(SECONDS, abs=1e-3)
    assert set(generated.timings) == set(generation.STAGES) | {"total"}


def test_only_the_face_changes(generated, grace_hopper, tmp_path):
    frames = video.read_video(generated.output).frames.astype(np.float64)
    left, top, right, bottom = generated.face_box
    outside = np.ones(grace_hopper.shape[:2], bool)
    # The pasted crop reaches beyond the detector's box; 60 % margin covers it.
    margin_x, margin_y = int(0.6 * (right - left)), int(0.6 * (bottom - top))
    outside[
        max(0, top - margin_y) : bottom + margin_y, max(0, left - margin_x) : right + margin_x
    ] = False
    photo = grace_hopper.astype(np.float64)
    # H.264 alone moves this grainy photo's pixels by about 2 levels: the
    # photo itself, encoded the same way, is the yardstick.
    static = tmp_path / "static.mp4"
    video.write_video(
        static, [grace_hopper] * 10, 25, crf=generation.VIDEO_CRF, preset=generation.VIDEO_PRESET
    )
    codec_error = np.abs(video.read_video(static).frames[:, outside] - photo[outside]).mean()
    background_error = np.abs(frames[:, outside] - photo[outside]).mean()
    mouth = (slice(top + (bottom - top) // 2, bottom), slice(left, right))
    mouth_change = np.abs(frames[(slice(None),) + mouth] - photo[mouth]).mean()
    assert background_error < 1.2 * codec_error
    assert mouth_change > 3 * codec_error


def test_au_csv_has_openface_columns_and_one_row_per_frame(generated):
    lines = generated.au_csv.read_text().splitlines()
    assert lines[0] == (
        "frame, timestamp, confidence, success, AU10_r, AU14_r, AU20_r, AU25_r, AU26_r"
    )
    assert len(lines) == 1 + generated.num_frames
    assert lines[2].startswith("2, 0.040, ")
    labels = au_labels.read_openface_csv(generated.au_csv, generated.action_units)
    np.testing.assert_allclose(labels.intensity, generated.au_intensity, atol=0.006)
    assert labels.mask.all()
    assert 0.0 <= generated.au_intensity.min() and generated.au_intensity.max() <= 5.0
    assert generated.au_intensity.std(axis=0).min() > 0  # the curves follow the audio


def test_other_frame_rates_resample_in_time(tmp_path, photo_file_module, speech_file, model_dir):
    result = generation.generate(
        photo_file_module,
        speech_file,
        tmp_path / "talk30.mp4",
        model=model_dir,
        fps=30,
        progress=False,
    )
    info = video.video_info(result.output)
    assert result.num_frames == info.num_frames == round(SECONDS * 30)
    assert info.fps == 30.0 and abs(info.duration - SECONDS) < 0.05


def test_resample_in_time_interpolates_linearly():
    frames = [
        (np.full((1, 1, 3), index, np.float32), np.array([index], np.float32))
        for index in range(10)
    ]
    # 25 -> 50 fps: output frame j is centred on input position j / 2 - 0.25.
    doubled = list(generation.resample_in_time(iter(frames), 10, 25.0, 50.0, 20))
    values = [float(au[0]) for _, au in doubled]
    assert values[:4] == [0.0, 0.25, 0.75, 1.25] and values[-1] == 9.0
    assert [float(crop[0, 0, 0]) for crop, _ in doubled] == values
    # 25 -> 10 fps: output frame j is centred on input position 2.5 j + 0.75.
    slower = [float(au[0]) for _, au in generation.resample_in_time(frames, 10, 25.0, 10.0, 4)]
    assert slower == [0.75, 3.25, 5.75, 8.25]


def test_window_plan_covers_the_clip_with_overlapping_equal_windows():
    assert generation.window_plan(50, 128, 16) == [(0, 50)]
    for num_frames in (129, 300, 7500):
        plan = generation.window_plan(num_frames, 128, 16)
        assert plan[0][0] == 0 and plan[-1][1] == num_frames
        assert len({end - start for start, end in plan}) == 1 and plan[0][1] <= 128
        assert all(nxt[0] <= end - 16 for (_, end), nxt in zip(plan, plan[1:]))
    assert len(generation.window_plan(7500, 128, 16)) == 67  # 5 minutes: bounded windows


def _features(waveform):
    from keras_autalk.features import log_mel

    return log_mel.audio_features(waveform)


def run_sequence(model, crop, features, **kwargs):
    pairs = list(generation.generate_sequence(model, crop, features, **kwargs))
    return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])


def test_windows_equal_one_pass_away_from_the_seams(aligned):
    # With the convolution-only fusion a frame sees `radius` frames either
    # side (Audio2AU's stack, then the fusion's), so every frame whose
    # context lies inside one window, and every crossfaded frame whose
    # context lies inside both, equals the single-pass result.
    model = perturbed_talker(seed=2, fusion="conv")
    config = model.model_config
    half = (receptive_field(config.fusion_kernel, config.fusion_dilations) - 1) // 2
    features = _features(speech_like(4.0, 16000, channels=1)[:, 0])  # 100 frames
    whole, whole_aus = run_sequence(model, aligned.crop, features, window_frames=100)
    parts, part_aus = run_sequence(
        model, aligned.crop, features, window_frames=40, overlap_frames=16
    )
    plan = generation.window_plan(100, 40, 16)
    assert len(plan) == 4

    def exact_frames(radius):
        exact = np.ones(100, bool)
        for (_, end), (start, _) in zip(plan, plan[1:]):
            exact[start : start + radius] = False
            exact[end - radius : end] = False
        return exact

    frames_exact = exact_frames(2 * half)  # Audio2AU's stack, then the fusion's
    aus_exact = exact_frames(half)  # Audio2AU's stack only
    np.testing.assert_allclose(parts[frames_exact], whole[frames_exact], atol=1e-4)
    np.testing.assert_allclose(part_aus[aus_exact], whole_aus[aus_exact], atol=1e-4)
    assert np.abs(parts[~frames_exact] - whole[~frames_exact]).max() > 1e-3  # seams differ


def test_articulation_zero_drives_with_zero_aus(aligned, talker):
    features = _features(speech_like(1.0, 16000, channels=1)[:, 0])
    still, still_aus = run_sequence(talker, aligned.crop, features, articulation=0.0)
    moving, _ = run_sequence(talker, aligned.crop, features, articulation=1.0)
    zero_aus = talker(
        {
            "identity_image": aligned.crop[None].astype(np.float32) / 255.0,
            "audio_features": features[None],
            "au_intensity": np.zeros((1, len(features), 5), np.float32),
        }
    )
    np.testing.assert_allclose(still, np.asarray(zero_aus["frames"])[0], atol=1e-5)
    assert not still_aus.any()
    assert np.abs(still - moving).max() > 0.01


def test_a_failure_while_writing_leaves_no_file(tmp_path, grace_hopper, speech_file):
    # The model fails on its second window, after the video has been started.
    model = perturbed_talker(seed=1)
    working = runtime.KerasRunner(model)._function
    calls = []

    def failing(inputs):
        calls.append(1)
        if len(calls) > 1:
            raise RuntimeError("out of memory")
        return working(inputs)

    object.__setattr__(model, "_autalk_generate_function", failing)
    with pytest.raises(RuntimeError, match="out of memory"):
        generation.generate(
            grace_hopper,
            speech_file,
            tmp_path / "talk.mp4",
            model=model,
            au_csv=tmp_path / "talk.csv",
            window_frames=20,
            overlap_frames=4,
            progress=False,
        )
    assert len(calls) == 2
    assert files_in(tmp_path) == []


def test_a_normalising_model_is_fed_normalised_features(tmp_path, grace_hopper):
    # A model trained with per-utterance normalisation keeps the setting through
    # save/load, and generate normalises the whole recording before the windows.
    from keras_autalk.features import log_mel

    talker = perturbed_talker(seed=2, audio_normalization="utterance")
    model_dir = pretrained.save_pretrained(talker, tmp_path / "normalising")
    assert pretrained.read_model_json(model_dir)["model_config"].audio_normalization == "utterance"
    speech = speech_like(SECONDS, 16000, channels=1)[:, 0]
    path = tmp_path / "speech.wav"
    soundfile.write(path, speech, 16000)
    result = generation.generate(
        grace_hopper, path, tmp_path / "talk.mp4", model=model_dir, progress=False
    )
    heard, _, _ = session.load_speech(path, AudioConfig())  # what the model hears
    features = log_mel.audio_features(heard)
    talker = pretrained.load_pretrained(model_dir)  # its float16-rounded weights
    expected = np.asarray(talker.audio2au(log_mel.normalize_features(features)[None]))[0]
    unnormalised = np.asarray(talker.audio2au(features[None]))[0]
    np.testing.assert_allclose(result.au_intensity, expected, atol=1e-3)
    assert np.abs(unnormalised - expected).max() > 0.05  # the check can fail


def test_a_flow_decoder_model_generates_through_the_motion_paste(
    tmp_path, grace_hopper, speech_file
):
    # An untrained flow decoder predicts no motion and a mostly closed
    # occlusion mask: the video is the photo, outside the lower face as
    # exactly as video coding allows, inside it within a few levels.
    import keras

    from keras_autalk.media import paste
    from tests.pretrained_helpers import tiny_config

    keras.utils.set_random_seed(3)
    talker = pretrained.build_inference_model(tiny_config(decoder="flow"))
    outputs = talker(
        {
            "identity_image": np.zeros((1, 128, 128, 3), "float32"),
            "audio_features": np.zeros(
                (1, 4, AudioConfig().context_steps, AudioConfig().num_mel_bins), "float32"
            ),
        }
    )
    assert outputs["flow"].shape[-1] == 2
    folder = pretrained.save_pretrained(talker, tmp_path / "flow")
    result = generation.generate(
        grace_hopper, speech_file, tmp_path / "flow.mp4", model=folder, progress=False
    )
    frames = video.read_video(result.output).frames
    mask = paste.lower_face_mask(grace_hopper.shape, face.find_face(grace_hopper).landmarks)
    height, width = grace_hopper.shape[:2]
    difference = np.abs(frames[:, :height, :width].astype(int) - grace_hopper.astype(int))
    assert frames.shape[0] == 50
    assert difference[:, mask > 0.5].mean() < 3.0
    assert np.median(difference[:, mask == 0]) <= 1
