"""The model over a whole utterance: windows, crossfades, frame rates, the result.

Long audio: the model sees `window_frames` frames at a time (its fusion
attends over the whole window), windows overlap by at least
`overlap_frames`, and the frames of an overlap are crossfaded linearly from
the earlier window to the later one, so there is no jump at a seam. Only one
window of crops (and the next, computed in a worker thread meanwhile) is
held at a time, so memory does not grow with the length of the audio (the
audio itself and its features are held whole: about 50 MB for 5 minutes).

Frame rate: the model runs at `AudioConfig.fps` (25). Another output `fps`
resamples the generated sequence in time: output frame j, centred at
`(j + 0.5) / fps` seconds, is the linear interpolation of the two model
frames whose centres surround it (the same for the AU curves). Either way
the video has `ceil(duration * fps)` frames (it never ends before the
audio; the audio is padded with silence to the video's length).
"""

import concurrent.futures
import dataclasses
import math
import pathlib
import time
from typing import Dict, List, Optional, Tuple

import numpy as np

from keras_autalk.errors import AutalkError
from keras_autalk.inference import runtime

DEFAULT_WINDOW_FRAMES = 128
DEFAULT_OVERLAP_FRAMES = 16
# A progress bar is shown (when asked for) from this much audio on.
LONG_AUDIO_S = 10.0
MAX_FPS = 120.0
MAX_ARTICULATION = 5.0
# Video encoding: x264 "veryfast" looks the same as "medium" on a mostly
# static talking head and encodes about 3 times faster. CRF 12 because every
# pixel above the mouth is the photo's own: measured on grace_hopper's eye
# region against the photo, CRF 18 keeps 36.4 dB, 14 38.2, 12 38.8, 10 39.4,
# and even lossless H.264 only 40.7 dB (the 4:2:0 chroma every player
# expects); 12 is within 2 dB of that ceiling for about 1.5x the bytes of 18
# and no measurable encoding time.
VIDEO_PRESET = "veryfast"
VIDEO_CRF = 12
COMPOSITES = ("lower_face", "crop")
# `generate_sequence`'s timing of the time spent waiting for the model.
MODEL_WAIT = "waiting for the model"
STAGES = ("load model", "face", "audio features", "model", "paste-back", "encode")


@dataclasses.dataclass
class GenerateResult:
    """What `generate` wrote and how long it took.

    Attributes:
        output: the MP4 written.
        num_frames: video frames written (`ceil(audio_seconds * fps)`).
        fps: the video's frame rate.
        audio_seconds: duration of the speech.
        face_box: `(left, top, right, bottom)` of the face used, in photo pixels.
        action_units: the AU numbers of `au_intensity`'s columns.
        au_intensity: `(num_frames, A)` predicted AU intensities (0-5, after
            `articulation`), one row per video frame.
        au_csv: the AU CSV written, or None.
        notes: things the user should know (several faces, ignored detections).
        timings: seconds per stage (`STAGES`) and "total". The model runs
            beside the paste-back and the encoder, so the stages add up to
            more than the total.
        runtime: where the model ran: "litert" or "keras".
    """

    output: pathlib.Path
    num_frames: int
    fps: float
    audio_seconds: float
    face_box: Tuple[int, int, int, int]
    action_units: Tuple[int, ...]
    au_intensity: np.ndarray
    au_csv: Optional[pathlib.Path]
    notes: List[str]
    timings: Dict[str, float]
    runtime: str = "keras"


