"""One registry of named models: architectures and pretrained weights.

Like KerasHub's presets, every model a user can name is a `Preset`:

- an *architecture* ("small", "paper"): a `ModelConfig` and nothing else;
  `AUTalker.from_preset("small")` builds it untrained, for training;
- a *pretrained* model ("demo", and every other folder in
  `pretrained.SEARCH_DIRS`): a folder holding `model.json` and the
  generator's weights; `AUTalker.from_preset("demo")` loads it and
  `Talker.from_preset("demo", photo)` animates a photo with it.

A model folder's path works wherever a name does. `list_presets()` lists
them all (`autalk presets` prints the table), `get_preset(name)` finds one,
`register_preset(name, source, ...)` adds one of your own for this process.

Nothing here imports TensorFlow or Keras: the architectures' parameter
counts are stored numbers, checked by `tests/presets/test_registry.py`
against models built with Keras.
"""

import dataclasses
import pathlib
import zipfile
from typing import Optional

import numpy as np

from keras_autalk.config import MODEL_PRESETS, ModelConfig
from keras_autalk.presets import pretrained

ARCHITECTURE = "architecture"
PRETRAINED = "pretrained"
KINDS = (ARCHITECTURE, PRETRAINED)
# The package's licence (setup.py), which covers the architectures' code and
# the models bundled in the package whose card names no licence of its own.
PACKAGE_LICENSE = "Apache-2.0"
UNSTATED_LICENSE = "unstated"


@dataclasses.dataclass(frozen=True)
class Preset:
    """A named model: an architecture, or a pretrained model's folder.

    Attributes:
        name: what the user types ("small", "demo").
        kind: "architecture" (a config, no weights) or "pretrained" (a
            folder with `model.json` and the generator's weights).
        description: one line for listings.
        config: the `ModelConfig` (for a pretrained model, the one its
            `model.json` records).
        path: the model folder (pretrained), or None (architecture).
        parameters: the generator's parameter count: the weights that make
            the video (audio encoder, Audio-to-AU, AU encoder, identity
            encoder, fusion, decoder), which is what a pretrained folder
            stores; None where unknown.
        training_parameters: parameters of the whole GAN as trained: the
            generator, the frame discriminator and the frozen AU classifier
            (`docs/benchmarks.md`'s "parameters"); None where unknown.
        size_bytes: the folder's files together (pretrained), else None.
        license: the licence its weights (or code) come under.
    """

    name: str
    kind: str
    description: str
    config: ModelConfig
    path: Optional[pathlib.Path] = None
    parameters: Optional[int] = None
    training_parameters: Optional[int] = None
    size_bytes: Optional[int] = None
    license: str = UNSTATED_LICENSE

    @property
    def has_weights(self):
        """Whether the preset carries trained weights."""
        return self.kind == PRETRAINED


class UnknownPresetError(pretrained.PretrainedModelError, ValueError):
    """A name that no preset has (a `ValueError` too, as KerasHub raises)."""


# The built-in architectures. The counts come from models built with Keras
# (`tests/presets/test_registry.py` builds them and compares); with the
# default "frames" decoder and drive "audio+au".
_ARCHITECTURES = {
    "small": dict(
        description="Small talker, trains on a CPU (a few seconds a step); untrained.",
        parameters=3_084_489,
        training_parameters=4_818_831,
    ),
    "paper": dict(
        description="The paper's size, for training on a GPU at 128x128; untrained.",
        parameters=34_722_889,
        training_parameters=45_516_751,
    ),
}
_REGISTERED = {}


def _architecture(name):
    facts = _ARCHITECTURES.get(name, {})
    return Preset(
        name=name,
        kind=ARCHITECTURE,
        config=MODEL_PRESETS[name],
        description=facts.get("description", "Architecture; untrained."),
        parameters=facts.get("parameters"),
        training_parameters=facts.get("training_parameters"),
        license=PACKAGE_LICENSE,
    )


