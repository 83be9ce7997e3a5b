"""Bundled pretrained models: save a trained `AUTalker` small, load it ready to run.

A pretrained model is a folder with two files:

- `model.json`: `{"format": "keras-autalk-pretrained", "format_version": 1,
  "package_version": ..., "model_config": ModelConfig.to_dict(), "card": {...}}`.
  The card is free-form (what it was trained on, for how long, its scores).
- `generator.weights.npz`: the weights of the generator's networks only
  (`AUTalker.GENERATOR_NETWORKS`: audio encoder, Audio2AU, AU encoder,
  identity encoder, fusion, decoder), keyed by each variable's path inside
  the model (`decoder/content/kernel`), stored as float16 by default. The
  discriminator and the AU classifier are needed only to train, so a
  bundled model is about a quarter of a float32 checkpoint of the whole GAN.

`load_pretrained("demo")` finds the model the package ships: the folder
`saved_models/demo` at the top of the repository (a source checkout or an
editable install), or the package `keras_autalk.saved_models` a wheel
installs it as. Any other argument is the path of a model folder.
"""

import hashlib
import json
import os
import pathlib
import shutil
import tempfile
import threading
import zipfile

import numpy as np

from keras_autalk.config import MODEL_PRESETS
from keras_autalk.errors import AutalkError
from keras_autalk.version import __version__

FORMAT = "keras-autalk-pretrained"
FORMAT_VERSION = 1
CONFIG_FILE = "model.json"
WEIGHTS_FILE = "generator.weights.npz"
WEIGHTS_DTYPES = ("float16", "float32")
DEFAULT_MODEL = "demo"

_PACKAGE_DIR = pathlib.Path(__file__).resolve().parents[1]
# Where named models are looked for, in order: installed inside the package
# (a wheel maps the repository's saved_models/ to keras_autalk/saved_models),
# then the repository's own top-level folder (source checkout, editable install).
SEARCH_DIRS = (_PACKAGE_DIR / "saved_models", _PACKAGE_DIR.parent / "saved_models")

# Pretrained models named by `registry.register_preset`: name -> folder.
REGISTERED_DIRS = {}

_CACHE = {}
_CACHE_LOCK = threading.Lock()


class PretrainedModelError(AutalkError):
    """A pretrained model is missing, of another format, or does not fit its config."""


def _generator_networks():
    from keras_autalk.models.talker import GENERATOR_NETWORKS

    return GENERATOR_NETWORKS


def _weight_key(variable, network_name):
    """`variable`'s path from its network on: "decoder/content/kernel".

    Keras prefixes paths with the outer model's name, which is uniquified per
    process (`au_talker`, `au_talker_1`, ...), so it is left out.
    """
    parts = variable.path.split("/")
    if network_name in parts:
        parts = parts[parts.index(network_name) :]
    else:  # a network built on its own: its path starts at its own layers
        parts = [network_name] + parts
    return "/".join(parts)


def generator_weights(model):
    """The generator networks' weights of a built `AUTalker`, keyed by path.

    Args:
        model: a built `AUTalker`.

    Returns:
        A dict `{"decoder/content/kernel": np.ndarray, ...}` (float32) over
        `GENERATOR_NETWORKS`; the discriminator and AU classifier are left out.
    """
    weights = {}
    for name in _generator_networks():
        network = getattr(model, name)
        if network is None:  # an ablation without this branch
            continue
        for variable in network.weights:
            key = _weight_key(variable, name)
            if key in weights:
                raise ValueError(f"Two generator variables share the path {key!r}.")
            weights[key] = np.asarray(variable.numpy())
    return weights


