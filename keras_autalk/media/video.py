"""Reading and writing talking-head videos through the bundled ffmpeg.

Reads the frames and the audio track of anything ffmpeg decodes (GRID's
MPEG-1 `.mpg`, TCD-TIMIT's H.264 `.mp4`, `.avi` with MJPEG or MPEG-4 video
and PCM audio, ...); writes MP4 with H.264 video (yuv420p, BT.709 tagged,
`+faststart`) and AAC audio whose duration equals the video's.

Frames are always uint8 RGB arrays `(height, width, 3)`; audio is float32
in [-1, 1]. Writes are atomic: a failed or interrupted write leaves no
output file behind.
"""

import dataclasses
import itertools
import math
import pathlib
import re
import subprocess
import tempfile
from typing import Optional

import numpy as np
from tqdm.auto import tqdm

from keras_autalk import stops
from keras_autalk.errors import AutalkError, InputFileError
from keras_autalk.files import atomic_output, check_input_file
from keras_autalk.media import ffmpeg

# Sample rates the AAC encoder accepts; anything else is resampled to 48 kHz.
_AAC_SAMPLE_RATES = (
    7350,
    8000,
    11025,
    12000,
    16000,
    22050,
    24000,
    32000,
    44100,
    48000,
    64000,
    88200,
    96000,
)

_X264_PRESETS = (
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
    "placebo",
)

# Written videos are tagged BT.709 (limited range) and converted with that
# matrix, so players and ffmpeg agree on the colours whatever the frame size;
# untagged streams are read as BT.601 by some players and BT.709 by others.
# (ffmpeg >= 7 also derives the conversion from the tags; the explicit
# filter keeps older builds consistent.)
_COLOUR_FILTER = "scale=out_color_matrix=bt709:out_range=tv"
_COLOUR_TAGS = [
    "-colorspace",
    "bt709",
    "-color_primaries",
    "bt709",
    "-color_trc",
    "bt709",
    "-color_range",
    "tv",
]


@dataclasses.dataclass
class VideoClip:
    """Decoded frames and audio of one video.

    Attributes:
        frames: uint8 RGB frames, shape `(num_frames, height, width, 3)`.
        fps: frame rate in frames per second.
        audio: float32 mono samples in [-1, 1], or None if the file has no
            audio track.
        sample_rate: sample rate of `audio` in Hz.
    """

    frames: np.ndarray
    fps: float
    audio: Optional[np.ndarray]
    sample_rate: int

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])

    @property
    def height(self) -> int:
        return int(self.frames.shape[1])

    @property
    def width(self) -> int:
        return int(self.frames.shape[2])

    @property
    def duration(self) -> float:
        """Duration of the frames in seconds (`num_frames / fps`)."""
        return self.num_frames / self.fps


@dataclasses.dataclass(frozen=True)
class VideoInfo:
    """What a video file holds, read without decoding it.

    Attributes:
        width: width of the decoded frames (after the display rotation).
        height: height of the decoded frames (after the display rotation).
        fps: frame rate.
        num_frames: number of video frames (packets of the first video
            stream), or None when not counted.
        duration: container duration in seconds, or None if unknown.
        has_audio: whether there is an audio stream.
        video_codec: e.g. "h264", "mpeg1video", "mjpeg".
        pix_fmt: e.g. "yuv420p", or None if ffmpeg does not print one.
        rotation: display rotation in degrees that decoding applies.
        audio_codec: e.g. "aac", or None without audio.
        sample_rate: audio sample rate in Hz, or None without audio.
        channels: audio channels, or None without audio.
    """

    width: int
    height: int
    fps: float
    num_frames: Optional[int]
    duration: Optional[float]
    has_audio: bool
    video_codec: str
    pix_fmt: Optional[str]
    rotation: float
    audio_codec: Optional[str]
    sample_rate: Optional[int]
    channels: Optional[int]


def _probe_video(path):
    """`ffmpeg.probe` of a checked input file that must have a video stream."""
    path = check_input_file(path, "video")
    info = ffmpeg.probe(path)
    if info["video"] is None:
        raise InputFileError(f"The file '{path}' has no video stream.")
    if not info["video"]["fps"]:
        raise InputFileError(f"The video '{path}' does not state its frame rate.")
    return path, info