def npz_parameter_count(path):
    """The number of values in an `.npz` file's arrays, read from their headers only."""
    total = 0
    with zipfile.ZipFile(path) as archive:
        for member in archive.namelist():
            with archive.open(member) as handle:
                version = np.lib.format.read_magic(handle)
                if version == (1, 0):
                    shape = np.lib.format.read_array_header_1_0(handle)[0]
                else:
                    shape = np.lib.format.read_array_header_2_0(handle)[0]
            total += int(np.prod(shape, dtype=np.int64))
    return total


def _folder_size(folder):
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def _card_description(card, config):
    """The card's "description", else a line made of what the card records."""
    if isinstance(card.get("description"), str):
        return card["description"]
    text = f"The {card['preset']} architecture" if card.get("preset") else "A model"
    text += f" with a {config.decoder} decoder"
    if isinstance(card.get("steps"), int):
        text += f", trained {card['steps']:,} steps"
    if isinstance(card.get("data"), str):
        # "<corpus> (<how it was made>): <counts>" -> "<corpus>"
        text += " on the " + card["data"].split(":")[0].split(" (")[0].strip()
    return text + "."


def _is_bundled(folder):
    return any(
        pathlib.Path(folder).resolve().parent == pathlib.Path(place).resolve()
        for place in pretrained.SEARCH_DIRS
    )


def preset_from_folder(folder, name=None, description=None, license=None):
    """The `Preset` of a pretrained model folder (its `model.json` is read and checked).

    Args:
        folder: the model folder (or its `model.json`).
        name: the preset's name; default the folder's name.
        description, license: replace what the card says.

    Raises:
        PretrainedModelError: not a model folder, in one sentence.
    """
    folder = pretrained.resolve_model_dir(pathlib.Path(folder))
    record = pretrained.read_model_json(folder)
    card = record.get("card") if isinstance(record.get("card"), dict) else {}
    weights = folder / pretrained.WEIGHTS_FILE
    stated = card.get("license") or card.get("licence")
    if license is None:
        # A bundled model ships inside the package, under the package's licence.
        license = stated or (PACKAGE_LICENSE if _is_bundled(folder) else UNSTATED_LICENSE)
    try:
        parameters = npz_parameter_count(weights) if weights.is_file() else None
    except (OSError, ValueError, zipfile.BadZipFile):
        parameters = None  # a damaged file is reported when it is loaded
    return Preset(
        name=name or folder.name,
        kind=PRETRAINED,
        path=folder,
        config=record["model_config"],
        description=description or _card_description(card, record["model_config"]),
        parameters=parameters,
        size_bytes=_folder_size(folder),
        license=str(license),
    )


def named_preset(name):
    """The registered preset or built-in architecture called `name`, or None.

    Reads no file: the pretrained folders in `SEARCH_DIRS` are
    `pretrained.resolve_model_dir`'s to find.
    """
    if name in _REGISTERED:
        return _REGISTERED[name]
    if name in MODEL_PRESETS:
        return _architecture(name)
    return None


def _names():
    """Every preset name, architectures first, each name once."""
    names = list(MODEL_PRESETS) + pretrained.available_models() + list(_REGISTERED)
    return list(dict.fromkeys(names))


def get_preset(name_or_path):
    """The preset called `name_or_path`, or the pretrained model in that folder.

    Args:
        name_or_path: a preset name ("small", "demo", one you registered) or
            the path of a model folder.

    Returns:
        A `Preset`.

    Raises:
        UnknownPresetError: no preset has that name (the known ones are
            listed), in one sentence.
        PretrainedModelError: the folder is missing or not a model folder.

    Example:
    >>> get_preset("paper").training_parameters
    45516751
    """
    if pretrained.is_plain_name(name_or_path):
        name = str(name_or_path)
        found = named_preset(name)
        if found is not None:
            return found
        if name in pretrained.available_models():
            return preset_from_folder(pretrained.resolve_model_dir(name), name=name)
        if not pathlib.Path(name).exists():
            raise UnknownPresetError(
                f"Unknown preset '{name}' (known: {', '.join(_names())}); give a preset "
                "name or the path of a model folder."
            )
    return preset_from_folder(name_or_path)