def _write_npz(path, arrays):
    """An `.npz` (uncompressed) with fixed timestamps, so equal weights give equal bytes."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        for key in sorted(arrays):
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            with archive.open(info, "w", force_zip64=True) as handle:
                np.lib.format.write_array(
                    handle, np.ascontiguousarray(arrays[key]), allow_pickle=False
                )


def save_pretrained(model, directory, card=None, weights_dtype="float16"):
    """Write `model` as a pretrained-model folder (`model.json` + generator weights).

    The folder is written under a temporary name beside `directory` and
    renamed into place when complete, replacing an older version there.

    Args:
        model: a built `AUTalker` (trained, or not for tests).
        directory: the folder to create, e.g. "saved_models/demo"; its
            parent must exist.
        card: a JSON-serialisable dict describing the model (training data,
            steps, scores); stored under "card".
        weights_dtype: "float16" (default: half the size, plenty for
            inference) or "float32".

    Returns:
        The folder as a `pathlib.Path`.

    Raises:
        ValueError: the model is not built, a weight does not fit in
            float16, or `weights_dtype` is unknown.
        PretrainedModelError: the parent folder does not exist.

    Example:
    ```python
    save_pretrained(model, "saved_models/demo", card={"trained_on": "demo corpus"})
    ```
    """
    if weights_dtype not in WEIGHTS_DTYPES:
        raise ValueError(f"weights_dtype must be one of {WEIGHTS_DTYPES}, got {weights_dtype!r}.")
    if not model.built:
        raise ValueError("Build the model (call it once) before saving it.")
    directory = pathlib.Path(directory)
    parent = directory.parent
    if not parent.is_dir():
        raise PretrainedModelError(
            f"Cannot write the pretrained model '{directory}': the folder '{parent}' "
            "does not exist."
        )
    weights = generator_weights(model)
    stored = {}
    for key, value in weights.items():
        if weights_dtype == "float16":
            limit = float(np.finfo(np.float16).max)
            if not np.all(np.isfinite(value)) or np.abs(value).max(initial=0.0) > limit:
                raise ValueError(f"The weight {key!r} does not fit in float16.")
        stored[key] = value.astype(weights_dtype)
    record = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "package_version": __version__,
        "model_config": model.model_config.to_dict(),
        "card": dict(card or {}),
    }
    work = pathlib.Path(
        tempfile.mkdtemp(prefix=f".{directory.name}.", suffix=".partial", dir=parent)
    )
    old = None
    try:
        _write_npz(work / WEIGHTS_FILE, stored)
        record["files"] = {
            WEIGHTS_FILE: {
                "sha256": file_sha256(work / WEIGHTS_FILE),
                "bytes": (work / WEIGHTS_FILE).stat().st_size,
            }
        }
        text = json.dumps(record, indent=2, sort_keys=False) + "\n"
        (work / CONFIG_FILE).write_text(text, encoding="utf-8")
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(work, 0o777 & ~umask)
        if directory.exists():
            # A folder cannot be replaced in one rename: move the old one aside first.
            old = pathlib.Path(
                tempfile.mkdtemp(prefix=f".{directory.name}.", suffix=".old", dir=parent)
            )
            os.rmdir(old)
            os.replace(directory, old)
        os.replace(work, directory)
    except BaseException:
        if old is not None and old.exists() and not directory.exists():
            os.replace(old, directory)
        raise
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
        if old is not None and old.exists():
            shutil.rmtree(old, ignore_errors=True)
    _forget(directory)
    return directory


def available_models(search_dirs=None):
    """Names of the pretrained models found in `search_dirs` (default `SEARCH_DIRS`), sorted."""
    names = set()
    for folder in search_dirs or SEARCH_DIRS:
        folder = pathlib.Path(folder)
        if folder.is_dir():
            names.update(
                child.name for child in folder.iterdir() if (child / CONFIG_FILE).is_file()
            )
    return sorted(names)


def is_plain_name(name_or_path):
    """Whether `name_or_path` can be a model name (no folder separators)."""
    text = str(name_or_path)
    return (
        not isinstance(name_or_path, os.PathLike)
        and "/" not in text
        and os.sep not in text
        and text not in ("", ".", "..")
    )


def no_weights_message(name):
    """The one sentence that refuses an architecture preset where weights are needed."""
    trained = list(dict.fromkeys(available_models() + list(REGISTERED_DIRS)))
    choice = f"a pretrained model ({', '.join(trained)})" if trained else "a pretrained model"
    return (
        f"'{name}' is an architecture without trained weights; give {choice} or a model "
        "folder (autalk presets lists them), or train it first with autalk train."
    )


def resolve_model_dir(name_or_path=DEFAULT_MODEL, search_dirs=None):
    """The folder of a pretrained model given by name ("demo") or path.

    Args:
        name_or_path: a name found in `search_dirs` (with the default
            folders, also a name given to `registry.register_preset`), or
            the path of a model folder (or of its `model.json`).
        search_dirs: folders holding named models (default `SEARCH_DIRS`).

    Returns:
        The model folder as a `pathlib.Path` (it holds `model.json`).

    Raises:
        PretrainedModelError: an unknown name (the available ones are
            listed), an architecture preset ("small": no weights), a
            missing folder, or a folder without `model.json`.
    """
    default_dirs = not search_dirs
    search_dirs = tuple(pathlib.Path(d) for d in (search_dirs or SEARCH_DIRS))
    if is_plain_name(name_or_path):
        name = str(name_or_path)
        if default_dirs:
            # The names of `presets.registry` come first: registered folders, architectures.
            if name in REGISTERED_DIRS:
                return resolve_model_dir(REGISTERED_DIRS[name])
            if name in MODEL_PRESETS:
                raise PretrainedModelError(no_weights_message(name))
        for folder in search_dirs:
            if (folder / name / CONFIG_FILE).is_file():
                return folder / name
        if not pathlib.Path(name).exists():  # else: a folder in the working directory
            if name == DEFAULT_MODEL:
                places = " or ".join(f"'{folder}'" for folder in search_dirs)
                raise PretrainedModelError(
                    f"The bundled pretrained model '{name}' is missing: no "
                    f"{name}/{CONFIG_FILE} was found in {places}."
                )
            names = available_models(search_dirs) + (list(REGISTERED_DIRS) if default_dirs else [])
            available = ", ".join(dict.fromkeys(names)) or "none are installed"
            raise PretrainedModelError(
                f"Unknown pretrained model '{name}' (available: {available}); "
                "give a name or the path of a model folder."
            )
    path = pathlib.Path(name_or_path)
    if path.name == CONFIG_FILE and path.is_file():
        path = path.parent
    if not path.exists():
        raise PretrainedModelError(f"The pretrained model folder '{path}' does not exist.")
    if not path.is_dir():
        raise PretrainedModelError(
            f"The pretrained model '{path}' is not a folder; give the folder that holds "
            f"{CONFIG_FILE} and {WEIGHTS_FILE}."
        )
    if not (path / CONFIG_FILE).is_file():
        raise PretrainedModelError(
            f"The folder '{path}' is not a keras-autalk pretrained model: it has no {CONFIG_FILE}."
        )
    return path


def read_model_json(directory):
    """Read and check a model folder's `model.json`; return it as a dict.

    Checks the format and its version and that `model_config` is a valid
    `ModelConfig`; "model_config" in the result is a `ModelConfig`.

    Raises:
        PretrainedModelError: unreadable JSON, another format, another
            format version, or an invalid model config.
    """
    from keras_autalk.config import ModelConfig

    directory = pathlib.Path(directory)
    path = directory / CONFIG_FILE
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        reason = getattr(error, "msg", None) or type(error).__name__
        raise PretrainedModelError(f"The file '{path}' is not readable JSON ({reason}).") from None
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        found = record.get("format") if isinstance(record, dict) else None
        raise PretrainedModelError(
            f"The folder '{directory}' is not a keras-autalk pretrained model "
            f"({CONFIG_FILE} has format {found!r}, not {FORMAT!r})."
        )
    if record.get("format_version") != FORMAT_VERSION:
        made_by = record.get("package_version", "an unknown version")
        raise PretrainedModelError(
            f"The pretrained model '{directory}' was made by keras-autalk {made_by} "
            f"(format version {record.get('format_version')!r}); this is keras-autalk "
            f"{__version__}, which reads format version {FORMAT_VERSION}, so use a matching "
            "keras-autalk or a model saved by this one."
        )
    try:
        config = ModelConfig.from_dict(dict(record.get("model_config") or {}))
    except (TypeError, ValueError) as error:
        raise PretrainedModelError(
            f"The pretrained model '{directory}' has an invalid model_config ({error})."
        ) from None
    record = dict(record)
    record["model_config"] = config
    return record


def file_sha256(path):
    """The SHA-256 of a file, as hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_files(directory, record=None):
    """Check every file `model.json` lists against its SHA-256.

    A folder saved before checksums were recorded lists none and passes.

    Returns:
        The number of files checked.

    Raises:
        PretrainedModelError: a listed file is missing or its SHA-256 differs
            (a damaged or replaced file), in one sentence naming it.
    """
    directory = pathlib.Path(directory)
    record = record if record is not None else read_model_json(directory)
    listed = record.get("files") or {}
    for name, facts in listed.items():
        path = directory / name
        if not path.is_file():
            raise PretrainedModelError(f"The pretrained model '{directory}' has no {name}.")
        if file_sha256(path) != facts.get("sha256"):
            raise PretrainedModelError(
                f"The file '{path}' does not match the SHA-256 its model.json records: it is "
                "damaged or was replaced; reinstall keras-autalk or save the model again."
            )
    return len(listed)


