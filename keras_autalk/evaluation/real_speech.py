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

Tracks for it are built from real recordings (`build_track`): speech joined
with pauses of 0.4-0.8 s, the speech/pause label of every sample known by
construction. `apply_condition` turns a track into a phone-like, noisy or
reverberant version of itself (`CONDITIONS`), with the same labels.

`run_benchmark` (`autalk evaluate --real-speech`) puts it together: tracks
from klettres-data recordings per language, in every condition asked for,
`generate` with every model and photo, the measures of every MP4, a
reference row from the demo corpus's held-out ground-truth videos, and
`real_speech.json` / `real_speech.md`.
"""

import dataclasses
import math
import pathlib

import numpy as np

from keras_autalk.config import AudioConfig, FaceConfig
from keras_autalk.errors import AutalkError
from keras_autalk.files import atomic_output

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
# ... and at least this far above its noise floor (the 10th-percentile block).
FLOOR_MARGIN_DB = 15.0
TRACK_LEVEL_DBFS = -20.0
# Shortest and longest pause between two recordings of a track, seconds.
PAUSE_RANGE_S = (0.4, 0.8)


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


def speech_bounds(waveform, sample_rate, trim_db=TRIM_DB, floor_margin_db=FLOOR_MARGIN_DB):
    """First and last sample `(start, end)` of the sound in a recording, in whole 20 ms blocks.

    A block is sound when its level is within `trim_db` of the loudest block
    and at least `floor_margin_db` above the recording's noise floor (its
    10th-percentile block), so a noisy room's background is not taken for
    speech.

    Example:
    >>> tone = np.sin(np.arange(3200) / 5.0)
    >>> speech_bounds(np.concatenate([np.zeros(1600), tone, np.zeros(800)]), 16000)
    (1600, 4800)
    """
    from keras_autalk.media import audio_backends

    block = max(1, int(round(audio_backends.LEVEL_BLOCK_S * sample_rate)))
    level = 10.0 * np.log10(audio_backends.block_power(waveform, sample_rate) + 1e-12)
    threshold = max(level.max() - trim_db, np.percentile(level, 10) + floor_margin_db)
    loud = np.flatnonzero(level >= min(threshold, level.max()))
    return int(loud[0] * block), int((loud[-1] + 1) * block)


def trim_recording(waveform, sample_rate, trim_db=TRIM_DB):
    """`waveform` without its leading and trailing silence or background (`speech_bounds`).

    Example:
    >>> tone = np.sin(np.arange(3200) / 5.0)
    >>> len(trim_recording(np.concatenate([np.zeros(1600), tone, np.zeros(800)]), 16000))
    3200
    """
    start, end = speech_bounds(waveform, sample_rate, trim_db)
    return waveform[start:end]


def _track_gain(speech):
    """The gain that sets `speech` to `TRACK_LEVEL_DBFS` RMS (0 for digital silence)."""
    rms = math.sqrt(float(np.mean(np.square(speech, dtype=np.float64)))) if len(speech) else 0.0
    return 10 ** (TRACK_LEVEL_DBFS / 20) / rms if rms > 0 else 0.0


def build_track(recordings, seed, duration_s=15.0, pause_range_s=PAUSE_RANGE_S,
                config=AudioConfig()):
    """Join real recordings, in a seeded random order, with pauses into one track.

    Each recording is read at `config.sample_rate`, cut to its sound
    (`speech_bounds`) and set to -20 dBFS RMS; the track starts and ends
    with a pause, and every pause lasts a seeded random 0.4-0.8 s. A pause
    holds the background of the recording before it (what was cut off,
    at the same gain, repeated as needed; the opening pause that of the
    first recording), so pauses sound like the room they were recorded in
    rather than digital silence. Recordings are added until the track is
    at least `duration_s` long (cycling through them if needed).

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
    from keras_autalk.media import audio

    recordings = [pathlib.Path(path) for path in recordings]
    if not recordings:
        raise AutalkError("A track needs at least one recording.")
    rng = np.random.default_rng(seed)
    order = list(rng.permutation(len(recordings)))
    rate = config.sample_rate
    pieces, labels, used = [], [], []

    def pause(background):
        samples = int(round(rng.uniform(*pause_range_s) * rate))
        if len(background) >= 160:
            sound = np.resize(background, samples).astype(np.float32)
        else:
            sound = np.zeros(samples, np.float32)
        pieces.append(sound)
        labels.append(np.zeros(samples, bool))

    total, position = 0, 0
    while total < duration_s * rate:
        path = recordings[order[position % len(order)]]
        position += 1
        if position > 100 * len(order):
            raise AutalkError("The recordings hold no sound to build a track from.")
        waveform = audio.load_audio(path, config)
        start, end = speech_bounds(waveform, rate)
        gain = _track_gain(waveform[start:end])
        if gain == 0:
            continue
        background = np.clip(np.concatenate([waveform[:start], waveform[end:]]) * gain,
                             -1.0, 1.0)
        if not pieces:
            pause(background)  # the opening pause sounds like the first recording's room
        speech = np.clip(waveform[start:end] * gain, -1.0, 1.0)
        pieces.append(speech.astype(np.float32))
        labels.append(np.ones(len(speech), bool))
        used.append(path)
        pause(background)
        total = sum(len(piece) for piece in pieces)
    return Track(np.concatenate(pieces), rate, np.concatenate(labels), used)


