"""The preset registry: one name for every model, `from_preset`, `autalk presets`."""

import subprocess
import sys

import numpy as np
import pytest
import soundfile
from PIL import Image

from keras_autalk.config import MODEL_PRESETS, model_config
from keras_autalk.presets import pretrained, registry
from tests.pretrained_helpers import speech_like, tiny_config
from tests.test_cli import assert_one_sentence_error, run


def one_sentence(error):
    text = str(error.value)
    assert "\n" not in text and text.endswith("."), text
    return text


@pytest.fixture()
def clean_registry():
    """Whatever a test registers is gone after it."""
    saved = (dict(MODEL_PRESETS), dict(pretrained.REGISTERED_DIRS), dict(registry._REGISTERED))
    yield
    for live, before in zip(
        (MODEL_PRESETS, pretrained.REGISTERED_DIRS, registry._REGISTERED), saved
    ):
        live.clear()
        live.update(before)


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    """A tiny untrained model saved as a pretrained folder, with a card."""
    from keras_autalk.presets.pretrained import build_inference_model

    folder = tmp_path_factory.mktemp("models") / "tiny"
    card = {"description": "A tiny test model.", "license": "CC0-1.0"}
    pretrained.save_pretrained(build_inference_model(tiny_config()), folder, card=card)
    return folder


def generator_parameters(model):
    return sum(
        getattr(model, name).count_params()
        for name in (
            "audio_encoder",
            "audio2au",
            "au_encoder",
            "identity_encoder",
            "fusion",
            "decoder",
        )
        if getattr(model, name) is not None
    )


# ------------------------------------------------------------------ listing
def test_the_listing_holds_both_architectures_and_the_bundled_model():
    presets = {preset.name: preset for preset in registry.list_presets()}
    assert list(presets)[:2] == ["small", "paper"]
    for name in ("small", "paper"):
        assert presets[name].kind == "architecture" and not presets[name].has_weights
        assert presets[name].config == MODEL_PRESETS[name]
        assert presets[name].path is None and presets[name].size_bytes is None
        assert presets[name].license == "Apache-2.0"
    demo = presets["demo"]
    assert demo.kind == "pretrained" and demo.path == pretrained.resolve_model_dir("demo")
    assert demo.config == pretrained.read_model_json(demo.path)["model_config"]
    assert demo.size_bytes == sum(path.stat().st_size for path in demo.path.iterdir())
    with np.load(demo.path / pretrained.WEIGHTS_FILE) as weights:
        assert demo.parameters == sum(weights[key].size for key in weights.files)
    # The bundled card names no licence: the package's covers what it ships.
    assert demo.license == "Apache-2.0"
    assert demo.description.startswith("The small architecture with a flow decoder, trained")
    assert [p.name for p in registry.list_presets("pretrained")] == ["demo"]
    assert [p.name for p in registry.list_presets("architecture")] == ["small", "paper"]


def test_stored_parameter_counts_are_those_of_the_models_keras_builds():
    """`parameters`: the generator; `training_parameters`: plus discriminator and AU classifier."""
    from keras_autalk.models import AUClassifier
    from keras_autalk.presets.pretrained import build_inference_model

    for name in ("small", "paper"):  # "paper" is built once, here (about 3 s)
        preset, config = registry.get_preset(name), MODEL_PRESETS[name]
        model = build_inference_model(config)
        classifier = AUClassifier(config.action_units, config.au_classifier_filters)
        classifier.build((None, config.image_size, config.image_size, 3))
        assert preset.parameters == generator_parameters(model)
        assert preset.training_parameters == (
            preset.parameters + model.discriminator.count_params() + classifier.count_params()
        )
    # docs/benchmarks.md's "45.5 M" for the paper talker is the whole GAN.
    assert round(registry.get_preset("paper").training_parameters / 1e6, 1) == 45.5


# --------------------------------------------------------------- from_preset
def test_an_architecture_builds_untrained():
    from keras_autalk.models.talker import AUTalker

    model = AUTalker.from_preset("small")
    assert isinstance(model, AUTalker) and model.built
    assert model.model_config == MODEL_PRESETS["small"]
    assert generator_parameters(model) == registry.get_preset("small").parameters


def test_a_pretrained_name_or_folder_loads_its_weights():
    from keras_autalk.models.talker import AUTalker

    demo = AUTalker.from_preset("demo")
    assert demo is pretrained.load_pretrained("demo")
    assert AUTalker.from_preset(pretrained.resolve_model_dir("demo")) is demo
    assert generator_parameters(demo) == registry.get_preset("demo").parameters
    fresh = AUTalker.from_preset("demo", load_weights=False)
    assert fresh is not demo and fresh.model_config == demo.model_config
    untrained, trained = pretrained.generator_weights(fresh), pretrained.generator_weights(demo)
    assert untrained.keys() == trained.keys()
    assert not all(np.array_equal(untrained[key], trained[key]) for key in trained)


def test_a_folder_path_works_wherever_a_name_does(tiny_folder):
    preset = registry.get_preset(tiny_folder)
    assert (preset.name, preset.kind, preset.path) == ("tiny", "pretrained", tiny_folder)
    assert registry.get_preset(str(tiny_folder / pretrained.CONFIG_FILE)).path == tiny_folder
    assert (preset.description, preset.license) == ("A tiny test model.", "CC0-1.0")
    assert preset.config == tiny_config()
    with np.load(tiny_folder / pretrained.WEIGHTS_FILE) as weights:
        assert preset.parameters == sum(weights[key].size for key in weights.files)
    assert preset.size_bytes == sum(path.stat().st_size for path in tiny_folder.iterdir())


