"""Tests for keras_autalk.media.video: reading MPG/MP4/AVI, writing MP4."""

import numpy as np
import pytest

from keras_autalk.errors import AutalkError, InputFileError
from keras_autalk.media import ffmpeg
from keras_autalk.media.video import (
    VideoClip,
    iter_frames,
    read_audio_track,
    read_video,
    video_info,
    write_region_video,
    write_video,
)

FPS = 25
NUM_FRAMES = 50
SIZE = 128
SAMPLE_RATE = 16000
TONE_HZ = 440.0


def moving_square_frames(num_frames=NUM_FRAMES, height=SIZE, width=SIZE):
    """A smooth colour gradient with a bright square moving across it."""
    rows, cols = np.mgrid[:height, :width]
    background = np.stack(
        [60 + rows * 100 // height, 80 + cols * 120 // width, np.full_like(rows, 140)], axis=-1
    ).astype(np.uint8)
    frames = np.repeat(background[None], num_frames, axis=0)
    for index in range(num_frames):
        top = 16 + (index * 2) % (height // 2)
        left = 8 + index % (width // 2)
        frames[index, top : top + 24, left : left + 24] = (230, 220, 200)
    return frames


def tone(duration_s, sample_rate=SAMPLE_RATE, frequency=TONE_HZ):
    times = np.arange(int(round(duration_s * sample_rate))) / sample_rate
    return (0.4 * np.sin(2 * np.pi * frequency * times)).astype(np.float32)


def psnr(reference, test):
    error = np.mean((reference.astype(np.float64) - test.astype(np.float64)) ** 2)
    return 10 * np.log10(255.0**2 / error)


def make_with_ffmpeg(path, video_args, audio_args=None, size="160x120", seconds=2):
    """Render a test pattern (and a tone) with the bundled ffmpeg."""
    arguments = ["-y", "-f", "lavfi", "-i", f"testsrc=size={size}:rate={FPS}"]
    if audio_args is not None:
        arguments += ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100"]
    arguments += ["-t", str(seconds), *video_args]
    arguments += list(audio_args) if audio_args is not None else ["-an"]
    ffmpeg.run_ffmpeg(arguments + [str(path)])
    return path


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """A 50-frame 128x128 clip with a 2 s tone, written by `write_video`."""
    path = tmp_path_factory.mktemp("written") / "clip.mp4"
    frames = moving_square_frames()
    count = write_video(path, frames, FPS, audio=tone(2.0), sample_rate=SAMPLE_RATE)
    assert count == NUM_FRAMES
    return path, frames


def test_written_clip_reads_back_with_frame_count_fps_and_size(written):
    path, _ = written
    clip = read_video(path)
    assert isinstance(clip, VideoClip)
    assert clip.frames.shape == (NUM_FRAMES, SIZE, SIZE, 3)
    assert clip.frames.dtype == np.uint8
    assert clip.fps == FPS
    assert clip.sample_rate == SAMPLE_RATE


def test_written_clip_is_h264_yuv420p_with_aac(written):
    path, _ = written
    info = video_info(path)
    assert (info.video_codec, info.pix_fmt, info.audio_codec) == ("h264", "yuv420p", "aac")
    assert (info.width, info.height) == (SIZE, SIZE)
    assert (info.fps, info.num_frames) == (FPS, NUM_FRAMES)
    assert info.has_audio and info.channels == 1


def test_written_mp4_is_faststart(written):
    # The index ('moov') precedes the media data so players start at once.
    data = written[0].read_bytes()
    assert 0 <= data.find(b"moov") < data.find(b"mdat")


def test_written_pixels_are_preserved(written):
    path, frames = written
    assert psnr(frames, read_video(path).frames) > 30.0


def test_saturated_colours_are_preserved(tmp_path):
    # Saturated colours are where a channel-order, colour-matrix or range
    # mismatch between writing and reading shows (tens of levels off).
    colours = np.random.default_rng(0).integers(0, 256, (4, 4, 3)).astype(np.uint8)
    frames = np.repeat(np.repeat(colours, 32, axis=0), 32, axis=1)[None].repeat(3, axis=0)
    path = tmp_path / "colours.mp4"
    write_video(path, frames, FPS)
    decoded = read_video(path).frames.astype(int)
    for row in range(4):
        for col in range(4):
            block = decoded[:, row * 32 + 8 : row * 32 + 24, col * 32 + 8 : col * 32 + 24]
            assert np.abs(block - colours[row, col].astype(int)).max() <= 8


def test_written_audio_is_the_tone(written):
    samples, rate = read_audio_track(written[0], sample_rate=SAMPLE_RATE)
    middle = samples[rate // 2 : rate // 2 + rate]  # 1 s away from the edges
    spectrum = np.abs(np.fft.rfft(middle))
    assert np.argmax(spectrum) * rate / len(middle) == pytest.approx(TONE_HZ, abs=2.0)


@pytest.mark.parametrize("audio_seconds", [0.3, 2.0, 3.7])
def test_audio_duration_matches_video_within_one_frame(tmp_path, audio_seconds):
    # Short audio is padded with silence, long audio trimmed; the frames come
    # from a generator, so the frame count is known only at the end.
    path = tmp_path / "fit.mp4"
    frames = (frame for frame in moving_square_frames())
    write_video(path, frames, FPS, audio=tone(audio_seconds), sample_rate=SAMPLE_RATE)
    samples, rate = read_audio_track(path, sample_rate=SAMPLE_RATE)
    assert abs(len(samples) / rate - NUM_FRAMES / FPS) <= 1.0 / FPS
    assert video_info(path).num_frames == NUM_FRAMES


def test_odd_frame_size_is_padded_to_even(tmp_path):
    frames = moving_square_frames(num_frames=5, height=67, width=45)
    path = tmp_path / "odd.mp4"
    write_video(path, frames, FPS)
    clip = read_video(path)
    assert clip.frames.shape == (5, 68, 46, 3)
    assert psnr(frames, clip.frames[:, :67, :45]) > 30.0
    assert clip.audio is None


def test_reads_grid_style_mpg_with_audio(tmp_path):
    path = make_with_ffmpeg(
        tmp_path / "bbaf2n.mpg", ["-c:v", "mpeg1video", "-q:v", "2"], ["-c:a", "mp2"]
    )
    clip = read_video(path, sample_rate=SAMPLE_RATE)
    assert clip.frames.shape == (50, 120, 160, 3)
    assert clip.fps == FPS
    assert clip.sample_rate == SAMPLE_RATE
    assert abs(len(clip.audio) / SAMPLE_RATE - 2.0) <= 1.0 / FPS
    assert video_info(path).video_codec == "mpeg1video"


@pytest.mark.parametrize("codec", ["mjpeg", "mpeg4"])
def test_reads_avi_with_pcm_audio(tmp_path, codec):
    path = make_with_ffmpeg(
        tmp_path / f"{codec}.avi", ["-c:v", codec], ["-c:a", "pcm_s16le", "-ar", "16000"]
    )
    clip = read_video(path)
    assert clip.frames.shape == (50, 120, 160, 3)
    assert clip.fps == FPS
    assert len(clip.audio) == 32000


def test_iter_frames_streams_the_same_frames(written):
    path, _ = written
    streamed = list(iter_frames(path))
    assert len(streamed) == NUM_FRAMES
    np.testing.assert_array_equal(np.stack(streamed), read_video(path).frames)


def test_max_frames_cuts_frames_and_audio(written):
    clip = read_video(written[0], max_frames=10)
    assert clip.num_frames == 10
    assert len(clip.audio) == 10 * SAMPLE_RATE // FPS


def test_stopping_iteration_early_is_clean(written):
    frames = iter_frames(written[0])
    first = next(frames)
    frames.close()  # must end the decoder without an error
    assert first.shape == (SIZE, SIZE, 3)


def test_display_rotation_is_applied(tmp_path):
    plain = make_with_ffmpeg(
        tmp_path / "plain.mp4", ["-c:v", "libx264"], size="160x96", seconds=0.2
    )
    rotated = tmp_path / "rotated.mp4"
    ffmpeg.run_ffmpeg(
        ["-y", "-display_rotation", "90", "-i", str(plain), "-c", "copy", str(rotated)]
    )
    info = video_info(rotated)
    assert (info.width, info.height, info.rotation) == (96, 160, 90.0)
    assert read_video(rotated).frames.shape[1:] == (160, 96, 3)


def test_video_without_audio_reads_frames_but_not_audio(tmp_path):
    path = make_with_ffmpeg(tmp_path / "silent.avi", ["-c:v", "mpeg4"])
    clip = read_video(path)
    assert clip.num_frames == 50 and clip.audio is None
    assert not video_info(path).has_audio
    with pytest.raises(InputFileError, match="has no audio track"):
        read_audio_track(path)


def _bad_video(tmp_path, kind, written):
    path = tmp_path / f"{kind}.mp4"
    if kind == "missing":
        return path
    if kind == "directory":
        path.mkdir()
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "random_bytes":
        path.write_bytes(np.random.default_rng(0).bytes(4096))
    elif kind == "text":
        path.write_text("not a video\n" * 50)
    elif kind == "truncated_faststart":
        data = written[0].read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif kind == "truncated_index_at_end":
        # Without +faststart the index comes last, so a cut file has none.
        source = make_with_ffmpeg(tmp_path / "source.mp4", ["-c:v", "libx264"])
        data = source.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    return path


BAD_KINDS = [
    "missing",
    "directory",
    "empty",
    "random_bytes",
    "text",
    "truncated_faststart",
    "truncated_index_at_end",
]


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_bad_video_gives_one_clear_sentence(tmp_path, written, kind):
    path = _bad_video(tmp_path, kind, written)
    with pytest.raises(InputFileError) as raised:
        read_video(path)
    message = str(raised.value)
    assert path.name in message
    assert "\n" not in message and "Traceback" not in message


@pytest.mark.parametrize("kind", ["missing", "empty", "random_bytes"])
def test_bad_video_info_and_audio_give_clear_errors(tmp_path, written, kind):
    path = _bad_video(tmp_path, kind, written)
    for reader in (video_info, read_audio_track):
        with pytest.raises(InputFileError, match=path.name):
            reader(path)


def test_write_into_missing_folder_is_refused(tmp_path):
    path = tmp_path / "no_such_folder" / "out.mp4"
    with pytest.raises(InputFileError, match="does not exist"):
        write_video(path, moving_square_frames(num_frames=2), FPS)
    assert not path.parent.exists()


def test_failed_write_leaves_no_file_behind(tmp_path):
    def frames_then_crash():
        yield from moving_square_frames(num_frames=10)
        raise RuntimeError("renderer crashed")

    with pytest.raises(RuntimeError, match="renderer crashed"):
        write_video(tmp_path / "out.mp4", frames_then_crash(), FPS, audio=tone(1.0))
    assert list(tmp_path.iterdir()) == []


def test_failed_write_keeps_the_previous_file(tmp_path):
    path = tmp_path / "out.mp4"
    path.write_bytes(b"previous video")
    frames = list(moving_square_frames(num_frames=4))
    frames.append(np.zeros((64, 64, 3), np.uint8))
    with pytest.raises(AutalkError, match="same size"):
        write_video(path, frames, FPS)
    assert path.read_bytes() == b"previous video"
    assert list(tmp_path.iterdir()) == [path]


GOOD_FRAMES = np.zeros((3, 16, 16, 3), np.uint8)


@pytest.mark.parametrize(
    "frames, options, match",
    [
        (np.zeros((3, 16, 16, 3), np.float32), {}, "uint8"),
        (np.zeros((3, 16, 16), np.uint8), {}, r"\(height, width, 3\)"),
        (np.zeros((0, 16, 16, 3), np.uint8), {}, "No frames"),
        (GOOD_FRAMES, {"fps": 0}, "frame rate"),
        (GOOD_FRAMES, {"crf": 60}, "crf"),
        (GOOD_FRAMES, {"preset": "turbo"}, "preset"),
    ],
)
def test_bad_frames_or_options_are_refused(tmp_path, frames, options, match):
    options = {"fps": FPS, **options}
    with pytest.raises(AutalkError, match=match):
        write_video(tmp_path / "out.mp4", frames, **options)
    assert list(tmp_path.iterdir()) == []


def test_bad_audio_is_refused(tmp_path):
    audio = np.full(1000, np.nan, np.float32)
    with pytest.raises(AutalkError, match="NaN"):
        write_video(tmp_path / "out.mp4", moving_square_frames(num_frames=2), FPS, audio=audio)
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ a still with a changing region
def still_and_regions(height, width, box, num_frames=12, seed=0):
    """A textured still and, for `box`, regions that change every frame (a mouth moving)."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[:height, :width]
    still = np.stack(
        [
            40 + rows * 160 // height,
            60 + cols * 150 // width,
            120 + 60 * np.sin(rows / 5.0) * np.cos(cols / 7.0),
        ],
        axis=-1,
    )
    still = (still + rng.integers(-4, 5, still.shape)).astype(np.uint8)
    left, top, right, bottom = box
    region_rows, region_cols = np.mgrid[top:bottom, left:right]
    regions = []
    for index in range(num_frames):
        # A dark blob that opens and closes, on the still's own pixels.
        radius = 3.0 + 2.0 * index % 7
        blob = np.exp(
            -((region_rows - (top + bottom) / 2) ** 2 + (region_cols - (left + right) / 2) ** 2)
            / (2 * radius**2)
        )
        regions.append(still[top:bottom, left:right] * (1.0 - 0.7 * blob[..., None]))
    return still, np.stack(regions).astype(np.uint8)


def full_frames(still, box, regions):
    left, top, right, bottom = box
    frames = np.repeat(still[None], len(regions), axis=0)
    frames[:, top:bottom, left:right] = regions
    return frames


@pytest.mark.parametrize(
    "height, width, box",
    [
        (96, 128, (40, 50, 90, 80)),  # even still, even box
        (97, 131, (37, 51, 81, 97)),  # odd still; odd box reaching the bottom
        (97, 131, (0, 0, 131, 13)),  # odd still; box along the top and right edges
    ],
)
def test_a_region_video_is_the_full_frames_video_frame_for_frame(tmp_path, height, width, box):
    still, regions = still_and_regions(height, width, box)
    write_video(
        tmp_path / "frames.mp4", full_frames(still, box, regions), FPS, crf=12, preset="veryfast"
    )
    count = write_region_video(
        tmp_path / "regions.mp4", still, box, regions, FPS, crf=12, preset="veryfast"
    )
    assert count == len(regions)
    expected = read_video(tmp_path / "frames.mp4").frames
    written = read_video(tmp_path / "regions.mp4").frames
    # The same YUV frames reach x264, so the decoded frames are the same.
    np.testing.assert_array_equal(written, expected)
    assert psnr(full_frames(still, box, regions), written[:, :height, :width]) > 35.0


def test_a_region_video_has_the_audio_fitted_to_its_frames(tmp_path):
    box = (20, 30, 60, 50)
    still, regions = still_and_regions(64, 80, box, num_frames=NUM_FRAMES)
    path = tmp_path / "talking.mp4"
    write_region_video(
        path,
        still,
        box,
        (region for region in regions),
        FPS,
        audio=tone(3.7),
        sample_rate=SAMPLE_RATE,
    )
    info = video_info(path)
    assert (info.num_frames, info.video_codec, info.pix_fmt, info.audio_codec) == (
        NUM_FRAMES,
        "h264",
        "yuv420p",
        "aac",
    )
    samples, rate = read_audio_track(path, sample_rate=SAMPLE_RATE)
    assert abs(len(samples) / rate - NUM_FRAMES / FPS) <= 1.0 / FPS


@pytest.mark.parametrize("writer", ["frames", "regions"])
def test_a_generator_may_yield_one_buffer_rewritten_in_place(tmp_path, writer):
    box = (8, 16, 40, 48)
    still, regions = still_and_regions(64, 64, box, num_frames=6)
    items = regions if writer == "regions" else full_frames(still, box, regions)

    def reused():
        buffer = np.empty_like(items[0])
        for item in items:
            buffer[...] = item
            yield buffer

    def write(path, frames):
        if writer == "regions":
            return write_region_video(path, still, box, frames, FPS)
        return write_video(path, frames, FPS)

    write(tmp_path / "copies.mp4", list(items))
    write(tmp_path / "reused.mp4", reused())
    np.testing.assert_array_equal(
        read_video(tmp_path / "reused.mp4").frames, read_video(tmp_path / "copies.mp4").frames
    )


def test_a_failed_region_video_leaves_no_file_behind(tmp_path):
    box = (8, 16, 40, 48)
    still, regions = still_and_regions(64, 64, box, num_frames=6)

    def regions_then_crash():
        yield from regions
        raise RuntimeError("renderer crashed")

    with pytest.raises(RuntimeError, match="renderer crashed"):
        write_region_video(
            tmp_path / "out.mp4", still, box, regions_then_crash(), FPS, audio=tone(1.0)
        )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "box, regions, match",
    [
        ((8, 16, 40, 48), np.zeros((3, 32, 31, 3), np.uint8), "fill the box"),
        ((8, 16, 40, 48), np.zeros((3, 32, 32, 3), np.float32), "uint8"),
        ((8, 16, 40, 48), np.zeros((0, 32, 32, 3), np.uint8), "No regions"),
        ((40, 16, 8, 48), np.zeros((3, 32, 32, 3), np.uint8), "region box"),
        ((8, 16, 40, 80), np.zeros((3, 64, 32, 3), np.uint8), "region box"),
        ((8.5, 16, 40, 48), np.zeros((3, 32, 32, 3), np.uint8), "region box"),
    ],
)
def test_bad_regions_or_boxes_are_refused(tmp_path, box, regions, match):
    still = np.zeros((64, 64, 3), np.uint8)
    with pytest.raises(AutalkError, match=match):
        write_region_video(tmp_path / "out.mp4", still, box, regions, FPS)
    assert list(tmp_path.iterdir()) == []