def _read_weights(directory, record=None):
    path = pathlib.Path(directory) / WEIGHTS_FILE
    if not path.is_file():
        raise PretrainedModelError(f"The pretrained model '{directory}' has no {WEIGHTS_FILE}.")
    check_files(directory, record)
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
        raise PretrainedModelError(
            f"The weights file '{path}' is corrupt ({type(error).__name__})."
        ) from None


def build_inference_model(model_config):
    """An `AUTalker` for `model_config`, built for any batch and clip length.

    Example:
    ```python
    model = build_inference_model(model_config("small"))
    ```
    """
    from keras_autalk.config import AudioConfig
    from keras_autalk.models.talker import AUTalker

    audio = AudioConfig()
    size = model_config.image_size
    model = AUTalker(model_config)
    model.build(
        {
            "identity_image": (None, size, size, 3),
            "audio_features": (None, None, audio.context_steps, audio.num_mel_bins),
        }
    )
    return model


def _assign_weights(model, stored, directory, skip=()):
    expected = {}
    stored = {key: value for key, value in stored.items() if key.split("/")[0] not in skip}
    for name in _generator_networks():
        network = getattr(model, name)
        if network is None or name in skip:
            continue
        for variable in network.weights:
            expected[_weight_key(variable, name)] = variable
    missing = sorted(set(expected) - set(stored))
    unexpected = sorted(set(stored) - set(expected))
    wrong_shape = sorted(
        key
        for key in set(expected) & set(stored)
        if tuple(stored[key].shape) != tuple(expected[key].shape)
    )
    wrong_dtype = sorted(key for key in stored if stored[key].dtype.name not in WEIGHTS_DTYPES)
    if missing or unexpected or wrong_shape or wrong_dtype:
        problems = []
        if missing:
            problems.append(f"{len(missing)} weight(s) missing, e.g. {missing[0]}")
        if unexpected:
            problems.append(f"{len(unexpected)} unexpected, e.g. {unexpected[0]}")
        if wrong_shape:
            key = wrong_shape[0]
            problems.append(
                f"{len(wrong_shape)} of another shape, e.g. {key} is "
                f"{tuple(stored[key].shape)} instead of {tuple(expected[key].shape)}"
            )
        if wrong_dtype:
            problems.append(f"{len(wrong_dtype)} not float16/float32, e.g. {wrong_dtype[0]}")
        raise PretrainedModelError(
            f"The weights of the pretrained model '{directory}' do not match its "
            f"model_config ({'; '.join(problems)})."
        )
    for key, variable in expected.items():
        variable.assign(stored[key].astype(variable.dtype))