# ------------------------------------------------------------------ recording conditions
# The conditions `apply_condition` knows, in table order; "clean" is the track as built.
CONDITIONS = ("clean", "phone", "noisy", "reverb")
# What each does, for the tables and the JSON.
CONDITION_DESCRIPTIONS = {
    "clean": "the track as built",
    "phone": "8 kHz phone audio: resampled to 8 kHz and back, 300 Hz high-pass",
    "noisy": "pink-ish noise at 10 dB SNR to the speech",
    "reverb": "a synthetic room, RT60 0.5 s",
}
PHONE_SAMPLE_RATE = 8000
PHONE_HIGHPASS_HZ = 300.0
NOISY_SNR_DB = 10.0
REVERB_RT60_S = 0.5


def check_conditions(conditions):
    """`conditions` as a tuple of known, distinct names (`CONDITIONS`).

    Raises:
        AutalkError: none, an unknown one or one given twice, in one sentence.

    Example:
    >>> check_conditions(["clean", "reverb"])
    ('clean', 'reverb')
    """
    if isinstance(conditions, str):
        conditions = (conditions,)
    conditions = tuple(str(name) for name in conditions)
    if not conditions:
        raise AutalkError("The benchmark needs at least one condition.")
    for name in conditions:
        if name not in CONDITIONS:
            raise AutalkError(f"The condition '{name}' is unknown; the conditions are "
                              + ", ".join(CONDITIONS[:-1]) + f" and {CONDITIONS[-1]}.")
    repeated = [name for name in CONDITIONS if conditions.count(name) > 1]
    if repeated:
        raise AutalkError(f"The condition '{repeated[0]}' is given twice.")
    return conditions


def _within_full_scale(waveform):
    """`waveform` scaled down, when needed, so that its peak is at most 1 (no clipping)."""
    peak = float(np.max(np.abs(waveform), initial=0.0))
    return (waveform / peak if peak > 1.0 else waveform).astype(np.float32)


