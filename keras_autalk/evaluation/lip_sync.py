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
  when the mouth closes in every pause, about 1 for a face that ignores
  the pauses (a still face, whose opening moves only by landmark jitter,
  too; an exactly constant opening gives nan);
- **lag**: the frame shift at the peak of the cross-correlation of the
  opening with the envelope; positive when the mouth trails the audio;
- **identity**: dlib face-embedding distance of output frames to the photo.
"""

import math

import numpy as np

from keras_autalk.config import AudioConfig, FaceConfig
from keras_autalk.errors import AutalkError
from keras_autalk.stats import pearson

# dlib 68-point indices.
INNER_LIP_PAIRS = ((61, 67), (62, 66), (63, 65))


LEFT_EYE = slice(36, 42)


RIGHT_EYE = slice(42, 48)


# Frames this close to a speech/pause boundary belong to neither class for
# the pause ratio: a mouth needs about two frames (80 ms) to open or close.
BOUNDARY_FRAMES = 2


def lip_opening(landmarks):
    """Inner-lip gap over inter-ocular distance, `(..., 68, 2)` -> `(...)`.

    Example:
    >>> points = np.zeros((68, 2)); points[42:48, 0] = 10.0
    >>> points[[61, 62, 63], 1] = 1.0; points[[67, 66, 65], 1] = 3.0
    >>> float(lip_opening(points))
    0.2
    """
    landmarks = np.asarray(landmarks, np.float64)
    gaps = [
        np.linalg.norm(landmarks[..., upper, :] - landmarks[..., lower, :], axis=-1)
        for upper, lower in INNER_LIP_PAIRS
    ]
    eyes = np.linalg.norm(
        landmarks[..., LEFT_EYE, :].mean(axis=-2) - landmarks[..., RIGHT_EYE, :].mean(axis=-2),
        axis=-1,
    )
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
        block = waveform[edges[index] : edges[index + 1]]
        if block.size:
            envelope[index] = math.sqrt(float(np.mean(block * block)))
    return envelope


def frame_labels(sample_labels, num_frames, sample_rate, fps):
    """Per-frame speech flags from per-sample ones: speech if half the frame is."""
    sample_labels = np.asarray(sample_labels, bool)
    edges = np.round(np.arange(num_frames + 1) * sample_rate / fps).astype(int)
    labels = np.zeros(num_frames, bool)
    for index in range(num_frames):
        block = sample_labels[edges[index] : edges[index + 1]]
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
        change[max(0, flip + 1 - boundary) : flip + 1 + boundary] = True
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
            score = pearson(opening[shift:], envelope[: len(envelope) - shift])
        else:
            score = pearson(opening[:shift], envelope[-shift:])
        if score > best_score:
            best, best_score = shift, score
    return best


def video_landmarks(frames, config=FaceConfig()):
    """dlib's 68 landmarks in every frame of a talking-head video, `(N, 68, 2)`.

    The head does not move in `generate`'s output (nor in the demo corpus's
    videos), so the face is found once, in the first frame, and the
    landmarks are fitted inside that box in every frame.

    Raises:
        NoFaceError: no face in the first frame.
    """
    from keras_autalk.media import face

    found = face.find_face(frames[0], face.without_usability_limits(config))
    return np.stack([face.fit_landmarks(frame, found.box) for frame in frames])


_PHOTO_EMBEDDINGS = {}


def _photo_embedding(photo, config):
    """The photo's face embedding, computed once per photo (a benchmark measures many videos)."""
    from keras_autalk.evaluation import metrics

    photo = np.ascontiguousarray(photo)
    key = (photo.shape, hash(photo.tobytes()), config)
    if key not in _PHOTO_EMBEDDINGS:
        _PHOTO_EMBEDDINGS[key] = metrics.face_embeddings(photo, aligned=False, config=config)[0]
    return _PHOTO_EMBEDDINGS[key]


def measure(
    frames, waveform, sample_rate, fps, speech, photo=None, identity_every=25, config=FaceConfig()
):
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

        reference = _photo_embedding(photo, config)
        step = max(1, identity_every)
        # The landmarks fitted above: no second face search per frame.
        embeddings = metrics.face_embeddings(
            list(frames[::step]), aligned=False, config=config, landmarks=landmarks[::step]
        )
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


def measure_video(
    path,
    speech_samples=None,
    speech_frames=None,
    photo=None,
    identity_every=25,
    speech_waveform=None,
    config=FaceConfig(),
):
    """`measure` on an MP4 (or any video): its frames and its own audio track.

    Give the speech labels per sample of the audio track (`speech_samples`,
    e.g. `Track.speech` when the video was made from that track) or per
    frame (`speech_frames`). `speech_waveform` (at 16 kHz), if given,
    replaces the video's own audio for the RMS envelope: the clean track
    of a video made from a degraded copy, so that a mouth is scored against
    the speech and not against a room's reverberation or the noise.

    Example:
    ```python
    track = build_track(paths, seed=0)
    # ... generate("astronaut", track_wav, "out.mp4")
    result = measure_video("out.mp4", speech_samples=track.speech, photo=photo)
    ```
    """
    from keras_autalk.media import video

    clip = video.read_video(path, sample_rate=AudioConfig().sample_rate)
    if clip.audio is None:
        raise AutalkError(f"The video '{path}' has no audio track to measure against.")
    if speech_frames is None:
        if speech_samples is None:
            raise AutalkError("measure_video needs the speech labels (per sample or frame).")
        speech_frames = frame_labels(speech_samples, clip.num_frames, clip.sample_rate, clip.fps)
    sound = clip.audio if speech_waveform is None else np.asarray(speech_waveform, np.float32)
    return measure(
        clip.frames,
        sound,
        clip.sample_rate,
        clip.fps,
        _fit_length(speech_frames, clip.num_frames),
        photo=photo,
        identity_every=identity_every,
        config=config,
    )


def _fit_length(labels, num_frames):
    """`labels` cut or padded (with pause) to `num_frames`."""
    labels = np.asarray(labels, bool)[:num_frames]
    return np.pad(labels, (0, num_frames - len(labels)))