def load_generator_weights(model, name_or_path, skip=()):
    """Put a pretrained model's generator weights into `model` (an `AUTalker`).

    The discriminator and the AU classifier are left as they are: this is
    the start of training a bundled model further (`autalk train ...
    --init-weights demo`).

    Args:
        model: a built `AUTalker`.
        name_or_path: a pretrained model's name or folder.
        skip: generator networks (`GENERATOR_NETWORKS` names, e.g.
            "decoder") left as they are, e.g. to start a model with another
            decoder from the bundled model's encoders and fusion.

    Raises:
        PretrainedModelError: no such model, or its weights do not fit.
    """
    directory = resolve_model_dir(name_or_path)
    _assign_weights(model, _read_weights(directory), directory, skip=tuple(skip))
    return directory


def _cache_key(directory):
    directory = pathlib.Path(directory).resolve()
    stamps = []
    for name in (CONFIG_FILE, WEIGHTS_FILE):
        try:
            stat = (directory / name).stat()
            stamps.append((stat.st_mtime_ns, stat.st_size))
        except OSError:
            stamps.append(None)
    return (str(directory), tuple(stamps))


def _forget(directory):
    prefix = str(pathlib.Path(directory).resolve())
    with _CACHE_LOCK:
        for key in [key for key in _CACHE if key[0] == prefix]:
            del _CACHE[key]