def apply_condition(track, name, seed):
    """The waveform of `track` as if recorded in condition `name`, float32 `(n,)`.

    The speech labels (`track.speech`) stay those of the track: the
    condition changes the sound, not where the speech is. The output has
    the track's length and sample rate and lies within [-1, 1] (scaled
    down, never clipped, where the condition raised its peak past 1).

    | condition | what it does |
    | --- | --- |
    | `clean` | the track's own samples |
    | `phone` | 8 kHz phone audio: resampled to 8 kHz and back, then a 300 Hz high-pass |
    | `noisy` | pink-ish noise at 10 dB SNR to the speech |
    | `reverb` | convolution with a synthetic room of RT60 0.5 s |

    phone: `audio_backends.resample` both ways (nothing above 4 kHz is
    left), then a 4th-order Butterworth high-pass run forwards and
    backwards (no delay). noisy: `audio_augment.pink_noise`, its power over
    the speech samples (`track.speech`) a tenth of the speech's. reverb:
    `audio_augment.room_impulse_response` (a unit direct path and a tail
    of about the same energy, 60 dB down after 0.5 s) through
    `audio_augment.convolve`.

    Args:
        track: a `Track` (`build_track`).
        name: one of `CONDITIONS`.
        seed: int; the noise and the room are drawn from it (and the
            condition), so the same seed gives the same waveform.

    Returns:
        float32 samples at `track.sample_rate`, as many as the track's.

    Raises:
        AutalkError: an unknown condition.

    Example:
    >>> rate = 16000
    >>> track = Track(np.zeros(rate, np.float32), rate, np.zeros(rate, bool), [])
    >>> track.waveform[:4000] = 0.5 * np.sin(np.arange(4000) / 3.0)
    >>> track.speech[:4000] = True
    >>> noisy = apply_condition(track, "noisy", seed=0)
    >>> noise = noisy - track.waveform
    >>> speech_power = np.mean(track.waveform[:4000] ** 2)
    >>> round(float(10 * np.log10(speech_power / np.mean(noise[:4000] ** 2))), 2)
    10.0
    """
    check_conditions([name])
    waveform = np.asarray(track.waveform, np.float32)
    if name == "clean":
        return waveform.copy()
    rate = int(track.sample_rate)
    if name == "phone":
        from scipy import signal

        from keras_autalk.media import audio_backends

        narrow = audio_backends.resample(waveform, rate, PHONE_SAMPLE_RATE)
        back = audio_backends.resample(narrow, PHONE_SAMPLE_RATE, rate)[:len(waveform)]
        high_pass = signal.butter(4, PHONE_HIGHPASS_HZ, "highpass", fs=rate, output="sos")
        return _within_full_scale(signal.sosfiltfilt(high_pass, back.astype(np.float64)))

    import tensorflow as tf

    from keras_autalk.datasets import audio_augment

    # One stateless seed per (track seed, condition): noisy and reverb draw apart.
    tf_seed = tf.constant([int(seed), CONDITIONS.index(name)], tf.int64)
    if name == "noisy":
        white = tf.random.stateless_normal([len(waveform)], tf_seed)
        pink = audio_augment.pink_noise(white).numpy()
        speech = np.asarray(track.speech, bool)
        if not speech.any():  # no speech: the level of the whole track
            speech = np.ones(len(waveform), bool)
        speech_power = float(np.mean(np.square(waveform[speech], dtype=np.float64)))
        noise_power = float(np.mean(np.square(pink[speech], dtype=np.float64)))
        scale = math.sqrt(speech_power / noise_power * 10.0 ** (-NOISY_SNR_DB / 10.0))
        return _within_full_scale(waveform.astype(np.float64) + scale * pink)
    # name == "reverb"
    room = audio_augment.room_impulse_response(tf_seed, REVERB_RT60_S, rate)
    return _within_full_scale(audio_augment.convolve(tf.constant(waveform), room).numpy())


def video_landmarks(frames, config=FaceConfig()):
    """dlib's 68 landmarks in every frame of a talking-head video, `(N, 68, 2)`.

    The head does not move in `generate`'s output (nor in the demo corpus's
    videos), so the face is found once, in the first frame, and the
    landmarks are fitted inside that box in every frame.

    Raises:
        NoFaceError: no face in the first frame.
    """
    from keras_autalk.media import face

    found = face.find_face(frames[0], config)
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

        reference = _photo_embedding(photo, config)
        step = max(1, identity_every)
        # The landmarks fitted above: no second face search per frame.
        embeddings = metrics.face_embeddings(list(frames[::step]), aligned=False,
                                             config=config, landmarks=landmarks[::step])
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
                  identity_every=25, speech_waveform=None, config=FaceConfig()):
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
    return measure(clip.frames, sound, clip.sample_rate, clip.fps,
                   _fit_length(speech_frames, clip.num_frames), photo=photo,
                   identity_every=identity_every, config=config)


def _fit_length(labels, num_frames):
    """`labels` cut or padded (with pause) to `num_frames`."""
    labels = np.asarray(labels, bool)[:num_frames]
    return np.pad(labels, (0, num_frames - len(labels)))


# ------------------------------------------------------------------ the benchmark
DEFAULT_PHOTOS = ("grace_hopper", "astronaut")
DEFAULT_LANGUAGES = ("en", "en_GB")
# Where each named photo comes from (`data.photos`); grace_hopper is also the
# photo `autalk demo` animates (`generate.DEMO_PHOTO`).
PHOTO_SOURCES = {
    "grace_hopper": "matplotlib's grace_hopper, the bundled photo",
    "astronaut": "scikit-image's astronaut",
}
REFERENCE = "ground truth"
# (key, column title, format) of the tables, in order.
MEASURES = (
    ("corr", "corr", "{:.2f}"),
    ("pause_ratio", "pause ratio", "{:.2f}"),
    ("lag", "lag (frames)", "{:+.1f}"),
    ("identity", "identity", "{:.3f}"),
)
# The targets on the English tracks, for every photo.
TARGETS = {
    "corr": (lambda value: value >= 0.6, "corr >= 0.6"),
    "pause_ratio": (lambda value: value <= 0.4, "pause ratio <= 0.4"),
    "lag": (lambda value: abs(value) <= 1.0, "-1 <= lag <= 1 frame"),
    "identity": (lambda value: value < 0.4, "identity < 0.4"),
}


