"""The ffmpeg binary shipped by `imageio-ffmpeg`, and the calls made to it.

No system ffmpeg is needed: the wheel of `imageio-ffmpeg` carries a static
build (with libx264 and AAC), found here once and reused.
"""

import errno
import functools
import json
import os
import re
import subprocess

import numpy as np

from keras_autalk.errors import InputFileError, MissingDependencyError


@functools.lru_cache(maxsize=1)
def ffmpeg_exe():
    """Return the path of the ffmpeg binary, or raise `MissingDependencyError`."""
    try:
        import imageio_ffmpeg
    except ImportError as error:
        raise MissingDependencyError(
            "imageio-ffmpeg is not installed; run `pip install -e .` again."
        ) from error
    try:
        return imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError as error:
        raise MissingDependencyError(f"No ffmpeg binary was found ({error}).") from error


def ffmpeg_version():
    """Return ffmpeg's version string."""
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_version()


def file_argument(path):
    """`path` as ffmpeg must be given a file: `file:` and the absolute path.

    ffmpeg reads a bare argument as a URL when it looks like one
    (`concat:a.m4a|b.ogg`, `subfile:...`, `http:...`) and as an option when
    it starts with "-"; the `file:` protocol makes it read the named file
    and nothing else. Every path handed to ffmpeg goes through here.

    Example:
    >>> file_argument("/data/concat:a.m4a|b.ogg")
    'file:/data/concat:a.m4a|b.ogg'
    """
    return "file:" + os.path.abspath(os.fspath(path))


# What ffmpeg says when the filesystem refuses a write, as the errno it means.
_WRITE_FAILURES = {
    "No space left on device": errno.ENOSPC,
    "Disk quota exceeded": errno.EDQUOT,
    "Read-only file system": errno.EROFS,
    "Input/output error": errno.EIO,
}


def write_error(stderr_text):
    """The `OSError` an ffmpeg error output reports for a failed write, or None.

    A full disk while ffmpeg writes is the user's disk being full, not a
    broken input; `files.atomic_output` turns the `OSError` into a sentence
    naming the user's path.
    """
    for words, code in _WRITE_FAILURES.items():
        if words in stderr_text:
            return OSError(code, os.strerror(code))
    return None


