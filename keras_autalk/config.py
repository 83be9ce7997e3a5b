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
        speech_level_dbfs: `generate` brings a recording's active speech
            level to this (the demo corpus's voices speak at -18.6 to -22.5
            dBFS), so very quiet or loud recordings drive the face as
            others do.
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
    speech_level_dbfs: float = -20.0

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
            raise ValueError(f"feature_type must be 'log_mel', got {self.feature_type!r}.")
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
        min_face_px: smaller faces (brows to chin, in the photo's pixels;
            44 px is about a 48-px dlib detection box) are refused: the
            model cannot animate them.
        max_yaw_deg: faces turned further to the side are refused.
        max_pitch_deg: faces tilted further up or down are refused.
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
    min_face_px: int = 44
    max_yaw_deg: float = 35.0
    max_pitch_deg: float = 25.0

    def __post_init__(self):
        if self.detector not in ("hog", "cnn"):
            raise ValueError(f"detector must be 'hog' or 'cnn', got {self.detector!r}.")
        if self.crop_size < 32:
            raise ValueError("crop_size must be at least 32 pixels.")


# The mouth-shape parameters the demo corpus animates (each 0..1 per frame);
# ground-truth AU intensities are computed from them.
MOUTH_PARAMETERS = (
    "jaw_drop",  # jaw opening (AU26)
    "lip_part",  # lips apart beyond what the jaw gives (AU25)
    "pucker",  # rounding / protrusion, narrower mouth (AU18, AU23)
    "stretch",  # horizontal lip stretch (AU20)
    "corner_up",  # lip corners pulled up and back (AU12)
    "corner_down",  # lip corners pulled down (AU15)
    "upper_lip_raise",  # upper lip raised, teeth shown (AU10)
    "lip_press",  # lips pressed together, chin raised (AU17, AU23, AU14)
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


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Sizes and ablation switches of every network of the talking head.

    One instance describes the whole model; `keras_autalk.models` builds its
    networks from it and the GAN stores it in its own config. Sequences given
    as lists (e.g. after a JSON round-trip) are turned back into tuples.

    Args:
        image_size: side of the square face crop the generator renders; must
            equal `FaceConfig.crop_size` and be divisible by
            `2 ** len(encoder_filters)`.
        action_units: AU numbers predicted and driven with (A of them).
        audio_channels: audio encoder output per frame.
        au_channels: AU encoder output per frame.
        identity_channels: size of the identity embedding.
        fusion_channels: width of the fusion (TCSA) stack, its output per
            frame; divisible by `attention_heads`.
        fusion_kernel: temporal kernel size of the fusion and Audio2AU convs.
        fusion_dilations: dilation of each temporal block, one block each.
        attention_heads: heads of the temporal self-attention.
        dropout: dropout rate inside the temporal blocks.
        fusion: "tcsa" (conv + temporal self-attention) or "conv" (the
            ablation without attention).
        drive: what the fusion is driven with: "audio+au", "audio" (no AU
            branch) or "au" (no audio branch).
        audio_normalization: how the audio features are normalised before
            the model sees them: "none" or "utterance" (per-utterance mean
            per mel bin, `features.log_mel.normalize_features`). Part of the model:
            `generate`, `evaluate` and the exported signatures apply it.
        decoder: how frames are rendered: "frames" (`FrameDecoder`: the
            crop redrawn and blended over the photo) or "flow"
            (`FlowDecoder`: the photo's own pixels moved by a dense flow in
            the lower face, the inside of the mouth generated).
        encoder_filters: identity encoder filters, one stride-2 stage each.
        decoder_filters: frame decoder filters, one upsampling stage each,
            from low to high resolution; as many as `encoder_filters`.
        discriminator_filters: frame discriminator filters, one stride-2
            stage each.
        au_classifier_filters: AU classifier filters, one stride-2 stage
            each.

    Example:
    >>> config = ModelConfig(image_size=64, fusion="conv")
    >>> config.num_action_units
    5
    """

    image_size: int = 128
    action_units: Tuple[int, ...] = DEFAULT_ACTION_UNITS
    audio_channels: int = 128
    au_channels: int = 64
    identity_channels: int = 128
    fusion_channels: int = 256
    fusion_kernel: int = 3
    fusion_dilations: Tuple[int, ...] = (1, 2, 4, 8)
    attention_heads: int = 4
    dropout: float = 0.1
    fusion: str = "tcsa"
    drive: str = "audio+au"
    audio_normalization: str = "none"
    decoder: str = "frames"
    encoder_filters: Tuple[int, ...] = (32, 64, 128, 256)
    decoder_filters: Tuple[int, ...] = (256, 128, 64, 32)
    discriminator_filters: Tuple[int, ...] = (64, 128, 256)
    au_classifier_filters: Tuple[int, ...] = (32, 64, 128, 256)

    FUSIONS = ("tcsa", "conv")
    DRIVES = ("audio+au", "audio", "au")
    AUDIO_NORMALIZATIONS = ("none", "utterance")
    DECODERS = ("frames", "flow")

    @property
    def num_action_units(self) -> int:
        return len(self.action_units)

    @property
    def uses_audio(self) -> bool:
        """Whether the fusion reads the audio features."""
        return self.drive in ("audio+au", "audio")

    @property
    def uses_au(self) -> bool:
        """Whether the fusion reads the (predicted or given) AU curves."""
        return self.drive in ("audio+au", "au")

    def to_dict(self) -> dict:
        """A JSON-friendly dict that `ModelConfig.from_dict` reads back."""
        return {
            field.name: (list(value) if isinstance(value, tuple) else value)
            for field in dataclasses.fields(self)
            for value in [getattr(self, field.name)]
        }

    @classmethod
    def from_dict(cls, values: dict) -> "ModelConfig":
        """The config `to_dict` wrote; unknown keys are an error."""
        names = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(f"Unknown ModelConfig fields: {unknown}.")
        return cls(**values)

    def __post_init__(self):
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, list):
                object.__setattr__(self, field.name, tuple(value))
        if self.fusion not in self.FUSIONS:
            raise ValueError(f"fusion must be one of {self.FUSIONS}, got {self.fusion!r}.")
        if self.drive not in self.DRIVES:
            raise ValueError(f"drive must be one of {self.DRIVES}, got {self.drive!r}.")
        if self.audio_normalization not in self.AUDIO_NORMALIZATIONS:
            raise ValueError(
                f"audio_normalization must be one of {self.AUDIO_NORMALIZATIONS}, "
                f"got {self.audio_normalization!r}."
            )
        if self.decoder not in self.DECODERS:
            raise ValueError(f"decoder must be one of {self.DECODERS}, got {self.decoder!r}.")
        if not self.action_units:
            raise ValueError("action_units must name at least one AU.")
        if not self.encoder_filters:
            raise ValueError("encoder_filters needs at least one stage.")
        if len(self.decoder_filters) != len(self.encoder_filters):
            raise ValueError(
                "decoder_filters needs one stage per encoder stage "
                f"({len(self.encoder_filters)}), got "
                f"{len(self.decoder_filters)}."
            )
        if self.image_size % (2 ** len(self.encoder_filters)):
            raise ValueError(
                f"image_size {self.image_size} is not divisible by "
                f"2 ** {len(self.encoder_filters)} (one halving per "
                "encoder stage)."
            )
        if self.fusion_channels % self.attention_heads:
            raise ValueError("fusion_channels must be divisible by attention_heads.")
        if not self.fusion_dilations or min(self.fusion_dilations) < 1:
            raise ValueError("fusion_dilations must be positive integers.")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError("dropout must be in [0, 1).")


# Named model sizes. "small" trains on a CPU here (a few seconds a step at
# B=4, T=16, 128x128); "paper" is sized for a GPU at 128x128. These are the
# architecture presets of `keras_autalk.presets.registry` (which describes
# them and adds the ones `register_preset` is given).
MODEL_PRESETS = {
    "small": ModelConfig(
        audio_channels=64,
        au_channels=32,
        identity_channels=64,
        fusion_channels=128,
        fusion_dilations=(1, 2, 4),
        attention_heads=4,
        dropout=0.1,
        encoder_filters=(16, 32, 64, 128),
        decoder_filters=(128, 64, 32, 16),
        discriminator_filters=(32, 64, 128),
        au_classifier_filters=(16, 32, 64, 128),
    ),
    "paper": ModelConfig(
        audio_channels=256,
        au_channels=64,
        identity_channels=256,
        fusion_channels=256,
        fusion_dilations=(1, 2, 4, 8),
        attention_heads=4,
        dropout=0.1,
        encoder_filters=(64, 128, 256, 512),
        decoder_filters=(512, 256, 128, 64),
        discriminator_filters=(64, 128, 256, 512),
        au_classifier_filters=(32, 64, 128, 256),
    ),
}


def model_config(preset: str = "small", **overrides) -> ModelConfig:
    """The named architecture's `ModelConfig`, with some fields replaced.

    Args:
        preset: a key of `MODEL_PRESETS`: "small", "paper", or one added
            with `keras_autalk.presets.registry.register_preset`.
        **overrides: `ModelConfig` fields to change.

    Example:
    >>> model_config("small", image_size=64, fusion="conv").fusion
    'conv'
    """
    if preset not in MODEL_PRESETS:
        raise ValueError(f"Unknown model preset {preset!r}; choose one of {sorted(MODEL_PRESETS)}.")
    return dataclasses.replace(MODEL_PRESETS[preset], **overrides)