def missed_targets(means):
    """The targets (`TARGETS`) a row of mean measures misses; nan misses.

    Example:
    >>> missed_targets({"corr": 0.7, "pause_ratio": 0.5, "lag": -1.0, "identity": 0.2})
    ['pause ratio <= 0.4']
    """
    missed = []
    for key, (meets, text) in TARGETS.items():
        value = means.get(key, math.nan)
        if value is None or not math.isfinite(value) or not meets(value):
            missed.append(text)
    return missed


def load_benchmark_photo(name_or_path):
    """`(label, uint8 RGB array)` of a bundled photo name or a photo file.

    Raises:
        InputFileError: not a bundled name and not a readable image.

    Example:
    >>> load_benchmark_photo("astronaut")[1].shape
    (512, 512, 3)
    """
    from keras_autalk.media import image, photos

    if str(name_or_path) in photos.PHOTO_NAMES:
        return str(name_or_path), photos.load_photo(str(name_or_path))
    path = pathlib.Path(name_or_path)
    if not path.exists() and not path.suffix:
        raise AutalkError(f"The photo '{name_or_path}' is neither a bundled photo "
                          f"({', '.join(photos.PHOTO_NAMES)}) nor a file.")
    return path.stem, image.load_image(path)


def reference_videos(corpus_root, count):
    """`count` held-out utterances of a demo corpus root, taking each speaker in turn.

    Args:
        corpus_root: the folder `autalk prepare --corpus demo --root ROOT`
            rendered (it holds `demo_corpus.json`).
        count: how many (all of them if the split has fewer).

    Returns:
        A list of dicts: "utterance_id", "speaker", "video" (`.mpg`), "align".

    Raises:
        AutalkError: not a demo corpus root, no test utterance, or a missing file.
    """
    import json

    root = pathlib.Path(corpus_root)
    manifest = root / "demo_corpus.json"
    if not manifest.is_file():
        raise AutalkError(f"The reference corpus '{root}' has no demo_corpus.json; give the "
                          "--root folder of `autalk prepare --corpus demo`.")
    try:
        utterances = [u for u in json.loads(manifest.read_text())["utterances"]
                      if u.get("split") == "test"]
    except (ValueError, KeyError, TypeError, AttributeError):
        raise AutalkError(f"'{manifest}' is not a demo corpus manifest.") from None
    if not utterances:
        raise AutalkError(f"The reference corpus '{root}' has no held-out (test) utterance.")
    # One utterance of each speaker in turn, so that a few span every voice
    # (the held-out speaker has many more test utterances than the others).
    by_speaker = {}
    for utterance in utterances:
        by_speaker.setdefault(utterance["speaker"], []).append(utterance)
    queues = list(by_speaker.values())
    turns = [queue[depth] for depth in range(max(map(len, queues)))
             for queue in queues if depth < len(queue)]
    chosen = []
    for utterance in turns[:count]:
        folder = root / utterance["speaker"]
        entry = {"utterance_id": utterance["id"], "speaker": utterance["speaker"],
                 "video": folder / f"{utterance['id']}.mpg",
                 "align": folder / "align" / f"{utterance['id']}.align"}
        for key in ("video", "align"):
            if not entry[key].is_file():
                raise AutalkError(f"The reference corpus '{root}' lacks '{entry[key]}'.")
        chosen.append(entry)
    return chosen


def measure_reference(entry, fps=AudioConfig().fps, config=FaceConfig()):
    """`measure_video` on one demo-corpus video, speech frames from its `.align` words.

    There is no photo separate from the video, so identity is not measured (nan).
    """
    from keras_autalk.corpora import grid

    segments = grid.read_align(entry["align"])
    speech = segment_labels(segments, max(end for _, end, _ in segments), fps)
    return measure_video(entry["video"], speech_frames=speech, config=config)


def _file_label(text):
    import re

    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(text)).strip("_") or "model"


def _condition_suffix(condition):
    """The file-name suffix of a condition: none for clean, `_phone` ... otherwise."""
    return "" if condition == "clean" else f"_{condition}"


def _means(rows):
    """Mean of each measure over `rows` (nan where every row is nan)."""
    means = {}
    for key, _, _ in MEASURES:
        values = np.array([row[key] for row in rows], np.float64)
        finite = values[np.isfinite(values)]
        means[key] = float(finite.mean()) if finite.size else math.nan
    return means


def _cell(value, fmt):
    return "—" if value is None or not math.isfinite(value) else fmt.format(value)


