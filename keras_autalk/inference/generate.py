"""The `generate` task: one face photo + speech in, a talking-head MP4 out.

Steps: read the photo (any format `media.image` reads) -> find the face (the
largest, if several) -> align it to the model's crop -> read the speech (any
format and rate `media.audio` reads) -> per-video-frame audio features ->
run the model over the whole utterance in overlapping windows
(`inference.windows`) on LiteRT or Keras (`inference.runtime`) -> paste each
generated crop back into the full photo through a feathered mask -> stream
the frames into an H.264 MP4 with the original audio muxed. `generate` is a
`session.Talker` speaking once; several clips of one photo share a `Talker`.
"""

import pathlib

from keras_autalk.errors import MissingDependencyError
from keras_autalk.inference.session import Talker, check_outputs
from keras_autalk.inference.windows import (  # noqa: F401  (this module's public names, as before)
    COMPOSITES,
    DEFAULT_OVERLAP_FRAMES,
    DEFAULT_WINDOW_FRAMES,
    LONG_AUDIO_S,
    STAGES,
    VIDEO_CRF,
    VIDEO_PRESET,
    GenerateResult,
    au_csv_text,
    check_options,
    check_windows,
    crossfade_weights,
    generate_sequence,
    resample_in_time,
    window_plan,
)

# What `autalk demo` animates: a photo shipped by an installed package
# (`media.photos`; grace_hopper has one clear face, astronaut also makes the
# HOG detector fire on the suit) and the clip tools/make_demo_speech.py makes.
DEMO_PHOTO = "grace_hopper"
DEMO_SPEECH = pathlib.Path(__file__).resolve().parents[1] / "assets" / "demo_speech.flac"


def demo_speech_path():
    """The bundled demo speech clip (`keras_autalk/assets/demo_speech.flac`).

    Raises:
        MissingDependencyError: the file is not installed.
    """
    if not DEMO_SPEECH.is_file():
        raise MissingDependencyError(
            f"The bundled demo speech '{DEMO_SPEECH}' is missing; reinstall keras-autalk "
            "or run tools/make_demo_speech.py."
        )
    return DEMO_SPEECH


def generate(
    image,
    audio,
    output,
    model="demo",
    size=None,
    au_csv=None,
    articulation=1.0,
    fps=None,
    progress=True,
    window_frames=DEFAULT_WINDOW_FRAMES,
    overlap_frames=DEFAULT_OVERLAP_FRAMES,
    face=None,
    face_box=None,
    composite="lower_face",
    runtime="auto",
):
    """Make a talking-head MP4 from one face photo and a speech recording.

    Every input is checked before the long work starts; the MP4 (and the AU
    CSV) appear only when completely written.

    Args:
        image: the photo: a path (JPEG, PNG, WebP, TIFF, ...; RGBA, grayscale,
            16-bit and CMYK are converted) or a uint8 RGB array.
        audio: the speech: WAV, FLAC, Ogg, MP3, M4A, ... at any rate and
            channel count.
        output: the `.mp4` to write; its folder must exist.
        model: "demo" (the bundled model), another installed name, a model
            folder path (`save_pretrained`), or a loaded `AUTalker`.
        size: the crop side the model runs at; None: the model's
            `image_size`. Anything else must equal it.
        au_csv: optional path of a CSV for the predicted AU curves (one row
            per video frame, OpenFace-style columns; see `au_csv_text`).
        articulation: scales the predicted AU intensities (0..5; 1 as
            predicted, 0 keeps the AU-driven mouth still).
        fps: output frame rate; None: the model's (`AudioConfig.fps`, 25).
            Another rate resamples the generated frames in time.
        progress: show a progress bar for long audio.
        window_frames: frames per model call (memory and the model's temporal
            context).
        overlap_frames: least overlap of consecutive windows (crossfaded).
        face: which face to animate, 1-based left to right; None: the largest.
        face_box: `(left, top, right, bottom)` of the face to animate.
        composite: "lower_face" (the default): only the mouth, chin, jaw and
            cheeks below the nose change, every other pixel is the photo's
            own; "crop": the whole aligned crop is pasted back (as before).
        runtime: "auto" (LiteRT where the model folder has a
            `generator.tflite`, else Keras), "litert" or "keras"
            (`inference.runtime`). For several clips of one photo, a
            `Talker` finds the face once.

    Returns:
        A `GenerateResult`.

    Raises:
        AutalkError: bad input, each explained in one sentence (a missing,
            unreadable or tiny photo, no face, unreadable, empty, short or
            silent audio, a missing output folder, a model of another
            version, a size the model does not run at).

    Example:
    ```python
    result = generate("face.jpg", "speech.wav", "talk.mp4", au_csv="talk_au.csv")
    print(result.num_frames, result.timings)
    ```
    """
    check_options(articulation, 25.0 if fps is None else fps)
    inputs = [("photo", image), ("audio file", audio), ("model", model)]
    check_outputs(output, au_csv, inputs)
    talker = Talker(
        image,
        model=model,
        runtime=runtime,
        face=face,
        face_box=face_box,
        composite=composite,
        size=size,
        window_frames=window_frames,
        overlap_frames=overlap_frames,
    )
    return talker.speak(
        audio, output, au_csv=au_csv, articulation=articulation, fps=fps, progress=progress
    )


__all__ = [
    "DEFAULT_OVERLAP_FRAMES",
    "DEMO_PHOTO",
    "DEFAULT_WINDOW_FRAMES",
    "GenerateResult",
    "au_csv_text",
    "crossfade_weights",
    "demo_speech_path",
    "generate",
    "generate_sequence",
    "resample_in_time",
    "window_plan",
]