def _decoded_size(video):
    """(width, height) of decoded frames: ffmpeg applies the display rotation."""
    width, height = video["width"], video["height"]
    if round(video.get("rotation", 0.0) / 90.0) % 2:
        width, height = height, width
    return width, height


def _count_frames(path):
    """Count the packets of the first video stream (stream copy, no decoding)."""
    report = ffmpeg.run_ffmpeg(
        [
            "-i",
            ffmpeg.file_argument(path),
            "-map",
            "0:v:0",
            "-c",
            "copy",
            "-f",
            "null",
            "-",
            "-progress",
            "pipe:1",
            "-nostats",
        ],
        what=f"the video '{path}'",
    ).decode("utf-8", "replace")
    counts = [line.split("=", 1)[1] for line in report.splitlines() if line.startswith("frame=")]
    return int(counts[-1]) if counts and counts[-1].strip().isdigit() else None


def video_info(path, count_frames=True):
    """Describe a video file: frame size and rate, frame count, audio.

    Args:
        path: any video file ffmpeg reads.
        count_frames: count the frames by reading the file's packets (fast:
            no decoding); if False, `num_frames` is None.

    Returns:
        A `VideoInfo`.

    Raises:
        InputFileError: missing, empty, not a video, or unreadable.

    Example:
    ```python
    info = video_info("s1/bbaf2n.mpg")
    print(info.width, info.height, info.fps, info.num_frames, info.has_audio)
    ```
    """
    path, info = _probe_video(path)
    video, audio = info["video"], info["audio"]
    width, height = _decoded_size(video)
    return VideoInfo(
        width=width,
        height=height,
        fps=float(video["fps"]),
        num_frames=_count_frames(path) if count_frames else None,
        duration=info["duration"],
        has_audio=audio is not None,
        video_codec=video["codec"],
        pix_fmt=video.get("pix_fmt"),
        rotation=float(video.get("rotation", 0.0)),
        audio_codec=audio["codec"] if audio else None,
        sample_rate=audio["sample_rate"] if audio else None,
        channels=audio["channels"] if audio else None,
    )


def _check_max_frames(max_frames):
    if max_frames is not None and not (
        isinstance(max_frames, (int, np.integer)) and max_frames >= 1
    ):
        raise AutalkError(f"max_frames must be a positive integer, got {max_frames!r}.")


def _last_line(stderr_file):
    """The last non-empty line ffmpeg wrote to `stderr_file`, or ''.

    The "[component @ 0x...]" prefix ffmpeg puts on log lines is dropped.
    """
    stderr_file.seek(0)
    lines = stderr_file.read().decode("utf-8", "replace").strip().splitlines()
    return re.sub(r"^(\[[^\]]*\] *)+", "", lines[-1].strip()) if lines else ""


def iter_frames(path, max_frames=None):
    """Yield the frames of a video one at a time, as uint8 RGB `(h, w, 3)`.

    Only one frame is held in memory, so this suits long videos. Frames are
    yielded as decoded (no frames dropped or duplicated to a constant rate),
    with the file's display rotation applied. Stopping early (`break`) ends
    the decoder.

    Args:
        path: any video file ffmpeg reads.
        max_frames: stop after this many frames (None: all).

    Raises:
        InputFileError: missing, empty, not a video, truncated, or no frame
            decodes.

    Example:
    ```python
    for frame in iter_frames("talk.mp4"):
        print(frame.shape)  # (h, w, 3)
    ```
    """
    _check_max_frames(max_frames)
    path, info = _probe_video(path)
    width, height = _decoded_size(info["video"])
    yield from _decode_frames(
        path,
        width,
        height,
        max_frames,
        new_frame=lambda index: np.empty((height, width, 3), dtype=np.uint8),
    )