def benchmark_markdown(report):
    """The report's tables: one per photo, one per language, the reference row in each.

    A row is a model, a language and a condition (`CONDITIONS`); the
    targets judge the clean English rows only.

    Args:
        report: the dict `run_benchmark` returns (and writes as JSON).

    Returns:
        Markdown text.
    """
    reference = report.get("reference")

    def header(judged):
        titles = ["model", "language", "condition", "tracks"] + [t for _, t, _ in MEASURES]
        rules = ["---", "---", "---", "---:"] + ["---:" for _ in MEASURES]
        if judged:
            titles, rules = titles + ["targets"], rules + ["---"]
        return ["| " + " | ".join(titles) + " |", "| " + " | ".join(rules) + " |"]

    def line(name, language, condition, count, means, judged, verdict=True):
        cells = [name, language, condition, str(count)]
        cells += [_cell(means.get(key), fmt) for key, _, fmt in MEASURES]
        if judged:
            missed = missed_targets(means)
            cells.append("" if not verdict else "met" if not missed
                         else "missed: " + ", ".join(missed))
        return "| " + " | ".join(cells) + " |"

    def reference_line(judged):
        if not reference:
            return []
        return [line(f"{REFERENCE} (demo corpus)", "en (espeak-ng)", "clean",
                     f"{reference['utterances']} videos", reference["mean"], judged,
                     verdict=False)]

    settings = report["settings"]
    conditions = settings.get("conditions", ["clean"])
    first, count = settings["seed"], settings["tracks_per_language"]
    seeds = f"seed {first}" if count == 1 else f"seeds {first}-{first + count - 1}"
    lines = [
        "Real-speech benchmark: klettres-data recordings joined with pauses of "
        f"{settings['pause_range_s'][0]}-{settings['pause_range_s'][1]} s into tracks of "
        f"about {settings['duration_s']:g} s ({settings['tracks_per_language']} per "
        f"language, {seeds}); measured on the output MP4 frame by frame with dlib landmarks.",
        "",
        "Conditions (the same tracks, the same speech labels): "
        + "; ".join(f"{name}: {CONDITION_DESCRIPTIONS[name]}" for name in conditions) + ".",
        "",
    ]
    if report.get("command"):
        lines += [f"Command: `{report['command']}`", ""]
    for photo in report["photos"]:
        source = PHOTO_SOURCES.get(photo["name"], photo["name"])
        lines += [f"### Photo: {photo['name']} ({source})", ""] + header(True)
        for entry in report["means"]:
            if entry["photo"] == photo["name"]:
                condition = entry.get("condition", "clean")
                judged = entry["language"] in report["english"] and condition == "clean"
                lines.append(line(entry["model"], entry["language"], condition,
                                  entry["tracks"], entry, True, verdict=judged))
        lines += reference_line(True) + [""]
    lines += ["### Per language (mean over the photos)", ""] + header(False)
    for entry in report["language_means"]:
        lines.append(line(entry["model"], entry["language"], entry.get("condition", "clean"),
                          entry["tracks"], entry, False))
    lines += reference_line(False) + [""]
    lines += [
        "corr: Pearson r of the lip opening with the RMS envelope per frame of the clean track "
        "(in every condition, so a mouth is scored against the speech, not the room or the "
        "noise; higher is better). pause ratio: mean lip opening "
        "above rest in pauses over the same in speech (0: the mouth closes in every pause; 1: "
        "it ignores them). lag: frames by which the mouth trails the audio (cross-correlation "
        "peak). identity: dlib face-embedding distance of the output frames to the photo "
        "(lower is better).",
        "",
        "Targets (clean English tracks, every photo): "
        + ", ".join(text for _, text in TARGETS.values()) + "; the targets column judges "
        "the clean English rows only (the other conditions show how a model copes, without "
        "targets). English (en, en_GB) is used only for evaluation, never for training.",
    ]
    if reference:
        lines += [
            "",
            f"{REFERENCE} (demo corpus): the same measures on {reference['utterances']} held-out "
            "videos of the demo corpus (espeak-ng speech), speech frames from their `.align` "
            "word timings; no identity (those videos have no separate photo).",
        ]
    return "\n".join(lines) + "\n"


