"""`autalk doctor`: is everything the package needs installed and working?

One line per component; required components that fail make the command
exit non-zero. tensorflow-io is optional: without its ops the audio code
falls back to soundfile and librosa.

By default it answers in well under a second: what `generate` needs is
loaded (LiteRT with the bundled generator, dlib, ffmpeg, espeak-ng, the
bundled model's checksums), and the training stack (TensorFlow, Keras,
tensorflow-io) is checked by its installed version. `--full` also imports
TensorFlow and Keras, loads tensorflow-io's ops and every dlib model.
"""

import dataclasses
import importlib.metadata
import platform
import subprocess

from keras_autalk.commands.common import EXIT_ERROR, EXIT_OK


@dataclasses.dataclass
class Check:
    """One line of the report."""

    name: str
    ok: bool
    detail: str
    required: bool = True


def _version(distribution):
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def check_python(full=True):
    return Check("python", True, platform.python_version())


def check_package(full=True):
    from keras_autalk import __version__

    return Check("keras-autalk", True, __version__)


def check_tensorflow(full=True):
    if not full:
        return _installed("tensorflow")
    try:
        import tensorflow as tf
    except Exception as error:  # noqa: BLE001 - report any import failure
        return Check("tensorflow", False, f"cannot import: {error}")
    return Check("tensorflow", True, tf.__version__)


def check_keras(full=True):
    if not full:
        return _installed("keras")
    try:
        import keras
    except Exception as error:  # noqa: BLE001
        return Check("keras", False, f"cannot import: {error}")
    backend = keras.backend.backend()
    return Check("keras", backend == "tensorflow", f"{keras.__version__} (backend {backend})")


def check_numpy(full=True):
    import numpy

    return Check("numpy", numpy.__version__.startswith("1."), numpy.__version__)


def check_tensorflow_io(full=True):
    if not full:
        return _installed("tensorflow-io", full_does="loads its ops", required=False)
    from keras_autalk.features import tfio_backend

    loaded, reason = tfio_backend.tfio_status()
    version = _version("tensorflow-io") or "not installed"
    if loaded:
        return Check("tensorflow-io", True, f"{version}, ops load", required=False)
    return Check(
        "tensorflow-io",
        False,
        f"{version}, ops do not load ({reason}); audio uses soundfile + librosa instead",
        required=False,
    )


def check_dlib(full=True):
    try:
        import dlib

        from keras_autalk.media import face

        paths = [face.model_path(kind) for kind in face.MODEL_FILES]
        if full:
            face._hog_detector()
            face._shape_predictor()
            face._cnn_detector()
            embedding = dlib.face_recognition_model_v1(str(face.model_path("embedding")))
            del embedding
    except Exception as error:  # noqa: BLE001
        return Check("dlib", False, f"{error}")
    if not full:
        return Check(
            "dlib",
            True,
            f"{dlib.__version__}, model files of the 68-point predictor, "
            f"CNN detector and face embedding present ({paths[0].parent})",
        )
    return Check(
        "dlib",
        True,
        f"{dlib.__version__}, HOG + CNN detectors, 68-point predictor and face embedding load",
    )


