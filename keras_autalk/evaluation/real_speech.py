"""The real-speech benchmark's measures: does the mouth follow a human voice?

Everything here works on what a user gets, the output MP4: its frames
(dlib landmarks) and its audio track. Per video frame:

- **lip opening**: the mean inner-lip gap (landmark pairs 61-67, 62-66,
  63-65) divided by the inter-ocular distance (between the eye centres),
  so it does not depend on the face's size in the frame;
- **RMS envelope**: the speech's root mean square over the frame's period.

Per video:

- **corr**: Pearson correlation of the lip opening with the envelope;
- **pause ratio**: the mean opening above rest (rest = the 5th percentile of
  the opening) in pause frames, divided by the same in speech frames; 0
  when the mouth closes in every pause, 1 for a face that ignores the
  pauses (a static face scores 1 by this definition);
- **lag**: the frame shift at the peak of the cross-correlation of the
  opening with the envelope; positive when the mouth trails the audio;
- **identity**: dlib face-embedding distance of output frames to the photo.

Tracks for it are built from real recordings (`build_track`): speech joined
with pauses of 0.4-0.8 s, the speech/pause label of every sample known by
construction.
"""

import dataclasses
import math
import pathlib

import numpy as np

from keras_autalk.config import AudioConfig, FaceConfig
from keras_autalk.errors import AutalkError

# dlib 68-point indices.
INNER_LIP_PAIRS = ((61, 67), (62, 66), (63, 65))
LEFT_EYE = slice(36, 42)
RIGHT_EYE = slice(42, 48)
# Frames this close to a speech/pause boundary belong to neither class for
# the pause ratio: a mouth needs about two frames (80 ms) to open or close.
BOUNDARY_FRAMES = 2
# A recording is trimmed to where its 20 ms blocks are within 40 dB of its
# loudest block; what is left counts as speech.
TRIM_DB = 40.0
TRACK_LEVEL_DBFS = -20.0


def lip_opening(landmarks):
    """Inner-lip gap over inter-ocular distance, `(..., 68, 2)` -> `(...)`.

    Example:
    >>> points = np.zeros((68, 2)); points[42:48, 0] = 10.0
    >>> points[[61, 62, 63], 1] = 1.0; points[[67, 66, 65], 1] = 3.0
    >>> float(lip_opening(points))
    0.2
    """
    landmarks = np.asarray(landmarks, np.float64)
    gaps = [np.linalg.norm(landmarks[..., upper, :] - landmarks[..., lower, :], axis=-1)
            for upper, lower in INNER_LIP_PAIRS]
    eyes = np.linalg.norm(landmarks[..., LEFT_EYE, :].mean(axis=-2)
                          - landmarks[..., RIGHT_EYE, :].mean(axis=-2), axis=-1)
    return np.mean(gaps, axis=0) / np.maximum(eyes, 1e-9)


def rms_envelope(waveform, num_frames, sample_rate, fps):
    """The RMS of `waveform` over each video frame's period, `(num_frames,)`.

    Frame `i` covers samples `[i, i + 1) * sample_rate / fps`; frames past
    the end of the audio are 0.
    """
    waveform = np.asarray(waveform, np.float64)
    edges = np.round(np.arange(num_frames + 1) * sample_rate / fps).astype(int)
    envelope = np.zeros(num_frames)
    for index in range(num_frames):
        block = waveform[edges[index]:edges[index + 1]]
        if block.size:
            envelope[index] = math.sqrt(float(np.mean(block * block)))
    return envelope


def frame_labels(sample_labels, num_frames, sample_rate, fps):
    """Per-frame speech flags from per-sample ones: speech if half the frame is."""
    sample_labels = np.asarray(sample_labels, bool)
    edges = np.round(np.arange(num_frames + 1) * sample_rate / fps).astype(int)
    labels = np.zeros(num_frames, bool)
    for index in range(num_frames):
        block = sample_labels[edges[index]:edges[index + 1]]
        labels[index] = block.size > 0 and block.mean() >= 0.5
    return labels


def segment_labels(segments, duration_s, fps, silence=("sil", "sp")):
    """Per-frame speech flags from `(start_s, end_s, word)` segments (GRID `.align`)."""
    num_frames = int(math.ceil(duration_s * fps - 1e-9))
    centres = (np.arange(num_frames) + 0.5) / fps
    labels = np.zeros(num_frames, bool)
    for start, end, word in segments:
        if word not in silence:
            labels |= (centres >= start) & (centres < end)
    return labels