def test_registered_presets_are_found_by_every_loader(clean_registry, tiny_folder, photo_file):
    from keras_autalk.inference.session import Talker
    from keras_autalk.models.talker import AUTalker

    registry.register_preset("narrow", tiny_config(), description="Narrow, for tests.")
    assert model_config("narrow") == tiny_config()
    assert AUTalker.from_preset("narrow").model_config == tiny_config()
    registry.register_preset("mine", tiny_folder, license="MIT")
    assert pretrained.resolve_model_dir("mine") == tiny_folder
    assert AUTalker.from_preset("mine") is pretrained.load_pretrained(tiny_folder)
    talker = Talker.from_preset("mine", photo_file)
    assert talker.runtime == "keras" and talker.model_config == tiny_config()
    listed = {preset.name: preset for preset in registry.list_presets()}
    assert (listed["narrow"].kind, listed["mine"].kind) == ("architecture", "pretrained")
    assert listed["mine"].license == "MIT"
    with pytest.raises(
        ValueError, match="'mine' exists already; give another name or overwrite=True"
    ):
        registry.register_preset("mine", tiny_folder)
    registry.register_preset("mine", tiny_config(), overwrite=True)
    assert "mine" not in pretrained.REGISTERED_DIRS and "mine" in MODEL_PRESETS
    with pytest.raises(ValueError, match=r"'demo' exists already; give another name\.$"):
        registry.register_preset("demo", tiny_folder, overwrite=True)
    with pytest.raises(ValueError, match="folder separator"):
        registry.register_preset("a/b", tiny_config())


# ------------------------------------------------------------------- errors
def test_an_unknown_name_is_one_sentence_listing_the_known_ones():
    from keras_autalk.models.talker import AUTalker

    with pytest.raises(registry.UnknownPresetError) as error:
        registry.get_preset("huge")
    assert one_sentence(error) == (
        "Unknown preset 'huge' (known: small, paper, demo); give a "
        "preset name or the path of a model folder."
    )
    assert isinstance(error.value, ValueError)  # as KerasHub raises
    with pytest.raises(registry.UnknownPresetError, match="Unknown preset 'huge'"):
        AUTalker.from_preset("huge")
    with pytest.raises(pretrained.PretrainedModelError, match="does not exist"):
        registry.get_preset("no/such/folder")


def test_an_architecture_is_refused_where_weights_are_needed(photo_file):
    from keras_autalk.errors import AutalkError
    from keras_autalk.inference.session import Talker

    expected = (
        "'small' is an architecture without trained weights; give a pretrained model "
        "(demo) or a model folder (autalk presets lists them), or train it first with "
        "autalk train."
    )
    with pytest.raises(pretrained.PretrainedModelError) as error:
        pretrained.load_pretrained("small")
    assert one_sentence(error) == expected
    with pytest.raises(AutalkError) as error:
        Talker.from_preset("paper", photo_file)
    assert one_sentence(error) == expected.replace("'small'", "'paper'")


# ---------------------------------------------------------------------- CLI
def test_autalk_presets_prints_the_table(capsys):
    status, out, _ = run(capsys, "presets")
    assert status == 0
    lines = out.strip().splitlines()
    assert lines[0].split() == ["name", "kind", "parameters", "size", "licence", "description"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert list(rows) == ["small", "paper", "demo"]
    assert rows["paper"][1:5] == ["architecture", "34.7", "M", "-"]
    assert rows["demo"][1:4] == ["pretrained", "3.1", "M"] and rows["demo"][5] == "MB"
    status, out, _ = run(capsys, "presets", "--kind", "pretrained")
    assert [line.split()[0] for line in out.strip().splitlines()] == ["name", "demo"]


def test_generate_refuses_an_architecture_and_writes_nothing(capsys, tmp_path, grace_hopper):
    Image.fromarray(grace_hopper).save(tmp_path / "face.jpg", quality=95)
    soundfile.write(tmp_path / "hello.wav", speech_like(0.8, 16000, channels=1), 16000)
    status, _, err = run(
        capsys,
        "generate",
        "--image",
        str(tmp_path / "face.jpg"),
        "--audio",
        str(tmp_path / "hello.wav"),
        "-o",
        str(tmp_path / "out.mp4"),
        "--model",
        "small",
    )
    assert_one_sentence_error(status, err)
    assert "'small' is an architecture without trained weights; give a pretrained model" in err
    assert sorted(path.name for path in tmp_path.iterdir()) == ["face.jpg", "hello.wav"]


def test_the_registry_and_the_listing_never_import_tensorflow(tmp_path):
    script = (
        "import sys\n"
        "from keras_autalk.presets import registry\n"
        "names = [preset.name for preset in registry.list_presets()]\n"
        "from keras_autalk import cli\n"
        "cli.main(['presets'])\n"
        "from keras_autalk.inference.session import Talker\n"
        "from keras_autalk.media import photos\n"
        "talker = Talker.from_preset('demo', photos.load_photo('grace_hopper'))\n"
        "print(names, talker.runtime,\n"
        "      sorted(name for name in ('tensorflow', 'keras') if name in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "['small', 'paper', 'demo'] litert []"