# ------------------------------------------------------------------ windows
def window_plan(
    num_frames, window_frames=DEFAULT_WINDOW_FRAMES, overlap_frames=DEFAULT_OVERLAP_FRAMES
):
    """The `(start, end)` frame ranges the model runs on.

    As few windows as cover the clip with at most `window_frames` frames
    each and at least `overlap_frames` frames shared by neighbours, all of
    one length (as short as that allows, so little is computed twice):
    consecutive windows overlap by exactly `overlap_frames`, except the last
    one, which ends at the last frame and may overlap more.

    Example:
    >>> window_plan(300, 128, 16)
    [(0, 111), (95, 206), (189, 300)]
    >>> window_plan(50, 128, 16)
    [(0, 50)]
    """
    check_windows(window_frames, overlap_frames)
    num_frames = int(num_frames)
    if num_frames <= window_frames:
        return [(0, num_frames)]
    count = -(-(num_frames - overlap_frames) // (window_frames - overlap_frames))
    length = -(-(num_frames + (count - 1) * overlap_frames) // count)
    step = length - overlap_frames
    starts = [index * step for index in range(count - 1)] + [num_frames - length]
    return [(start, start + length) for start in starts]


def check_windows(window_frames, overlap_frames):
    """Raise `AutalkError` unless the window sizes are usable."""
    if not (isinstance(window_frames, (int, np.integer)) and window_frames >= 1):
        raise AutalkError(f"window_frames must be a positive integer, got {window_frames!r}.")
    if not (isinstance(overlap_frames, (int, np.integer)) and 0 <= overlap_frames < window_frames):
        raise AutalkError(
            f"overlap_frames must be an integer from 0 to window_frames - 1 "
            f"({window_frames - 1}), got {overlap_frames!r}."
        )


def crossfade_weights(num_frames):
    """Weights of the later window over an overlap of `num_frames` frames.

    A linear ramp strictly between 0 and 1: `(i + 1) / (num_frames + 1)`.
    """
    return np.arange(1, num_frames + 1, dtype=np.float32) / (num_frames + 1)


def generate_sequence(
    model,
    identity_crop,
    audio_features,
    articulation=1.0,
    window_frames=DEFAULT_WINDOW_FRAMES,
    overlap_frames=DEFAULT_OVERLAP_FRAMES,
    timings=None,
):
    """Run the model over a whole utterance in windows; yield frame by frame.

    Args:
        model: a runner (`inference.runtime`: LiteRT or Keras) or an
            `AUTalker` (e.g. from `load_pretrained`), run through Keras.
        identity_crop: the aligned face, `(S, S, 3)` uint8, or float in [0, 1].
        audio_features: `(T, context_steps, num_mel_bins)` from
            `features.log_mel.audio_features`.
        articulation: scale of the predicted AU intensities (1: as
            predicted, 0: no mouth movement driven by AUs).
        window_frames: frames per model call.
        overlap_frames: least overlap of consecutive windows; overlaps are
            crossfaded linearly.
        timings: optional dict; "model" accumulates the seconds spent in
            the model (in a worker thread, beside the caller's own work on
            the frames already yielded), `MODEL_WAIT` the seconds the caller
            waited for it.

    Yields:
        `(crop, au_intensity)` for each of the T frames: float32
        `(S, S, 3)` in [0, 1] and float32 `(A,)`; with a flow-decoder model
        the crop is `(S, S, runtime.MOTION_CHANNELS)`: frame, flow and
        occlusion.

    Example:
    ```python
    crops = [crop for crop, _ in generate_sequence(model, aligned.crop, features)]
    ```
    """
    plan = window_plan(len(audio_features), window_frames, overlap_frames)
    identity = np.asarray(identity_crop)
    if identity.dtype == np.uint8:
        identity = identity.astype(np.float32) / 255.0
    identity = identity.astype(np.float32)
    if not isinstance(model, (runtime.KerasRunner, runtime.LiteRTRunner)):  # an AUTalker
        model = runtime.KerasRunner(model)
    features = np.asarray(audio_features, np.float32)
    articulation = float(articulation)

    def run(start, end):
        began = time.perf_counter()
        result = model(identity, features[start:end], articulation)
        return result, time.perf_counter() - began

    # The next window runs in a worker thread while this one's frames are
    # pasted and encoded (LiteRT and TensorFlow release the GIL); one window
    # ahead at most, so memory stays bounded.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as worker:
        ahead = worker.submit(run, *plan[0])
        pending_frames = pending_aus = None
        for index, (start, end) in enumerate(plan):
            began = time.perf_counter()
            (frames, aus), seconds = ahead.result()
            if timings is not None:
                timings["model"] = timings.get("model", 0.0) + seconds
                timings[MODEL_WAIT] = timings.get(MODEL_WAIT, 0.0) + time.perf_counter() - began
            if index + 1 < len(plan):
                ahead = worker.submit(run, *plan[index + 1])
            if pending_frames is not None:
                overlap = len(pending_frames)
                later = crossfade_weights(overlap)[:, None, None, None]
                frames[:overlap] = (1.0 - later) * pending_frames + later * frames[:overlap]
                later = later[:, :, 0, 0]
                aus[:overlap] = (1.0 - later) * pending_aus + later * aus[:overlap]
            done = (plan[index + 1][0] if index + 1 < len(plan) else end) - start
            for position in range(done):
                yield frames[position], aus[position]
            # Copies: a view would keep this whole window's output alive.
            pending_frames, pending_aus = frames[done:].copy(), aus[done:].copy()
            del frames, aus


def resample_in_time(sequence, num_input, input_fps, output_fps, num_output):
    """Resample a stream of `(crop, au)` frames to another frame rate.

    Output frame j is centred at `(j + 0.5) / output_fps` seconds; it is the
    linear interpolation of the two input frames whose centres surround it
    (the first or last input frame beyond the ends). Holds two input frames.

    Args:
        sequence: iterable of `(crop, au)` at `input_fps` (`num_input` of them).
        num_input: number of input frames.
        input_fps, output_fps: frame rates.
        num_output: frames to yield.

    Yields:
        `(crop, au)` at `output_fps`.
    """
    iterator = iter(sequence)
    if input_fps == output_fps and num_output <= num_input:
        for _, item in zip(range(num_output), iterator):
            yield item
        return
    held = {}
    next_index = 0

    def fetch(index):
        nonlocal next_index
        while next_index <= index:
            held[next_index] = next(iterator)
            held.pop(next_index - 2, None)
            next_index += 1
        return held[index]

    for j in range(num_output):
        position = (j + 0.5) * input_fps / output_fps - 0.5
        position = min(max(position, 0.0), num_input - 1.0)
        lower = int(math.floor(position))
        upper = min(lower + 1, num_input - 1)
        fraction = np.float32(position - lower)
        low_crop, low_au = fetch(lower)
        if fraction == 0 or upper == lower:
            yield low_crop, low_au
            continue
        high_crop, high_au = fetch(upper)
        yield (
            (1 - fraction) * low_crop + fraction * high_crop,
            (1 - fraction) * low_au + fraction * high_au,
        )


def check_options(articulation, fps):
    """Raise `AutalkError` unless `articulation` and `fps` are in range."""
    if not (
        isinstance(articulation, (int, float, np.number))
        and math.isfinite(articulation)
        and 0.0 <= articulation <= MAX_ARTICULATION
    ):
        raise AutalkError(
            f"articulation must be a number from 0 to {MAX_ARTICULATION:g} (1 is as "
            f"predicted), got {articulation!r}."
        )
    if not (
        isinstance(fps, (int, float, np.number)) and math.isfinite(fps) and 1.0 <= fps <= MAX_FPS
    ):
        raise AutalkError(f"fps must be a number from 1 to {MAX_FPS:g}, got {fps!r}.")


def au_csv_text(au_intensity, action_units, fps):
    """The AU curves as an OpenFace-style CSV (", " separators).

    Columns: `frame` (1-based), `timestamp` (seconds), `confidence`,
    `success` (1: every frame shows the photo's face), then `AUxx_r` for
    each AU (0-5). `media.au_labels.read_openface_csv` reads it back.

    Example:
    >>> print(au_csv_text(np.array([[0.5, 1.25]]), (25, 26), 25.0), end="")
    frame, timestamp, confidence, success, AU25_r, AU26_r
    1, 0.000, 1.00, 1, 0.50, 1.25
    """
    header = ["frame", "timestamp", "confidence", "success"] + [
        f"AU{int(unit):02d}_r" for unit in action_units
    ]
    lines = [", ".join(header)]
    for index, row in enumerate(np.asarray(au_intensity, dtype=np.float64)):
        cells = [str(index + 1), f"{index / fps:.3f}", "1.00", "1"]
        cells += [f"{value:.2f}" for value in row]
        lines.append(", ".join(cells))
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------ generate


__all__ = [
    "COMPOSITES",
    "DEFAULT_OVERLAP_FRAMES",
    "DEFAULT_WINDOW_FRAMES",
    "GenerateResult",
    "LONG_AUDIO_S",
    "MODEL_WAIT",
    "STAGES",
    "VIDEO_CRF",
    "VIDEO_PRESET",
    "au_csv_text",
    "check_options",
    "check_windows",
    "crossfade_weights",
    "generate_sequence",
    "resample_in_time",
    "window_plan",
]