def pearson(first, second):
    """Pearson correlation of two series (nan if either is constant)."""
    first = np.asarray(first, np.float64)
    second = np.asarray(second, np.float64)
    first, second = first - first.mean(), second - second.mean()
    denominator = math.sqrt(float(np.sum(first * first) * np.sum(second * second)))
    return float(np.sum(first * second) / denominator) if denominator > 0 else math.nan


def pause_ratio(opening, speech, boundary=BOUNDARY_FRAMES):
    """Mean opening above rest in pauses over the same in speech (see the module docstring).

    Frames within `boundary` frames of a speech/pause change count as
    neither. Returns nan when either class has no frame or the speech
    frames do not open above rest.
    """
    opening = np.asarray(opening, np.float64)
    speech = np.asarray(speech, bool)
    rest = np.percentile(opening, 5)
    change = np.zeros_like(speech)
    flips = np.flatnonzero(speech[1:] != speech[:-1])
    for flip in flips:
        change[max(0, flip + 1 - boundary):flip + 1 + boundary] = True
    pauses, talking = ~speech & ~change, speech & ~change
    if not pauses.any() or not talking.any():
        return math.nan
    above_speech = float(np.mean(opening[talking] - rest))
    if above_speech <= 0:
        return math.nan
    return float(np.mean(opening[pauses] - rest)) / above_speech


def lag_frames(opening, envelope, max_lag=10):
    """Frames by which the mouth trails the audio: the cross-correlation's peak.

    Tries shifts `-max_lag..max_lag`; at shift `k` it correlates
    `opening[t + k]` with `envelope[t]`.

    Example:
    >>> envelope = np.sin(np.arange(100) / 3.0)
    >>> lag_frames(np.roll(envelope, 2), envelope)
    2
    """
    opening = np.asarray(opening, np.float64)
    envelope = np.asarray(envelope, np.float64)
    best, best_score = 0, -math.inf
    for shift in range(-max_lag, max_lag + 1):
        if shift >= 0:
            score = pearson(opening[shift:], envelope[:len(envelope) - shift])
        else:
            score = pearson(opening[:shift], envelope[-shift:])
        if score > best_score:
            best, best_score = shift, score
    return best


@dataclasses.dataclass
class Track:
    """A benchmark track: speech joined with pauses.

    Attributes:
        waveform: float32 mono samples at `sample_rate`.
        sample_rate: Hz.
        speech: bool per sample, True where a recording speaks.
        recordings: the recordings used, in order.
    """

    waveform: np.ndarray
    sample_rate: int
    speech: np.ndarray
    recordings: list

    @property
    def duration(self):
        return len(self.waveform) / self.sample_rate