def check_ffmpeg(full=True):
    from keras_autalk.media import ffmpeg

    try:
        executable = ffmpeg.ffmpeg_exe()
        encoders = subprocess.run(
            [executable, "-hide_banner", "-encoders"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            check=True,
        ).stdout.decode("utf-8", "replace")
    except Exception as error:  # noqa: BLE001
        return Check("ffmpeg", False, f"{error}")
    missing = [name for name in ("libx264", "aac") if f" {name} " not in encoders]
    if missing:
        return Check("ffmpeg", False, f"{executable} lacks the encoders {', '.join(missing)}")
    return Check("ffmpeg", True, f"{ffmpeg.ffmpeg_version()} with libx264 and aac ({executable})")


def check_audio_libraries(full=True):
    try:
        import soundfile
        import soxr
    except Exception as error:  # noqa: BLE001
        return Check("soundfile/soxr", False, f"cannot import: {error}")
    return Check(
        "soundfile/soxr",
        True,
        f"libsndfile {soundfile.__libsndfile_version__}, soxr {soxr.__version__}, "
        f"librosa {_version('librosa') or 'MISSING'}",
    )


def check_espeak(full=True):
    try:
        import ctypes

        import espeakng_loader

        library = espeakng_loader.get_library_path()
        ctypes.CDLL(library)
        data = espeakng_loader.get_data_path()
    except Exception as error:  # noqa: BLE001
        return Check("espeak-ng", False, f"{error}")
    return Check("espeak-ng", True, f"libespeak-ng loads ({library}); data {data}")


def check_bundled_model(full=True):
    """The bundled model's files against the SHA-256 its model.json records."""
    from keras_autalk.presets import pretrained

    try:
        directory = pretrained.resolve_model_dir(pretrained.DEFAULT_MODEL)
        record = pretrained.read_model_json(directory)
        checked = pretrained.check_files(directory, record)
    except Exception as error:  # noqa: BLE001 - report any failure in one line
        return Check("bundled model", False, str(error))
    if not checked:
        return Check("bundled model", False, f"{directory}: model.json records no checksums")
    return Check(
        "bundled model",
        True,
        f"{directory.name}: {checked} file(s) match their SHA-256 "
        f"(decoder {record['model_config'].decoder})",
    )


def check_litert(full=True):
    """LiteRT runs the bundled model's generator.tflite (what `generate` uses by default)."""
    from keras_autalk.inference import runtime
    from keras_autalk.presets import pretrained

    version = _version("ai-edge-litert")
    try:
        path = pretrained.resolve_model_dir(pretrained.DEFAULT_MODEL) / runtime.LITERT_FILE
        runner = runtime.LiteRTRunner(path)
    except Exception as error:  # noqa: BLE001 - report any failure in one line
        return Check(
            "ai-edge-litert",
            False,
            f"{version or 'not installed'}: {error} (generate falls back to Keras)",
            required=False,
        )
    return Check(
        "ai-edge-litert",
        True,
        f"{version}, runs the bundled generator.tflite ({runner.num_threads} threads)",
        required=False,
    )


def _installed(distribution, full_does="imports it", required=True):
    """A check by installed version alone; `full_does` says what `autalk doctor --full` adds."""
    version = _version(distribution)
    if version is None:
        return Check(distribution, False, "not installed", required=required)
    return Check(distribution, True, f"{version} (installed; --full {full_does})", required)


CHECKS = (
    check_package,
    check_python,
    check_tensorflow,
    check_keras,
    check_numpy,
    check_tensorflow_io,
    check_litert,
    check_dlib,
    check_ffmpeg,
    check_audio_libraries,
    check_espeak,
    check_bundled_model,
)


def run_checks(full=True):
    """Run every check (`full`: import TensorFlow, load every model); return the `Check`s."""
    return [check(full) for check in CHECKS]


def format_report(checks):
    """The report: one line per check, `ok`, `MISSING` or `fallback` first."""
    lines = []
    for check in checks:
        status = "ok" if check.ok else ("MISSING" if check.required else "fallback")
        lines.append(f"{status:8s} {check.name:18s} {check.detail}")
    return "\n".join(lines)


def all_required_ok(checks):
    """Whether every required check passed."""
    return all(check.ok for check in checks if check.required)


def add_parser(subparsers):
    """Add `autalk doctor` and its options to `subparsers`."""
    parser = subparsers.add_parser(
        "doctor", help="check the installation: versions, dlib models, ffmpeg, LiteRT"
    )
    parser.add_argument(
        "--full",
        action="store_true",
        help="also import TensorFlow and Keras, load tensorflow-io's ops and "
        "every dlib model (a few seconds)",
    )
    parser.set_defaults(handler=run)


def run(args):
    """Run `autalk doctor` with its parsed options; return the exit status."""
    from keras_autalk.commands import doctor

    if args.full:
        from keras_autalk.native import import_tensorflow

        import_tensorflow()
    checks = doctor.run_checks(full=args.full)
    print(doctor.format_report(checks))
    return EXIT_OK if doctor.all_required_ok(checks) else EXIT_ERROR