def run_benchmark(models, out_dir, photos=DEFAULT_PHOTOS, languages=DEFAULT_LANGUAGES,
                  tracks_per_language=1, duration_s=15.0, seed=0, reference_corpus=None,
                  reference_utterances=8, identity_every=25, keep_videos=False,
                  recordings_dir=None, command=None, conditions=("clean",), log=print):
    """The real-speech benchmark: real recordings -> `generate` -> the measures, as tables.

    For every language, `tracks_per_language` tracks are built from its
    klettres-data recordings (`build_track`, seeds `seed`, `seed + 1`, ...);
    each is turned into every one of `conditions` (`apply_condition`,
    seeded with the track's seed; the speech labels stay the track's) and
    written as a WAV to `out_dir/tracks/` (`en_seed0.wav` clean,
    `en_seed0_phone.wav` ...). Every model animates every photo with every
    track in every condition (`generate.generate`, MP4s in `out_dir/videos/`,
    deleted after measuring unless `keep_videos`), and each MP4 is measured
    (`measure_video`). With `reference_corpus`, the held-out ground-truth
    videos of the demo corpus are measured the same way (`REFERENCE` row).
    Writes `out_dir/real_speech.json` (every row, the means, the settings)
    and `out_dir/real_speech.md` (`benchmark_markdown`), atomically.

    Every input is checked before the long work starts.

    Args:
        models: `{row name: model}`; a model is "demo" (the bundled one), a
            pretrained folder, a training run's `talker.keras`, or a loaded
            `AUTalker`.
        out_dir: output folder (created if its parent exists).
        photos: bundled photo names (`data.photos`) or photo files.
        languages: klettres-data languages (`klettres.list_recordings`).
        tracks_per_language: tracks per language.
        duration_s: the shortest track, in seconds (at least 1).
        seed: the first track's seed.
        reference_corpus: a demo corpus root (`autalk prepare --corpus demo
            --root ROOT`), or None for no reference row.
        reference_utterances: held-out videos measured for the reference.
        identity_every: embed every n-th output frame for the identity.
        keep_videos: keep the MP4s.
        recordings_dir: the klettres recordings (default: `fetch_klettres()`).
        command: the command line shown in the Markdown (None: none shown).
        conditions: recording conditions (`CONDITIONS`), each a row of its own.
        log: `print`-like, one line per video.

    Returns:
        The report dict written to `real_speech.json`.

    Raises:
        AutalkError: bad input (unknown language, photo or condition, a photo
            without a face, no reference corpus, a missing model), in one sentence.

    Example:
    ```python
    report = run_benchmark({"demo": "demo"}, "runs/real_speech",
                           reference_corpus="demo_corpus",
                           conditions=("clean", "phone", "noisy", "reverb"))
    print(open("runs/real_speech/real_speech.md").read())
    ```
    """
    import json
    import time

    import soundfile

    from keras_autalk.inference import generate as generate_module
    from keras_autalk.media import face
    from keras_autalk.corpora import klettres
    from keras_autalk.evaluation import evaluate as evaluation

    started = time.perf_counter()
    if not models:
        raise AutalkError("The benchmark needs at least one model.")
    if int(tracks_per_language) < 1:
        raise AutalkError("The number of tracks per language must be at least 1.")
    if not duration_s >= 1.0:
        raise AutalkError(f"The track duration must be at least 1 second, got {duration_s}.")
    if int(identity_every) < 1:
        raise AutalkError("identity_every must be at least 1.")
    if not languages:
        raise AutalkError("The benchmark needs at least one language.")
    if not photos:
        raise AutalkError("The benchmark needs at least one photo.")
    repeated = [language for language in set(languages) if list(languages).count(language) > 1]
    if repeated:
        raise AutalkError(f"The language '{repeated[0]}' is given twice.")
    conditions = check_conditions(conditions)
    out_dir = evaluation.check_out_dir(out_dir)
    references = (reference_videos(reference_corpus, reference_utterances)
                  if reference_corpus is not None else [])
    loaded_photos = {}
    for name_or_path in photos:
        label, photo = load_benchmark_photo(name_or_path)
        if label in loaded_photos:
            raise AutalkError(f"Two photos would be called '{label}'.")
        face.find_face(photo)  # no face: one sentence now, not after the first video
        loaded_photos[label] = photo
    recordings_dir = pathlib.Path(recordings_dir or klettres.fetch_klettres())
    recordings = {language: klettres.list_recordings(recordings_dir, language)
                  for language in languages}
    talkers = {}
    for name, model in models.items():
        is_spec = isinstance(model, (str, pathlib.PurePath))
        talkers[str(name)] = evaluation.load_talker(model) if is_spec else model

    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "tracks").mkdir(exist_ok=True)
    tracks = []
    for language in languages:
        for index in range(int(tracks_per_language)):
            track_seed = int(seed) + index
            track = build_track(recordings[language], track_seed, duration_s)
            for condition in conditions:
                waveform = apply_condition(track, condition, track_seed)
                wav = out_dir / "tracks" / (f"{_file_label(language)}_seed{track_seed}"
                                            f"{_condition_suffix(condition)}.wav")
                with atomic_output(wav, "track") as temporary:
                    soundfile.write(temporary, waveform, track.sample_rate, subtype="FLOAT",
                                    format="WAV")
                tracks.append({"language": language, "seed": track_seed,
                               "condition": condition, "track": track, "wav": wav})
                log(f"track {wav.name}: {track.duration:.1f} s, "
                    f"{track.speech.mean() * 100:.0f}% speech, {condition}, recordings: "
                    + ", ".join(pathlib.Path(path).stem for path in track.recordings))

    videos_dir = out_dir / "videos"
    videos_dir.mkdir(exist_ok=True)
    rows = []
    total = len(talkers) * len(loaded_photos) * len(tracks)
    for model_name, talker in talkers.items():
        for photo_name, photo in loaded_photos.items():
            for entry in tracks:
                began = time.perf_counter()
                mp4 = videos_dir / (f"{_file_label(model_name)}_{_file_label(photo_name)}_"
                                    f"{_file_label(entry['language'])}_seed{entry['seed']}"
                                    f"{_condition_suffix(entry['condition'])}.mp4")
                generate_module.generate(photo, entry["wav"], mp4, model=talker, progress=False)
                generated = time.perf_counter()
                result = measure_video(mp4, speech_samples=entry["track"].speech, photo=photo,
                                       identity_every=identity_every,
                                       speech_waveform=entry["track"].waveform)
                if not keep_videos:
                    mp4.unlink()
                row = {"model": model_name, "photo": photo_name, "language": entry["language"],
                       "condition": entry["condition"], "seed": entry["seed"],
                       **{key: result[key] for key, _, _ in MEASURES},
                       "frames": result["frames"],
                       "seconds_generate": round(generated - began, 1),
                       "seconds_measure": round(time.perf_counter() - generated, 1)}
                rows.append(row)
                log(f"[{len(rows)}/{total}] {model_name} / {photo_name} / {entry['language']} "
                    f"seed {entry['seed']} {entry['condition']}: corr {row['corr']:.2f}, "
                    f"pause ratio {row['pause_ratio']:.2f}, lag {row['lag']:+d}, identity "
                    f"{row['identity']:.3f} ({time.perf_counter() - began:.0f} s)")
    if not keep_videos and not any(videos_dir.iterdir()):
        videos_dir.rmdir()

    reference = None
    if references:
        reference_rows = []
        for index, entry in enumerate(references, 1):
            result = measure_reference(entry)
            reference_rows.append({"utterance_id": entry["utterance_id"],
                                   "speaker": entry["speaker"],
                                   **{key: result[key] for key, _, _ in MEASURES},
                                   "frames": result["frames"]})
            log(f"[reference {index}/{len(references)}] {entry['speaker']}/"
                f"{entry['utterance_id']}: corr {result['corr']:.2f}, pause ratio "
                f"{result['pause_ratio']:.2f}, lag {result['lag']:+d}")
        reference = {"corpus": str(reference_corpus), "utterances": len(reference_rows),
                     "mean": _means(reference_rows), "rows": reference_rows}

    means, language_means = [], []
    for model_name in talkers:
        for photo_name in loaded_photos:
            for language in languages:
                for condition in conditions:
                    key = (model_name, photo_name, language, condition)
                    chosen = [row for row in rows if (row["model"], row["photo"],
                                                      row["language"], row["condition"]) == key]
                    means.append({"model": model_name, "photo": photo_name,
                                  "language": language, "condition": condition,
                                  "tracks": len(chosen), **_means(chosen)})
        for language in languages:
            for condition in conditions:
                chosen = [row for row in rows if (row["model"], row["language"], row["condition"])
                          == (model_name, language, condition)]
                language_means.append({"model": model_name, "language": language,
                                       "condition": condition,
                                       "tracks": len(chosen) // max(1, len(loaded_photos)),
                                       **_means(chosen)})
    english = [language for language in languages if language in klettres.TRAINING_EXCLUDED]
    report = {
        "benchmark": "real speech (klettres-data)",
        "command": command,
        "settings": {"duration_s": float(duration_s),
                     "tracks_per_language": int(tracks_per_language),
                     "seed": int(seed), "pause_range_s": list(PAUSE_RANGE_S),
                     "conditions": list(conditions),
                     "identity_every": int(identity_every), "languages": list(languages),
                     "models": {name: (str(model) if isinstance(model, (str, pathlib.PurePath))
                                       else type(model).__name__)
                                for name, model in models.items()}},
        "photos": [{"name": name, "source": PHOTO_SOURCES.get(name, "file")}
                   for name in loaded_photos],
        "conditions": [{"name": name, "description": CONDITION_DESCRIPTIONS[name]}
                       for name in conditions],
        "english": english,
        "targets": [text for _, text in TARGETS.values()],
        "tracks": [{"language": entry["language"], "seed": entry["seed"],
                    "condition": entry["condition"], "wav": str(entry["wav"]),
                    "duration_s": round(entry["track"].duration, 3),
                    "speech_fraction": round(float(entry["track"].speech.mean()), 3),
                    "recordings": [str(pathlib.Path(path).relative_to(recordings_dir))
                                   for path in entry["track"].recordings]}
                   for entry in tracks],
        "rows": rows,
        "means": means,
        "language_means": language_means,
        "reference": reference,
        "seconds": round(time.perf_counter() - started, 1),
    }
    with atomic_output(out_dir / "real_speech.json") as temporary:
        pathlib.Path(temporary).write_text(json.dumps(evaluation._jsonable(report), indent=1))
    with atomic_output(out_dir / "real_speech.md") as temporary:
        pathlib.Path(temporary).write_text(benchmark_markdown(report))
    log(f"Measured {len(rows)} videos in {report['seconds']:.0f} s; wrote "
        f"{out_dir / 'real_speech.md'}.")
    return report