def run_ffmpeg(arguments, input_bytes=None, what="the file"):
    """Run ffmpeg with `arguments`; return its stdout bytes.

    Paths in `arguments` must come from `file_argument`.

    Raises:
        InputFileError: ffmpeg failed; the message quotes its last line.
        OSError: ffmpeg could not write its output (no space, read-only).
    """
    command = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error"]
    command += list(arguments)
    if input_bytes is not None:
        command.remove("-nostdin")
    result = subprocess.run(
        command, input=input_bytes, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    if result.returncode != 0:
        text = result.stderr.decode("utf-8", "replace")
        failure = write_error(text)
        if failure is not None:
            raise failure
        lines = text.strip().splitlines()
        reason = lines[-1] if lines else f"exit status {result.returncode}"
        raise InputFileError(f"ffmpeg could not process {what}: {reason}")
    return result.stdout


def decode_audio(path, sample_rate=None, channels=None):
    """Decode the audio (track) of any file ffmpeg reads to float32 samples.

    Args:
        path: an audio file, or a video file with an audio track.
        sample_rate: resample to this rate; None keeps the file's rate.
        channels: mix to this many channels; None keeps the file's count.

    Returns:
        `(samples, sample_rate)`: samples of shape `(num_samples, channels)`
        in [-1, 1].

    Raises:
        InputFileError: no audio stream, or the file cannot be decoded.
    """
    info = probe(path)
    if info["audio"] is None:
        raise InputFileError(f"'{path}' has no audio stream.")
    rate = int(sample_rate or info["audio"]["sample_rate"])
    num_channels = int(channels or info["audio"]["channels"])
    raw = run_ffmpeg(
        [
            "-i",
            file_argument(path),
            "-vn",
            "-map",
            "0:a:0",
            "-ac",
            str(num_channels),
            "-ar",
            str(rate),
            "-f",
            "f32le",
            "-acodec",
            "pcm_f32le",
            "pipe:1",
        ],
        what=f"'{path}'",
    )
    samples = np.frombuffer(raw, dtype="<f4").reshape(-1, num_channels)
    return samples.astype(np.float32), rate


_DURATION = re.compile(r"Duration: (\d+):(\d+):(\d+(?:\.\d+)?)")
_VIDEO = re.compile(
    r"Stream #\S+.*?: Video: (?P<codec>\w+).*?, (?P<width>\d{2,5})x(?P<height>\d{2,5})"
    r"(?:.*?, (?P<fps>[\d.]+(?:k)?) fps)?"
)
_AUDIO = re.compile(
    r"Stream #\S+.*?: Audio: (?P<codec>\w+).*?, (?P<rate>\d+) Hz, (?P<layout>[^,]+)"
)
# The pixel format is the first field after the codec ("yuv420p(progressive)").
_PIX_FMT = re.compile(r"Video: [^,\n]*, (?P<pix_fmt>[a-z][a-z0-9_]*)")
# Phone videos store their orientation as a display matrix; ffmpeg rotates the
# decoded frames by it, so the decoded size is the coded size transposed.
_ROTATION = re.compile(r"rotation of (?P<degrees>-?[\d.]+) degrees", re.IGNORECASE)
_LAYOUT_CHANNELS = {
    "mono": 1,
    "stereo": 2,
    "2.1": 3,
    "quad": 4,
    "5.0": 5,
    "5.1": 6,
    "6.1": 7,
    "7.1": 8,
}


def probe(path):
    """Describe a media file's first video and audio streams.

    ffprobe is not shipped with imageio-ffmpeg, so this reads the stream
    summary ffmpeg prints for `ffmpeg -i FILE`.

    Returns:
        A dict: `duration` (seconds or None), `video` (None or a dict with
        `codec`, `width`, `height` (as coded, before rotation), `fps`,
        `pix_fmt` (or None) and `rotation` (display rotation in degrees,
        0 when none)) and `audio` (None or a dict with `codec`,
        `sample_rate`, `channels`).

    Raises:
        InputFileError: ffmpeg cannot read the file at all.
    """
    result = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", file_argument(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    text = result.stderr.decode("utf-8", "replace")
    if "Invalid data found" in text or "Stream #" not in text:
        lines = [line for line in text.strip().splitlines() if line.strip()]
        reason = lines[-1].strip() if lines else "unknown format"
        raise InputFileError(f"'{path}' is not a readable media file ({reason}).")
    info = {"duration": None, "video": None, "audio": None}
    match = _DURATION.search(text)
    if match:
        hours, minutes, seconds = match.groups()
        info["duration"] = int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    match = _VIDEO.search(text)
    if match:
        fps = match.group("fps")
        if fps and fps.endswith("k"):
            fps = float(fps[:-1]) * 1000
        # The stream's own lines (side data included) end where the next
        # stream begins.
        next_stream = text.find("Stream #", match.end())
        stream_text = text[match.start() : next_stream if next_stream >= 0 else None]
        pix_fmt = _PIX_FMT.search(stream_text.splitlines()[0])
        rotation = _ROTATION.search(stream_text)
        info["video"] = {
            "codec": match.group("codec"),
            "width": int(match.group("width")),
            "height": int(match.group("height")),
            "fps": float(fps) if fps else None,
            "pix_fmt": pix_fmt.group("pix_fmt") if pix_fmt else None,
            "rotation": float(rotation.group("degrees")) if rotation else 0.0,
        }
    match = _AUDIO.search(text)
    if match:
        layout = match.group("layout").strip()
        channels = _LAYOUT_CHANNELS.get(layout.split("(")[0])
        if channels is None:
            found = re.match(r"(\d+) channels", layout)
            channels = int(found.group(1)) if found else 1
        info["audio"] = {
            "codec": match.group("codec"),
            "sample_rate": int(match.group("rate")),
            "channels": channels,
        }
    return info


def to_json(info):
    """`probe`'s result as a JSON string (for logs and reports)."""
    return json.dumps(info, sort_keys=True)