def trim_recording(waveform, sample_rate, trim_db=TRIM_DB):
    """`waveform` without its leading and trailing parts quieter than `trim_db` below its peak block."""
    block = max(1, int(0.02 * sample_rate))
    count = max(1, len(waveform) // block)
    blocks = np.asarray(waveform[:count * block], np.float64).reshape(count, block)
    level = 10.0 * np.log10(np.mean(blocks * blocks, axis=1) + 1e-12)
    loud = np.flatnonzero(level >= level.max() - trim_db)
    return waveform[loud[0] * block:(loud[-1] + 1) * block]


def build_track(recordings, seed, duration_s=15.0, pause_range_s=(0.4, 0.8),
                config=AudioConfig()):
    """Join real recordings, in a seeded random order, with pauses into one track.

    Each recording is read at `config.sample_rate`, trimmed of its leading
    and trailing silence (`trim_recording`) and set to -20 dBFS RMS; the
    track starts and ends with a pause, and every pause lasts a seeded
    random 0.4-0.8 s. Recordings are added until the track is at least
    `duration_s` long (cycling through them if needed).

    Args:
        recordings: audio file paths (e.g. `klettres.list_recordings`).
        seed: the order and the pauses.
        duration_s: the shortest track.
        pause_range_s: shortest and longest pause.
        config: `AudioConfig` (sample rate).

    Returns:
        A `Track`.

    Example:
    ```python
    track = build_track(klettres.list_recordings(fetch_klettres(), "en"), seed=0)
    ```
    """
    from keras_autalk.data import audio

    recordings = [pathlib.Path(path) for path in recordings]
    if not recordings:
        raise AutalkError("A track needs at least one recording.")
    rng = np.random.default_rng(seed)
    order = list(rng.permutation(len(recordings)))
    rate = config.sample_rate
    pieces, labels, used = [], [], []

    def pause():
        samples = int(round(rng.uniform(*pause_range_s) * rate))
        pieces.append(np.zeros(samples, np.float32))
        labels.append(np.zeros(samples, bool))

    pause()
    total, position = len(pieces[0]), 0
    while total < duration_s * rate:
        path = recordings[order[position % len(order)]]
        position += 1
        speech = trim_recording(audio.load_audio(path, config), rate)
        rms = math.sqrt(float(np.mean(np.square(speech, dtype=np.float64))))
        if rms <= 0:
            continue
        speech = np.clip(speech * (10 ** (TRACK_LEVEL_DBFS / 20) / rms), -1.0, 1.0)
        pieces.append(speech.astype(np.float32))
        labels.append(np.ones(len(speech), bool))
        used.append(path)
        pause()
        total += len(pieces[-2]) + len(pieces[-1])
        if position > 100 * len(order):
            raise AutalkError("The recordings hold no sound to build a track from.")
    return Track(np.concatenate(pieces), rate, np.concatenate(labels), used)


def video_landmarks(frames, config=FaceConfig()):
    """dlib's 68 landmarks in every frame of a talking-head video, `(N, 68, 2)`.

    The head does not move in `generate`'s output (nor in the demo corpus's
    videos), so the face is found once, in the first frame, and the
    landmarks are fitted inside that box in every frame.

    Raises:
        NoFaceError: no face in the first frame.
    """
    from keras_autalk.data import face

    found = face.find_face(frames[0], config)
    return np.stack([face.fit_landmarks(frame, found.box) for frame in frames])


def measure(frames, waveform, sample_rate, fps, speech, photo=None, identity_every=25,
            config=FaceConfig()):
    """The benchmark's measures of one talking-head video.

    Args:
        frames: `(N, H, W, 3)` uint8 video frames.
        waveform: mono audio of the video.
        sample_rate: of `waveform`.
        fps: of the frames.
        speech: `(N,)` bool, True in speech frames.
        photo: the identity photo; None skips the identity measure.
        identity_every: embed every this many frames for the identity.
        config: `FaceConfig` (detector).

    Returns:
        A dict: `corr`, `pause_ratio`, `lag`, `identity` (nan without a
        photo), `frames`, and the per-frame `opening` and `envelope` arrays.
    """
    frames = np.asarray(frames)
    landmarks = video_landmarks(frames, config)
    opening = lip_opening(landmarks)
    envelope = rms_envelope(waveform, len(frames), sample_rate, fps)
    identity = math.nan
    if photo is not None:
        from keras_autalk.evaluation import metrics

        reference = metrics.face_embeddings(photo, aligned=False, config=config)[0]
        chosen = frames[::max(1, identity_every)]
        embeddings = metrics.face_embeddings(list(chosen), aligned=False, config=config)
        identity = float(np.mean(np.linalg.norm(embeddings - reference, axis=-1)))
    return {
        "corr": pearson(opening, envelope),
        "pause_ratio": pause_ratio(opening, speech),
        "lag": lag_frames(opening, envelope),
        "identity": identity,
        "frames": int(len(frames)),
        "opening": opening,
        "envelope": envelope,
    }


def measure_video(path, speech_samples=None, speech_frames=None, photo=None,
                  identity_every=25, config=FaceConfig()):
    """`measure` on an MP4 (or any video): its frames and its own audio track.

    Give the speech labels per sample of the audio track (`speech_samples`,
    e.g. `Track.speech` when the video was made from that track) or per
    frame (`speech_frames`).

    Example:
    ```python
    track = build_track(paths, seed=0)
    # ... generate("astronaut", track_wav, "out.mp4")
    result = measure_video("out.mp4", speech_samples=track.speech, photo=photo)
    ```
    """
    from keras_autalk.data import video

    clip = video.read_video(path, sample_rate=AudioConfig().sample_rate)
    if clip.audio is None:
        raise AutalkError(f"The video '{path}' has no audio track to measure against.")
    if speech_frames is None:
        if speech_samples is None:
            raise AutalkError("measure_video needs the speech labels (per sample or frame).")
        speech_frames = frame_labels(speech_samples, clip.num_frames, clip.sample_rate, clip.fps)
    speech_frames = np.asarray(speech_frames, bool)[:clip.num_frames]
    if len(speech_frames) < clip.num_frames:
        speech_frames = np.pad(speech_frames, (0, clip.num_frames - len(speech_frames)))
    return measure(clip.frames, clip.audio, clip.sample_rate, clip.fps, speech_frames,
                   photo=photo, identity_every=identity_every, config=config)