def list_presets(kind=None):
    """Every preset: the architectures, the pretrained folders found, the registered ones.

    Args:
        kind: None (all), "architecture" or "pretrained".

    Returns:
        A list of `Preset`s, architectures first.

    Example:
    >>> [preset.name for preset in list_presets("architecture")][:2]
    ['small', 'paper']
    """
    if kind is not None and kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS} or None, got {kind!r}.")
    presets = []
    for name in _names():
        preset = named_preset(name)
        if preset is None:
            try:
                preset = preset_from_folder(pretrained.resolve_model_dir(name), name=name)
            except pretrained.PretrainedModelError:
                continue  # a broken folder is reported when it is used, not listed
        if kind is None or preset.kind == kind:
            presets.append(preset)
    return sorted(presets, key=lambda preset: KINDS.index(preset.kind))


def register_preset(name, source, description=None, license=None, parameters=None, overwrite=False):
    """Add a preset for this process: an architecture or a pretrained folder.

    An architecture joins `config.MODEL_PRESETS` (so `model_config(name)`
    and training find it too); a folder joins the names `generate --model`
    and `load_pretrained` know.

    Args:
        name: the name to use it by (no folder separators).
        source: a `ModelConfig` (an architecture) or the path of a model
            folder `save_pretrained` wrote (a pretrained model).
        description: one line for listings; default from the folder's card.
        license: its licence; default the card's, else "unstated".
        parameters: the generator's parameter count of an architecture
            (a folder's is read from its weights).
        overwrite: replace a preset registered earlier under that name (the
            built-in and bundled ones cannot be replaced).

    Returns:
        The new `Preset`.

    Raises:
        ValueError: a name with a folder separator, a name already taken,
            or a source of another type.
        PretrainedModelError: the folder is not a model folder.

    Example:
    ```python
    register_preset("tiny", model_config("small", encoder_filters=(8, 16, 32, 64)))
    model = AUTalker.from_preset("tiny")
    register_preset("mine", "runs/talker/pretrained", description="Trained on my clips.")
    talker = Talker.from_preset("mine", "face.jpg")
    ```
    """
    if not pretrained.is_plain_name(name):
        raise ValueError(f"A preset name cannot hold a folder separator, got {name!r}.")
    if name in _names() and not (overwrite and name in _REGISTERED):
        fixed = name not in _REGISTERED
        raise ValueError(
            f"A preset named '{name}' exists already; give another name"
            + ("." if fixed else " or overwrite=True.")
        )
    if isinstance(source, ModelConfig):
        preset = Preset(
            name=name,
            kind=ARCHITECTURE,
            config=source,
            description=description or "Architecture; untrained.",
            parameters=parameters,
            license=license or UNSTATED_LICENSE,
        )
    elif isinstance(source, (str, pathlib.PurePath)):
        preset = preset_from_folder(source, name=name, description=description, license=license)
    else:
        raise ValueError(
            f"source must be a ModelConfig or a model folder's path, got {type(source).__name__}."
        )
    _forget_registered(name)
    _REGISTERED[name] = preset
    if preset.has_weights:
        pretrained.REGISTERED_DIRS[name] = preset.path
    else:
        MODEL_PRESETS[name] = preset.config
    return preset


def _forget_registered(name):
    if _REGISTERED.pop(name, None) is not None:
        pretrained.REGISTERED_DIRS.pop(name, None)
        MODEL_PRESETS.pop(name, None)


__all__ = [
    "ARCHITECTURE",
    "PRETRAINED",
    "Preset",
    "UnknownPresetError",
    "get_preset",
    "list_presets",
    "named_preset",
    "npz_parameter_count",
    "preset_from_folder",
    "register_preset",
]