def clear_cache():
    """Forget every model `load_pretrained` has loaded in this process."""
    with _CACHE_LOCK:
        _CACHE.clear()


def load_pretrained(name_or_path=DEFAULT_MODEL):
    """Load a pretrained `AUTalker`, built and ready for inference (float32).

    Models are cached per folder in the process (a folder saved again is
    read again), so repeated `generate` calls load each model once. The
    returned model is that shared instance: copy it before changing its
    weights.

    Args:
        name_or_path: "demo" (the bundled model), another name in
            `SEARCH_DIRS`, or the path of a folder `save_pretrained` wrote.

    Returns:
        The `AUTalker`; `model.model_config` is its config and
        `model.pretrained_card` the card saved with it.

    Raises:
        PretrainedModelError: an unknown name, a missing folder or file, a
            model of another format or format version, or weights that do
            not match the model config; each explained in one sentence.

    Example:
    ```python
    model = load_pretrained("demo")
    outputs = model({"identity_image": crop[None], "audio_features": features[None]})
    ```
    """
    directory = resolve_model_dir(name_or_path)
    key = _cache_key(directory)
    with _CACHE_LOCK:
        if key in _CACHE:
            return _CACHE[key]
    record = read_model_json(directory)
    stored = _read_weights(directory, record)
    from keras_autalk.native import import_tensorflow

    import_tensorflow()
    model = build_inference_model(record["model_config"])
    _assign_weights(model, stored, directory)
    # Plain attributes, past Keras's tracking (which would wrap the dict).
    object.__setattr__(model, "pretrained_card", dict(record.get("card") or {}))
    object.__setattr__(model, "pretrained_path", directory)
    _forget(directory)
    with _CACHE_LOCK:
        _CACHE[key] = model
    return model


__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "PretrainedModelError",
    "SEARCH_DIRS",
    "available_models",
    "build_inference_model",
    "check_files",
    "clear_cache",
    "file_sha256",
    "generator_weights",
    "is_plain_name",
    "no_weights_message",
    "load_pretrained",
    "read_model_json",
    "resolve_model_dir",
    "save_pretrained",
]
