"""media/ is the TensorFlow-free room: importing all of it loads neither TensorFlow nor Keras."""

import json
import pathlib
import subprocess
import sys

import keras_autalk

MEDIA = pathlib.Path(keras_autalk.__file__).parent / "media"


def media_modules():
    return sorted(
        f"keras_autalk.media.{path.stem}" for path in MEDIA.glob("*.py") if path.stem != "__init__"
    )


def run_python(script):
    """Run `script` in a fresh interpreter; return its stdout."""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_every_media_module_imports_without_tensorflow_or_keras():
    modules = media_modules()
    assert "keras_autalk.media.face" in modules and "keras_autalk.media.audio" in modules
    script = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted(name for name in ('tensorflow', 'keras', 'tensorflow_io')"
        " if name in sys.modules)))\n"
    )
    assert json.loads(run_python(script).strip().splitlines()[-1]) == []


def test_the_tfio_backend_is_there_only_once_the_tensorflow_features_are_imported():
    script = (
        "from keras_autalk.media import audio_backends\n"
        "before = 'tfio' in audio_backends._BACKENDS\n"
        "import keras_autalk.features.log_mel\n"
        "print(before, 'tfio' in audio_backends._BACKENDS)\n"
    )
    assert run_python(script).split() == ["False", "True"]
