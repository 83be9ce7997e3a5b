"""A warm talking-head session: one photo prepared once, many clips spoken.

`Talker(photo, model="demo")` reads the photo, finds and aligns the face,
prepares the paste-back geometry and opens the model's runner (LiteRT
where the model folder has a `generator.tflite`, else Keras; see
`inference.runtime`). Each `talker.speak(audio, "out.mp4")` then costs only
what that clip needs: reading the speech, its features, the model, the
paste-back and the encoder. `generate()` is one `Talker` speaking once.

On the LiteRT runtime nothing here imports TensorFlow or Keras: the audio
features are `features.numpy_features`, the face is dlib's, the video
ffmpeg's.
"""

import contextlib
import dataclasses
import math
import os
import pathlib
import time

import numpy as np

from keras_autalk import stops
from keras_autalk.config import AudioConfig, FaceConfig
from keras_autalk.errors import AutalkError, InputFileError
from keras_autalk.files import (
    atomic_output,
    check_input_file,
    check_output_path,
    refuse_overwriting_inputs,
    same_file,
)
from keras_autalk.inference import runtime as runtime_lib
from keras_autalk.inference.windows import (
    COMPOSITES,
    DEFAULT_OVERLAP_FRAMES,
    DEFAULT_WINDOW_FRAMES,
    LONG_AUDIO_S,
    MODEL_WAIT,
    STAGES,
    VIDEO_CRF,
    VIDEO_PRESET,
    GenerateResult,
    au_csv_text,
    check_options,
    check_windows,
    generate_sequence,
    resample_in_time,
)


def check_outputs(output, au_csv, inputs):
    """The video and AU CSV paths, checked before any work.

    Args:
        output: the `.mp4` to write.
        au_csv: the CSV to write, or None.
        inputs: `(what, path)` pairs neither output may overwrite.

    Returns:
        `(output, au_csv)` as paths (`au_csv` may be None).

    Raises:
        InputFileError: a missing folder, another suffix than .mp4, the two
            outputs being one file, or an output that is an input.
    """
    output = check_output_path(output, "video")
    if output.suffix.lower() != ".mp4":
        raise InputFileError(f"Cannot write the video '{output}': give a file name ending in .mp4.")
    if au_csv is not None:
        au_csv = check_output_path(au_csv, "AU CSV")
        if same_file(au_csv, output):
            raise InputFileError("The AU CSV and the video cannot be the same file.")
    refuse_overwriting_inputs([("video", output), ("AU CSV", au_csv)], inputs)
    return output, au_csv


def load_photo(image, config):
    """The photo as uint8 RGB: a path (any format `media.image` reads) or an array, checked."""
    from keras_autalk.media import image as image_lib

    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise AutalkError(
                f"A photo given as an array must be uint8 RGB of shape (h, w, 3), got "
                f"{image.dtype} {image.shape}."
            )
        image_lib.check_image_size(image.shape[1], image.shape[0], config, name="photo")
        return np.ascontiguousarray(image)
    return image_lib.load_image(image, config)


def load_speech(path, config):
    """The speech at the model's rate and level (checked) and the original samples and rate.

    The model hears one channel without DC offset (`audio_backends.mix_down`:
    the loudest channel where the channels cancel) at the demo corpus's
    speech level (`set_speech_level`), so quiet, loud, offset and
    opposite-phase recordings drive the face as a clean one does; the
    silence check sees the level as recorded.
    """
    from keras_autalk.media import audio as audio_lib
    from keras_autalk.media import audio_backends

    path = check_input_file(path, "audio file")
    # libsndfile (falling back to ffmpeg) unless the user chose a backend:
    # it reads every format tensorflow-io does, and loading tensorflow-io's
    # ops costs about 1 s of the 5 s a 10 s clip may take (measured).
    chosen = os.environ.get(audio_backends.BACKEND_ENV_VAR, "").strip()
    backend = audio_backends.resolve_backend_name(chosen or "soundfile")
    decoded = audio_backends.decode_with_fallback(path, backend)
    mono = audio_backends.mix_down(decoded.samples)
    waveform = np.ascontiguousarray(
        audio_backends.resample(mono, decoded.sample_rate, config.sample_rate, backend),
        dtype=np.float32,
    )
    audio_lib.check_speech(waveform, config, name=f"The audio file '{path}'")
    waveform = audio_backends.set_speech_level(
        waveform, config.sample_rate, config.speech_level_dbfs
    )
    # The video gets the recording as it was (rate, stereo); more channels
    # than stereo are mixed down, which is what MP4 players expect anyway.
    original = decoded.samples if decoded.samples.shape[1] <= 2 else mono
    return waveform, original, int(decoded.sample_rate)


