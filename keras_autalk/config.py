"""One source of truth for every shape and constant of the package.

Frame rate, sample rate, the audio feature layout, the face crop and the
action-unit set live here and are passed down; nothing else in the package
repeats these numbers.
"""

import dataclasses
from typing import Tuple

# Speech-related action units used by default: the set the authors' later
# public code drives with (OpenFace intensity 0-5 plus occurrence).
DEFAULT_ACTION_UNITS = (10, 14, 20, 25, 26)


@dataclasses.dataclass(frozen=True)
class AudioConfig:
    """How speech becomes per-video-frame features.

    Args:
        sample_rate: every waveform is resampled to this rate (Hz).
        fps: video frame rate the features are aligned to.
        feature_type: "log_mel" (the default and only type so far).
        num_mel_bins: mel filters per spectrogram step.
        window_ms: STFT window length in milliseconds.
        hop_ms: STFT hop in milliseconds.
        fft_length: FFT size in samples (>= the window length).
        context_steps: spectrogram steps in the window around each video
            frame; the window is centred on the frame's centre.
        fmin: lowest mel filter edge (Hz).
        fmax: highest mel filter edge (Hz).
        log_floor: amplitude floor before the log, so silence is finite.
        min_duration_s: shortest speech a talking head is made for.
        silence_dbfs: a recording whose peak is below this level is silent.
    """

    sample_rate: int = 16000
    fps: float = 25.0
    feature_type: str = "log_mel"
    num_mel_bins: int = 80
    window_ms: float = 25.0
    hop_ms: float = 10.0
    fft_length: int = 512
    context_steps: int = 20
    fmin: float = 55.0
    fmax: float = 7600.0
    log_floor: float = 1e-5
    min_duration_s: float = 0.5
    silence_dbfs: float = -60.0

    @property
    def window_samples(self) -> int:
        return int(round(self.sample_rate * self.window_ms / 1000.0))

    @property
    def hop_samples(self) -> int:
        return int(round(self.sample_rate * self.hop_ms / 1000.0))

    @property
    def samples_per_frame(self) -> float:
        return self.sample_rate / self.fps

    @property
    def steps_per_frame(self) -> float:
        """Spectrogram steps per video frame (4 at 25 fps with a 10 ms hop)."""
        return self.samples_per_frame / self.hop_samples

    def __post_init__(self):
        if self.feature_type != "log_mel":
            raise ValueError(
                f"feature_type must be 'log_mel', got {self.feature_type!r}."
            )
        if self.fft_length < self.window_samples:
            raise ValueError("fft_length must be at least the window length.")
        if self.context_steps < 1:
            raise ValueError("context_steps must be at least 1.")


@dataclasses.dataclass(frozen=True)
class FaceConfig:
    """How a face is found, aligned and cropped.

    Args:
        crop_size: side of the square aligned crop in pixels.
        face_scale: fraction of the crop's width the template face spans
            (eyebrow-to-chin and ear-to-ear extent of the 68 landmarks).
        vertical_offset: where the template's top edge (the eyebrows) sits,
            as a fraction of the crop height; the rest leaves room for the
            chin and a little neck.
        detector: "hog" (fast, default) or "cnn" (dlib's MMOD detector,
            slower, fewer false positives).
        upsample: times the image is upsampled before detection (finds
            smaller faces, costs time).
        max_detection_side: images are downscaled to at most this side for
            detection only; landmarks are always fitted at full resolution.
        min_image_side: smaller images are refused.
        max_image_side: larger images are refused.
        feather: width of the paste-back mask's soft edge, as a fraction of
            the crop size.
    """

    crop_size: int = 128
    face_scale: float = 0.68
    vertical_offset: float = 0.2
    detector: str = "hog"
    upsample: int = 1
    max_detection_side: int = 1024
    min_image_side: int = 64
    max_image_side: int = 8192
    feather: float = 0.08

    def __post_init__(self):
        if self.detector not in ("hog", "cnn"):
            raise ValueError(
                f"detector must be 'hog' or 'cnn', got {self.detector!r}."
            )
        if self.crop_size < 32:
            raise ValueError("crop_size must be at least 32 pixels.")


# The mouth-shape parameters the demo corpus animates (each 0..1 per frame);
# ground-truth AU intensities are computed from them.
MOUTH_PARAMETERS = (
    "jaw_drop",         # jaw opening (AU26)
    "lip_part",         # lips apart beyond what the jaw gives (AU25)
    "pucker",           # rounding / protrusion, narrower mouth (AU18, AU23)
    "stretch",          # horizontal lip stretch (AU20)
    "corner_up",        # lip corners pulled up and back (AU12)
    "corner_down",      # lip corners pulled down (AU15)
    "upper_lip_raise",  # upper lip raised, teeth shown (AU10)
    "lip_press",        # lips pressed together, chin raised (AU17, AU23, AU14)
)


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """How prepared corpora are stored and windowed for training.

    Args:
        window_frames: consecutive frames per training example (T).
        identity_min_gap: the identity frame is drawn at least this many
            frames away from the window, from the same video.
        jpeg_quality: quality of the JPEG-encoded crops in TFRecords.
        utterances_per_shard: utterances per TFRecord file.
        landmark_smoothing: frames in the centred window that smooths the
            alignment over time (odd; 1 disables smoothing).
    """

    window_frames: int = 16
    identity_min_gap: int = 12
    jpeg_quality: int = 95
    utterances_per_shard: int = 32
    landmark_smoothing: int = 5

    def __post_init__(self):
        if self.window_frames < 1:
            raise ValueError("window_frames must be at least 1.")
        if self.landmark_smoothing < 1 or self.landmark_smoothing % 2 == 0:
            raise ValueError("landmark_smoothing must be a positive odd number.")


@dataclasses.dataclass(frozen=True)
class AutalkConfig:
    """Everything a model, the data pipeline and the tools agree on."""

    audio: AudioConfig = dataclasses.field(default_factory=AudioConfig)
    face: FaceConfig = dataclasses.field(default_factory=FaceConfig)
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    action_units: Tuple[int, ...] = DEFAULT_ACTION_UNITS