def _decode_frames(path, width, height, max_frames, new_frame):
    """Decode the first video stream into `new_frame(index)` arrays; yield each.

    `new_frame` returns a writable, C-contiguous uint8 `(height, width, 3)`
    array: a fresh one for streaming, or a row of a preallocated block.
    """
    frame_bytes = width * height * 3
    command = [
        ffmpeg.ffmpeg_exe(),
        "-hide_banner",
        "-nostdin",
        "-loglevel",
        "error",
        "-i",
        ffmpeg.file_argument(path),
        "-map",
        "0:v:0",
        "-an",
        "-sn",
        "-dn",
        "-fps_mode",
        "passthrough",
    ]
    if max_frames is not None:
        command += ["-frames:v", str(int(max_frames))]
    command += ["-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"]
    # stderr goes to a file: a pipe nobody drains would fill up on a corrupt
    # stream (one error line per broken frame) and stall the decoder.
    with tempfile.TemporaryFile() as stderr_file:
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=stderr_file, bufsize=frame_bytes
        )
        finished = False
        num_frames = 0
        try:
            while True:
                frame = new_frame(num_frames)
                buffer = memoryview(frame).cast("B")
                received = 0
                while received < frame_bytes:
                    count = process.stdout.readinto(buffer[received:])
                    if not count:
                        break
                    received += count
                if received == 0:
                    break
                if received < frame_bytes:
                    raise InputFileError(
                        f"The video '{path}' decoded to frames of an unexpected "
                        f"size (expected {width}x{height})."
                    )
                num_frames += 1
                yield frame
            finished = True
        finally:
            # Not finished: the consumer stopped early or an error was raised.
            if not finished and process.poll() is None:
                process.kill()
            process.stdout.close()
            return_code = process.wait()
        if return_code != 0:
            stderr_file.seek(0)
            failure = ffmpeg.write_error(stderr_file.read().decode("utf-8", "replace"))
            if failure is not None:
                raise failure
            reason = _last_line(stderr_file) or f"exit status {return_code}"
            raise InputFileError(f"ffmpeg could not decode the video '{path}': {reason}")
        # ffmpeg conceals damaged frames and exits 0; only a file cut short
        # (an interrupted download or copy) is refused, since its missing
        # frames would silently shorten the clip.
        stderr_file.seek(0)
        if b"partial file" in stderr_file.read():
            raise InputFileError(
                f"The video '{path}' is truncated: the file ends before its last "
                f"frame ({num_frames} frames could be decoded)."
            )
        if num_frames == 0:
            reason = _last_line(stderr_file)
            raise InputFileError(
                f"No frame of the video '{path}' could be decoded"
                + (f" ({reason})." if reason else ".")
            )


def read_audio_track(path, sample_rate=16000):
    """Read a video's (or audio file's) audio track as mono float32.

    Args:
        path: any file with an audio stream that ffmpeg reads.
        sample_rate: resample to this rate (Hz); None keeps the file's rate.

    Returns:
        `(samples, sample_rate)`: float32 mono samples `(num_samples,)` in
        [-1, 1], and their rate.

    Raises:
        InputFileError: missing, empty, unreadable, or no audio track.

    Example:
    ```python
    samples, rate = read_audio_track("s1/bbaf2n.mpg")
    ```
    """
    path = check_input_file(path, "video")
    info = ffmpeg.probe(path)
    if info["audio"] is None:
        raise InputFileError(f"The file '{path}' has no audio track.")
    samples, rate = ffmpeg.decode_audio(path, sample_rate=sample_rate, channels=1)
    return np.ascontiguousarray(samples[:, 0], dtype=np.float32), int(rate)


def read_video(path, max_frames=None, sample_rate=16000):
    """Read all frames and the audio track of a video.

    For long videos prefer `iter_frames`, which holds one frame at a time.

    Args:
        path: any video file ffmpeg reads (MPG, MP4, AVI, MOV, MKV, ...).
        max_frames: read at most this many frames; the audio is then cut to
            the same span.
        sample_rate: resample the audio to this rate (Hz).

    Returns:
        A `VideoClip`; its `audio` is None if the file has no audio track.

    Raises:
        InputFileError: missing, empty, not a video, or undecodable.

    Example:
    ```python
    clip = read_video("s1/bbaf2n.mpg")
    clip.frames.shape, clip.fps, clip.audio.shape  # (75, 288, 360, 3), 25.0, (48000,)
    ```
    """
    _check_max_frames(max_frames)
    path, info = _probe_video(path)
    fps = float(info["video"]["fps"])
    width, height = _decoded_size(info["video"])
    # Decode straight into one block sized by the packet count (cheap: no
    # decoding), instead of stacking a list, which would need twice the memory.
    capacity = _count_frames(path) or 1
    if max_frames is not None:
        capacity = min(capacity, max_frames)
    block = np.empty((capacity, height, width, 3), dtype=np.uint8)
    overflow = []  # frames beyond the packet count: rare

    def next_slot(index):
        if index < capacity:
            return block[index]
        return np.empty((height, width, 3), dtype=np.uint8)

    num_frames = 0
    for index, frame in enumerate(_decode_frames(path, width, height, max_frames, next_slot)):
        if index >= capacity:
            overflow.append(frame)
        num_frames = index + 1
    frames = np.concatenate([block, np.stack(overflow)]) if overflow else block[:num_frames]
    audio, rate = None, int(sample_rate)
    if info["audio"] is not None:
        audio, rate = read_audio_track(path, sample_rate=sample_rate)
        if max_frames is not None:
            audio = audio[: int(round(len(frames) * rate / fps))]
    return VideoClip(frames=frames, fps=fps, audio=audio, sample_rate=rate)