class Talker:
    """One face photo, ready to speak any number of clips.

    Everything that depends on the photo and the model alone is done once,
    here: the model's config is read and its runner opened, the photo read,
    the face found and aligned, the paste-back geometry computed. A Keras
    model is loaded on the first `speak`, after that clip's speech has been
    checked, so bad input is answered before TensorFlow loads.

    Args:
        photo: a path (JPEG, PNG, WebP, TIFF, ...; RGBA, grayscale, 16-bit
            and CMYK are converted) or a uint8 RGB array.
        model: "demo" (the bundled model), another installed name, a model
            folder path (`save_pretrained`), or a loaded `AUTalker`.
        runtime: "auto" (LiteRT where the folder has `generator.tflite`,
            else Keras), "litert" or "keras" (`inference.runtime`).
        face: which face to animate, 1-based left to right; None: the largest.
        face_box: `(left, top, right, bottom)` of the face to animate.
        composite: "lower_face" (only the mouth, chin, jaw and cheeks below
            the nose change) or "crop" (the whole aligned crop is pasted back).
        size: the crop side the model runs at; None: the model's. Anything
            else must equal it.
        window_frames: frames per model call.
        overlap_frames: least overlap of consecutive windows (crossfaded).
        num_threads: LiteRT threads; default every core this process may use.

    Attributes:
        runtime: "litert" or "keras".
        face_box: `(left, top, right, bottom)` of the face used.
        notes: things the user should know about the face chosen.
        timings: seconds spent preparing ("load model", "face").

    Example:
    ```python
    talker = Talker("face.jpg")
    talker.speak("hello.wav", "hello.mp4")
    talker.speak("goodbye.wav", "goodbye.mp4")   # the face is not looked for again
    ```
    """

    def __init__(
        self,
        photo,
        model="demo",
        runtime="auto",
        face=None,
        face_box=None,
        composite="lower_face",
        size=None,
        window_frames=DEFAULT_WINDOW_FRAMES,
        overlap_frames=DEFAULT_OVERLAP_FRAMES,
        num_threads=None,
    ):
        if composite not in COMPOSITES:
            raise AutalkError(
                f"composite must be one of {', '.join(COMPOSITES)}, got {composite!r}."
            )
        check_windows(window_frames, overlap_frames)
        runtime_lib.check_runtime(runtime)
        self.window_frames, self.overlap_frames = window_frames, overlap_frames
        self.timings = {"load model": 0.0, "face": 0.0}
        self._preparation_reported = False
        self._inputs = [("photo", photo), ("model", model)]
        began = time.perf_counter()
        self._open_model(model, runtime, size, num_threads)
        self.timings["load model"] += time.perf_counter() - began
        began = time.perf_counter()
        self._prepare_face(photo, face, face_box, composite)
        self.timings["face"] += time.perf_counter() - began

    @classmethod
    def from_preset(cls, preset, photo, **kwargs):
        """A `Talker` for `photo` with a pretrained preset, KerasHub's order: preset first.

        Args:
            preset: a pretrained preset's name ("demo"; `autalk presets`
                lists them) or the path of a model folder.
            photo: the face photo (a path or a uint8 RGB array).
            **kwargs: the other `Talker` arguments (`runtime`, `face`, ...).

        Raises:
            AutalkError: an architecture without weights ("small"), an
                unknown name or a folder that is not a model, in one sentence;
                and whatever `Talker(...)` refuses.

        Example:
        ```python
        talker = Talker.from_preset("demo", "face.jpg", runtime="litert")
        talker.speak("hello.wav", "hello.mp4")
        ```
        """
        from keras_autalk.presets import pretrained, registry

        found = registry.get_preset(preset)
        if not found.has_weights:
            raise AutalkError(pretrained.no_weights_message(found.name))
        return cls(photo, model=found.path, **kwargs)

    def _open_model(self, model, runtime, size, num_threads):
        from keras_autalk.presets import pretrained

        if isinstance(model, (str, pathlib.PurePath)):
            self._model_dir = pretrained.resolve_model_dir(model)
            record = pretrained.read_model_json(self._model_dir)
            self.model_config = record["model_config"]
            self.runtime = runtime_lib.choose_runtime(self._model_dir, runtime)
        else:
            if runtime == "litert":
                raise AutalkError(
                    "runtime 'litert' needs a model folder or name, not a loaded Keras model."
                )
            self._model_dir, self.model_config, self.runtime = None, model.model_config, "keras"
        if size is not None and int(size) != self.model_config.image_size:
            side = self.model_config.image_size
            raise AutalkError(
                f"The model runs at {side}x{side} pixels, so --size {size} cannot be used "
                f"with it (leave --size out or give {side})."
            )
        self._runner = None
        if self.runtime == "litert":
            pretrained.check_files(self._model_dir, record)
            self._runner = runtime_lib.LiteRTRunner(
                self._model_dir / runtime_lib.LITERT_FILE, num_threads
            )
        elif self._model_dir is None:
            self._runner = runtime_lib.KerasRunner(model)

    def _prepare_face(self, photo, face, face_box, composite):
        from keras_autalk.media import face as face_lib
        from keras_autalk.media import paste

        face_config = dataclasses.replace(FaceConfig(), crop_size=self.model_config.image_size)
        self.photo = load_photo(photo, face_config)
        found = face_lib.find_face(self.photo, face_config, face_index=face, face_box=face_box)
        aligned = face_lib.align_face(self.photo, found.landmarks, face_config)
        self.crop = aligned.crop.astype(np.float32) / np.float32(255.0)
        self.face_box = tuple(int(value) for value in found.box)
        self.notes = face_lib.face_notes(found, "animating")
        self._paster = paste.FacePaster(
            self.photo,
            aligned.matrix,
            self.model_config.image_size,
            face_config,
            landmarks=found.landmarks if composite == "lower_face" else None,
        )

    def _keras_runner(self):
        """The Keras model's runner (TensorFlow loads now)."""
        from keras_autalk.native import import_tensorflow

        import_tensorflow()
        from keras_autalk.presets import pretrained

        return runtime_lib.KerasRunner(pretrained.load_pretrained(self._model_dir))

    def speak(self, audio, output, au_csv=None, articulation=1.0, fps=None, progress=True):
        """Animate the face with `audio` and write the MP4 (and the AU curves).

        Every input is checked before the long work starts; the MP4 (and the
        AU CSV) appear only when completely written.

        Args:
            audio: the speech: WAV, FLAC, Ogg, MP3, M4A, ... at any rate and
                channel count.
            output: the `.mp4` to write; its folder must exist.
            au_csv: optional path of a CSV for the predicted AU curves (one
                row per video frame, OpenFace-style columns; `au_csv_text`).
            articulation: scales the predicted AU intensities (0..5; 1 as
                predicted, 0 keeps the AU-driven mouth still).
            fps: output frame rate; None: the model's (`AudioConfig.fps`, 25).
                Another rate resamples the generated frames in time.
            progress: show a progress bar for long audio.

        Returns:
            A `GenerateResult`; its timings hold this clip's stages, with
            the preparation ("load model", "face") only in the first clip's.

        Raises:
            AutalkError: bad input, each explained in one sentence.
        """
        started = time.perf_counter()
        timings = {stage: 0.0 for stage in STAGES}
        audio_config = AudioConfig()
        fps = audio_config.fps if fps is None else fps
        check_options(articulation, fps)
        output, au_csv = check_outputs(output, au_csv, self._inputs + [("audio file", audio)])
        began = time.perf_counter()
        waveform, original_audio, original_rate = load_speech(audio, audio_config)
        from keras_autalk.features import numpy_features
        from keras_autalk.media import audio as audio_lib

        model_frames = audio_lib.num_video_frames(len(waveform), audio_config)
        features = numpy_features.audio_features(
            waveform,
            audio_config,
            num_frames=model_frames,
            normalization=self.model_config.audio_normalization,
        )
        audio_seconds = len(waveform) / audio_config.sample_rate
        num_frames = int(math.ceil(audio_seconds * fps - 1e-9))
        timings["audio features"] += time.perf_counter() - began
        if self._runner is None:  # a Keras model, loaded on the first clip
            began = time.perf_counter()
            self._runner = self._keras_runner()
            timings["load model"] += time.perf_counter() - began
        if not self._preparation_reported:  # the first clip's timings include it
            for stage, seconds in self.timings.items():
                timings[stage] += seconds
            self._preparation_reported = True
        sequence = generate_sequence(
            self._runner,
            self.crop,
            features,
            articulation,
            self.window_frames,
            self.overlap_frames,
            timings,
        )
        stream = resample_in_time(sequence, model_frames, audio_config.fps, fps, num_frames)
        show = progress and audio_seconds >= LONG_AUDIO_S
        au_intensity, written = self._write(
            stream, output, au_csv, fps, num_frames, (original_audio, original_rate), timings, show
        )
        timings["total"] = time.perf_counter() - started
        return GenerateResult(
            output=output,
            num_frames=int(written),
            fps=float(fps),
            audio_seconds=audio_seconds,
            face_box=self.face_box,
            action_units=tuple(self.model_config.action_units),
            au_intensity=au_intensity,
            au_csv=au_csv,
            notes=list(self.notes),
            timings=timings,
            runtime=self.runtime,
        )

    def _frames(self, stream, num_frames, au_rows, timings, show):
        """Paste each generated crop into the photo; collect the AU rows."""
        from tqdm.auto import tqdm

        # Only the region a paste changes is rewritten, in one buffer, and
        # encoded (`write_region_video` consumes each before asking for the next).
        region = self._paster.new_region()
        with tqdm(total=num_frames, unit="frame", desc="Generating", disable=not show) as bar:
            for crop, au in stream:
                stops.check()
                au_rows.append(np.asarray(au, np.float32))
                began = time.perf_counter()
                if crop.shape[-1] == runtime_lib.MOTION_CHANNELS:
                    self._paster.paste_motion(
                        crop[..., :3], crop[..., 3:5], crop[..., 5], out=region
                    )
                else:
                    self._paster.paste(crop, out=region)
                timings["paste-back"] += time.perf_counter() - began
                bar.update(1)
                yield region

    def _write(self, stream, output, au_csv, fps, num_frames, audio, timings, show):
        """Encode the frames and write the AU CSV; both appear only when complete."""
        from keras_autalk.media import video as video_lib

        original_audio, original_rate = audio
        au_rows = []
        began = time.perf_counter()
        with contextlib.ExitStack() as stack:
            needed = video_lib.estimate_mp4_bytes(
                self.photo.shape[1],
                self.photo.shape[0],
                num_frames,
                original_audio.shape[0],
                original_audio.shape[1],
            )
            partial_video = stack.enter_context(atomic_output(output, "video", needed=needed))
            partial_csv = (
                stack.enter_context(atomic_output(au_csv, "AU CSV")) if au_csv is not None else None
            )
            # Closed on any error, so its progress bar is gone before the error is told.
            frames = stack.enter_context(
                contextlib.closing(self._frames(stream, num_frames, au_rows, timings, show))
            )
            written = video_lib.write_region_video(
                partial_video,
                self.photo,
                self._paster.changed_box,
                frames,
                fps,
                audio=original_audio,
                sample_rate=original_rate,
                crf=VIDEO_CRF,
                preset=VIDEO_PRESET,
                progress=False,
            )
            au_intensity = (
                np.stack(au_rows)
                if au_rows
                else np.zeros((0, self.model_config.num_action_units), np.float32)
            )
            if partial_csv is not None:
                partial_csv.write_text(
                    au_csv_text(au_intensity, self.model_config.action_units, fps), encoding="utf-8"
                )
        # The model runs beside the paste-back and the encoder: what is left of
        # the writing time, less the paste-back and the waits for the model.
        waited = timings.pop(MODEL_WAIT, 0.0)
        timings["encode"] = max(0.0, time.perf_counter() - began - waited - timings["paste-back"])
        return au_intensity, written


__all__ = ["Talker", "check_outputs", "load_photo", "load_speech"]