def command_line(args, models):
    """The `autalk evaluate --real-speech ...` line that reproduces a run (for the tables).

    Example:
    >>> import argparse
    >>> args = argparse.Namespace(photo=None, language=["en"], tracks=2, duration=15.0, seed=0,
    ...                           condition=["clean", "phone"], reference_corpus=None,
    ...                           reference_utterances=8, output="out")
    >>> command_line(args, {"before": "demo"})
    'autalk evaluate --real-speech --model before=demo --language en --tracks 2 --duration 15 --seed 0 --condition clean --condition phone -o out'
    """
    import shlex

    parts = ["autalk", "evaluate", "--real-speech"]
    for name, target in models.items():
        parts += ["--model", f"{name}={target}"]
    for photo in args.photo or []:
        parts += ["--photo", str(photo)]
    for language in args.language or []:
        parts += ["--language", language]
    parts += ["--tracks", str(args.tracks), "--duration", f"{args.duration:g}",
              "--seed", str(args.seed)]
    for condition in getattr(args, "condition", None) or []:
        parts += ["--condition", condition]
    if args.reference_corpus:
        parts += ["--reference-corpus", str(args.reference_corpus),
                  "--reference-utterances", str(args.reference_utterances)]
    return shlex.join(parts + ["-o", str(args.output)])