def _check_frame(frame, index, first_shape=None):
    """Return `frame` as a contiguous uint8 `(h, w, 3)` array or raise."""
    frame = np.asarray(frame)
    if frame.dtype != np.uint8:
        raise AutalkError(
            f"Frame {index} has dtype {frame.dtype}; write_video needs uint8 RGB "
            "frames with values 0-255."
        )
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise AutalkError(
            f"Frame {index} has shape {frame.shape}; write_video needs RGB frames "
            "of shape (height, width, 3)."
        )
    if first_shape is not None and frame.shape != first_shape:
        raise AutalkError(
            f"Frame {index} is {frame.shape[1]}x{frame.shape[0]} pixels but the "
            f"first frame is {first_shape[1]}x{first_shape[0]}; all frames of a "
            "video must have the same size."
        )
    return frame


def _even(frame):
    """Pad an odd height or width by repeating the last row or column.

    yuv420p stores colour at half resolution, so H.264 needs even sizes.
    """
    pad_rows, pad_cols = frame.shape[0] % 2, frame.shape[1] % 2
    if pad_rows or pad_cols:
        frame = np.pad(frame, ((0, pad_rows), (0, pad_cols), (0, 0)), mode="edge")
    return np.ascontiguousarray(frame)


def _check_audio(audio, sample_rate):
    """Return `audio` as `(num_samples, channels)` samples or raise; check `sample_rate`.

    Float audio is returned as given (a view, not a copy: minutes of audio
    are hundreds of MB); `_write_raw_audio` clips and converts it piece by
    piece.
    """
    audio = np.asarray(audio)
    if audio.dtype == np.int16:
        audio = audio.astype(np.float32) / 32768.0
    elif not np.issubdtype(audio.dtype, np.floating):
        raise AutalkError(
            f"The audio has dtype {audio.dtype}; give float samples in [-1, 1] or int16 samples."
        )
    if audio.ndim == 1:
        audio = audio[:, None]
    if audio.ndim != 2 or audio.shape[1] not in (1, 2):
        raise AutalkError(
            f"The audio has shape {audio.shape}; give (num_samples,) mono or "
            "(num_samples, 2) stereo samples."
        )
    if not np.all(np.isfinite(audio)):
        raise AutalkError("The audio contains NaN or infinite samples.")
    if not (
        isinstance(sample_rate, (int, float, np.number))
        and sample_rate > 0
        and int(sample_rate) == sample_rate
    ):
        raise AutalkError(f"The sample rate must be a positive integer, got {sample_rate!r}.")
    return audio


# Samples converted at a time when the audio is written for muxing.
_AUDIO_CHUNK = 1 << 20


def _write_raw_audio(path, audio, num_samples):
    """Write `audio` as little-endian float32 in [-1, 1], trimmed or padded to `num_samples`.

    Piece by piece, so no full copy of the audio is made.
    """
    with open(path, "wb") as handle:
        for start in range(0, min(len(audio), num_samples), _AUDIO_CHUNK):
            piece = audio[start : min(start + _AUDIO_CHUNK, num_samples)]
            handle.write(np.clip(piece, -1.0, 1.0).astype("<f4").tobytes())
        if num_samples > len(audio):
            silence = np.zeros((min(num_samples - len(audio), _AUDIO_CHUNK), audio.shape[1]), "<f4")
            for start in range(len(audio), num_samples, _AUDIO_CHUNK):
                handle.write(silence[: min(_AUDIO_CHUNK, num_samples - start)].tobytes())


def fit_audio_length(audio, num_samples):
    """Trim, or pad with silence, `audio` (`(n, ...)`) to `num_samples`."""
    if len(audio) >= num_samples:
        return audio[:num_samples]
    padding = [(0, num_samples - len(audio))] + [(0, 0)] * (audio.ndim - 1)
    return np.pad(audio, padding)


def _x264_arguments(crf, preset, faststart, output):
    """ffmpeg's output arguments: H.264 yuv420p, BT.709 tagged, MP4, no audio."""
    arguments = [
        "-an",
        "-c:v",
        "libx264",
        "-preset",
        preset,
        "-crf",
        str(crf),
        "-pix_fmt",
        "yuv420p",
        *_COLOUR_TAGS,
    ]
    if faststart:
        arguments += ["-movflags", "+faststart"]
    return arguments + ["-f", "mp4", ffmpeg.file_argument(output)]


def _raw_input(width, height, fps, source):
    """ffmpeg's arguments for one rgb24 rawvideo input."""
    return [
        "-f",
        "rawvideo",
        "-pix_fmt",
        "rgb24",
        "-s",
        f"{width}x{height}",
        "-framerate",
        repr(float(fps)),
        "-i",
        source,
    ]


def _pipe_frames(command, payloads, total, progress, display_path):
    """Run ffmpeg's `command`, writing each of `payloads` to its stdin; return the count.

    Each payload (one frame's bytes) is written before the next is asked
    for, so a generator may yield one buffer rewritten in place.
    """
    count = 0
    with (
        tempfile.TemporaryFile() as stderr_file,
        tqdm(total=total, unit="frame", desc="Writing video", disable=not progress) as bar,
    ):
        process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=stderr_file
        )
        try:
            try:
                for payload in payloads:
                    if count:
                        stops.check()
                    process.stdin.write(payload)
                    count += 1
                    bar.update(1)
                process.stdin.close()
            except (BrokenPipeError, ConnectionResetError):
                pass  # ffmpeg stopped early; its exit status says why.
            return_code = process.wait()
        finally:
            # Reached with ffmpeg still running only when the frames (or a
            # check of them) raised: stop it, the caller discards the output.
            if process.poll() is None:
                process.kill()
                process.wait()
        if return_code != 0:
            stderr_file.seek(0)
            failure = ffmpeg.write_error(stderr_file.read().decode("utf-8", "replace"))
            if failure is not None:
                raise failure
            reason = _last_line(stderr_file) or f"exit status {return_code}"
            raise InputFileError(f"ffmpeg could not write the video '{display_path}': {reason}")
    return count


def _encode_frames(
    output, frames, first, total, fps, crf, preset, progress, faststart, display_path
):
    """Pipe `first` then the rest of `frames` into libx264; return the count."""
    first = _check_frame(first, 0)
    height, width = _even(first).shape[:2]
    command = [
        ffmpeg.ffmpeg_exe(),
        "-hide_banner",
        "-loglevel",
        "error",
        "-y",
        *_raw_input(width, height, fps, "pipe:0"),
        "-vf",
        _COLOUR_FILTER,
        *_x264_arguments(crf, preset, faststart, output),
    ]

    def payloads():
        yield _even(first).data
        for index, frame in enumerate(frames, start=1):
            yield _even(_check_frame(frame, index, first.shape)).data

    return _pipe_frames(command, payloads(), total, progress, display_path)


# How far (in pixels) swscale's RGB to yuv420p conversion reaches: its
# vertical chroma filter reads 2 chroma rows (4 pixels) either side
# (measured: a region converted alone differs from the whole frame's
# conversion in its first and last 4 rows only). Twice that, to spare.
_CONVERSION_REACH = 8