def _progress(message):
    import sys

    print(message, file=sys.stderr, flush=True)


def run_cli(args, note=print):
    """`autalk evaluate --real-speech` from its parsed options; returns the exit status.

    Progress goes to stderr, one line per video; the tables to stdout.
    """
    from keras_autalk.evaluation import evaluate as evaluation

    for option, given in (("--prepared", args.prepared), ("--au-classifier", args.au_classifier),
                          ("--sync-expert", args.sync_expert),
                          ("--max-utterances", args.max_utterances is not None),
                          ("--every", args.every != 1), ("--no-baselines", args.no_baselines)):
        if given:
            raise AutalkError(f"{option} does not apply to --real-speech; leave it out.")
    if args.tracks < 1:
        raise AutalkError("--tracks must be at least 1.")
    if not args.duration >= 1.0:
        raise AutalkError("--duration must be at least 1 second.")
    if args.reference_utterances < 1:
        raise AutalkError("--reference-utterances must be at least 1.")
    models = evaluation.parse_model_specs(args.model or ["demo"])
    out_dir = evaluation.check_out_dir(args.output)
    run_benchmark(models, out_dir, photos=tuple(args.photo or DEFAULT_PHOTOS),
                  languages=tuple(args.language or DEFAULT_LANGUAGES),
                  tracks_per_language=args.tracks, duration_s=args.duration, seed=args.seed,
                  reference_corpus=args.reference_corpus,
                  reference_utterances=args.reference_utterances, keep_videos=args.keep_videos,
                  command=command_line(args, models),
                  conditions=tuple(getattr(args, "condition", None) or ("clean",)),
                  log=_progress)
    print((out_dir / "real_speech.md").read_text())
    return 0