def _widened(box, reach, width, height):
    """`box` grown by `reach` on each side, its edges moved out to even numbers, clipped.

    Example:
    >>> _widened((5, 3, 9, 10), 2, 12, 20)
    (2, 0, 12, 12)
    """
    left, top, right, bottom = box
    return (
        max(0, (left - reach) // 2 * 2),
        max(0, (top - reach) // 2 * 2),
        min(width, -(-(right + reach) // 2) * 2),
        min(height, -(-(bottom + reach) // 2) * 2),
    )


def _check_box(box, width, height):
    """`box` as four ints `(left, top, right, bottom)` of a non-empty region inside, or raise."""
    try:
        left, top, right, bottom = (int(value) for value in box)
        valid = all(int(value) == value for value in box)
    except (TypeError, ValueError):
        valid = False
    if not valid or not (0 <= left < right <= width and 0 <= top < bottom <= height):
        raise AutalkError(
            f"The region box must be (left, top, right, bottom), whole pixels with at "
            f"least one inside the {width}x{height} still; got {box!r}."
        )
    return left, top, right, bottom


def _encode_regions(
    output, still, box, regions, first, total, fps, crf, preset, progress, faststart, display_path
):
    """Encode `still` with `box` replaced by `first` then each of `regions`; return the count.

    ffmpeg converts the still to YUV once and repeats it (`loop`); each
    frame only the region travels through the pipe, is converted, and is
    laid over it (`overlay`). The region sent is `box` plus the still's own
    pixels around it as far as the conversion reaches, and only its middle,
    whose conversion those pixels complete, is laid over: every frame
    x264 gets is the one the whole frame's conversion gives, bit for bit.
    """
    still = _check_frame(still, 0)
    height, width = still.shape[:2]
    left, top, right, bottom = _check_box(box, width, height)
    region_shape = (bottom - top, right - left, 3)
    padded = _even(still)
    even_height, even_width = padded.shape[:2]
    laid = _widened((left, top, right, bottom), _CONVERSION_REACH, even_width, even_height)
    sent = _widened(laid, _CONVERSION_REACH, even_width, even_height)
    sent_left, sent_top, sent_right, sent_bottom = sent
    buffer = np.ascontiguousarray(padded[sent_top:sent_bottom, sent_left:sent_right])
    inside = (slice(top - sent_top, bottom - sent_top), slice(left - sent_left, right - sent_left))

    def payloads():
        for index, region in enumerate(itertools.chain([first], regions)):
            region = _check_frame(region, index)
            if region.shape != region_shape:
                raise AutalkError(
                    f"Region {index} is {region.shape[1]}x{region.shape[0]} pixels but "
                    f"the box is {region_shape[1]}x{region_shape[0]}; every region "
                    "must fill the box."
                )
            buffer[inside] = region
            # An odd-sized frame is padded by repeating its last column or row
            # (`_even`); where the region reaches them, repeat its pixels.
            if width % 2 and right == width:
                buffer[:, -1] = buffer[:, -2]
            if height % 2 and bottom == height:
                buffer[-1] = buffer[-2]
            yield buffer.data

    laid_left, laid_top, laid_right, laid_bottom = laid
    graph = (
        f"[0:v]{_COLOUR_FILTER},format=yuv420p,loop=loop=-1:size=1[still];"
        f"[1:v]{_COLOUR_FILTER},format=yuv420p,crop={laid_right - laid_left}:"
        f"{laid_bottom - laid_top}:{laid_left - sent_left}:{laid_top - sent_top}[region];"
        f"[still][region]overlay=x={laid_left}:y={laid_top}:eof_action=endall:shortest=1[video]"
    )
    # In the system's temporary folder: ffmpeg's input, not part of the output's disk use.
    with tempfile.TemporaryDirectory(prefix="autalk-still-") as work:
        still_file = pathlib.Path(work) / "still.rgb"
        # A plain write: a full disk raises OSError(ENOSPC).
        still_file.write_bytes(padded.data)
        command = [
            ffmpeg.ffmpeg_exe(),
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            *_raw_input(even_width, even_height, fps, ffmpeg.file_argument(still_file)),
            *_raw_input(sent_right - sent_left, sent_bottom - sent_top, fps, "pipe:0"),
            "-filter_complex",
            graph,
            "-map",
            "[video]",
            *_x264_arguments(crf, preset, faststart, output),
        ]
        return _pipe_frames(command, payloads(), total, progress, display_path)


# H.264 at CRF 12 on a talking head (a still photo whose mouth moves),
# measured on grace_hopper (512 x 600): 175 KB for 3 s and 1,032 KB for 30 s
# with audio, so about 80 KB for the first (intra) frame, 0.26 bytes per
# pixel, and 0.016 bits per pixel for each further frame. The estimate takes a
# little less, so that the check before encoding refuses only what cannot fit.
_ESTIMATE_FIRST_FRAME_BYTES_PER_PIXEL = 0.2
_ESTIMATE_BITS_PER_PIXEL = 0.015
_ESTIMATE_AAC_BYTES_PER_S = 16000  # AAC at 128 kbit/s


def estimate_mp4_bytes(
    width, height, num_frames, audio_samples=0, audio_channels=1, fps=25.0, sample_rate=16000
):
    """About how many bytes `write_video` needs for a talking-head MP4, temporaries included.

    The video stream is written twice (once alone, once muxed with the
    audio) and the audio is held as float32 samples while muxing. An
    estimate, on the low side: used to refuse an output that cannot fit
    before the work starts, not to promise that one will.

    Example:
    >>> estimate_mp4_bytes(512, 600, 250, 10 * 16000, 1)
    1209728
    """
    pixels = width * height
    video = (
        _ESTIMATE_FIRST_FRAME_BYTES_PER_PIXEL * pixels
        + _ESTIMATE_BITS_PER_PIXEL * pixels * max(0, num_frames - 1) / 8.0
    )
    raw_audio = 4.0 * audio_samples * audio_channels
    aac = _ESTIMATE_AAC_BYTES_PER_S * num_frames / fps if audio_samples else 0.0
    return int(2 * video + raw_audio + aac)


def write_video(
    path, frames, fps, audio=None, sample_rate=16000, crf=18, progress=False, preset="medium"
):
    """Write frames (and audio) as an MP4: H.264 yuv420p video, AAC audio.

    The audio is trimmed, or padded with silence, to exactly
    `num_frames / fps` seconds, so the audio and video durations match.
    Frames with an odd height or width are padded by one row or column that
    repeats the last one (H.264 in yuv420p needs even sizes). The file is
    written under a temporary name and renamed when complete: a failed or
    interrupted write leaves no file at `path`.

    Args:
        path: the output file (`.mp4`); its folder must exist.
        frames: uint8 RGB frames `(h, w, 3)`: an array `(n, h, w, 3)`, a list,
            or any iterable/generator (streamed, one frame in memory). Each
            is consumed before the next is asked for, so a generator may
            yield one buffer rewritten in place.
        fps: frame rate.
        audio: optional float32 samples in [-1, 1] (or int16), mono `(n,)` or
            stereo `(n, 2)`, at `sample_rate`.
        sample_rate: sample rate of `audio` in Hz.
        crf: x264 constant rate factor (0 lossless .. 51 worst; 18 is
            visually lossless).
        progress: show a tqdm progress bar.
        preset: x264 speed preset ("ultrafast" ... "veryslow").

    Returns:
        The number of frames written.

    Raises:
        InputFileError: the output folder is missing or ffmpeg fails.
        AutalkError: no frames, frames that are not uint8 RGB of one size,
            bad audio, fps or crf.

    Example:
    ```python
    frames = np.zeros((50, 128, 128, 3), np.uint8)
    write_video("out.mp4", frames, fps=25, audio=np.zeros(32000, np.float32))
    ```
    """
    _check_options(fps, crf, preset)
    if audio is not None:
        audio = _check_audio(audio, sample_rate)
    total, first, iterator = _first_and_rest(frames, "frames", path)

    def encode(output, faststart, display_path):
        return _encode_frames(
            output, iterator, first, total, fps, crf, preset, progress, faststart, display_path
        )

    return _write_with_audio(path, encode, fps, audio, sample_rate)


def write_region_video(
    path,
    still,
    box,
    regions,
    fps,
    audio=None,
    sample_rate=16000,
    crf=18,
    progress=False,
    preset="medium",
):
    """Write the video of a `still` image in which only `box` changes, frame by frame.

    The MP4 is the one `write_video` writes for the full frames (`still`
    with each region put in `box`), byte for byte, but each frame costs only
    its region: the still is converted to YUV once and each region laid
    over it inside ffmpeg, so only the region is checked, piped and
    converted (x264 itself still encodes every pixel). Audio, even sizes,
    colours and the atomic write are as `write_video`'s.

    Args:
        path: the output file (`.mp4`); its folder must exist.
        still: the uint8 RGB `(h, w, 3)` image every frame shows outside `box`.
        box: `(left, top, right, bottom)`, whole pixels inside `still`.
        regions: uint8 RGB `(bottom - top, right - left, 3)` regions, one a
            frame: an array, a list or any iterable. Each is consumed before
            the next is asked for, so a generator may yield one buffer
            rewritten in place.
        fps, audio, sample_rate, crf, progress, preset: as `write_video`'s.

    Returns:
        The number of frames written.

    Raises:
        InputFileError: the output folder is missing or ffmpeg fails.
        AutalkError: no regions, a box outside the still, regions that are
            not uint8 RGB of the box's size, bad audio, fps or crf.

    Example:
    ```python
    still = np.zeros((600, 512, 3), np.uint8)
    mouths = np.full((50, 40, 60, 3), 200, np.uint8)
    write_region_video("out.mp4", still, (220, 400, 280, 440), mouths, fps=25)
    ```
    """
    _check_options(fps, crf, preset)
    if audio is not None:
        audio = _check_audio(audio, sample_rate)
    total, first, iterator = _first_and_rest(regions, "regions", path)

    def encode(output, faststart, display_path):
        return _encode_regions(
            output,
            still,
            box,
            iterator,
            first,
            total,
            fps,
            crf,
            preset,
            progress,
            faststart,
            display_path,
        )

    return _write_with_audio(path, encode, fps, audio, sample_rate)


def _first_and_rest(items, what, path):
    """`(count or None, first item, iterator over the rest)` of `items`, or raise if empty."""
    total = len(items) if hasattr(items, "__len__") else None
    iterator = iter(items)
    first = next(iterator, None)
    if first is None:
        raise AutalkError(f"No {what} were given to write to '{path}'.")
    return total, first, iterator


def _check_options(fps, crf, preset):
    """Raise `AutalkError` for a bad frame rate, crf or x264 preset."""
    if not (isinstance(fps, (int, float)) and math.isfinite(fps) and fps > 0):
        raise AutalkError(f"The frame rate must be a positive number, got {fps!r}.")
    if not (isinstance(crf, (int, float)) and 0 <= crf <= 51):
        raise AutalkError(f"crf must be between 0 and 51, got {crf!r}.")
    if preset not in _X264_PRESETS:
        raise AutalkError(f"preset must be one of {', '.join(_X264_PRESETS)}; got {preset!r}.")


def _write_with_audio(path, encode, fps, audio, sample_rate):
    """Write `path` atomically: `encode(output, faststart, display_path)` and, muxed, `audio`.

    Returns the frame count `encode` returns.
    """
    path = pathlib.Path(path)
    with atomic_output(path, "video") as partial:
        if audio is None:
            return encode(partial, True, path)
        # The frame count is known only once a generator is exhausted, so the
        # video is encoded first and the audio, fitted to it, muxed second.
        with tempfile.TemporaryDirectory(prefix=f".{path.stem}.", dir=path.parent) as work:
            video_only = pathlib.Path(work) / "video.mp4"
            num_frames = encode(video_only, False, path)
            sample_rate = int(sample_rate)
            raw_audio = pathlib.Path(work) / "audio.f32"
            # Plain writes: a full disk raises OSError(ENOSPC) (ndarray.tofile
            # raises one without an errno).
            _write_raw_audio(raw_audio, audio, int(round(num_frames * sample_rate / fps)))
            output_rate = sample_rate if sample_rate in _AAC_SAMPLE_RATES else 48000
            ffmpeg.run_ffmpeg(
                [
                    "-y",
                    "-i",
                    ffmpeg.file_argument(video_only),
                    "-f",
                    "f32le",
                    "-ar",
                    str(sample_rate),
                    "-ac",
                    str(audio.shape[1]),
                    "-i",
                    ffmpeg.file_argument(raw_audio),
                    "-map",
                    "0:v:0",
                    "-map",
                    "1:a:0",
                    "-c:v",
                    "copy",
                    "-c:a",
                    "aac",
                    "-ar",
                    str(output_rate),
                    "-movflags",
                    "+faststart",
                    "-f",
                    "mp4",
                    ffmpeg.file_argument(partial),
                ],
                what=f"the video '{path}'",
            )
        return num_frames
