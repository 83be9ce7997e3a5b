"""Pretrained-model folders: save, load, size, caching, and one-sentence errors."""

import hashlib
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from keras_autalk.errors import AutalkError
from keras_autalk.models.talker import GENERATOR_NETWORKS
from keras_autalk.presets import pretrained
from keras_autalk.version import __version__
from tests.conftest import files_in
from tests.pretrained_helpers import perturbed_talker, tiny_config

# float16 keeps 11 significant bits (relative error <= 2**-11 per weight);
# through the tiny network that moves pixels (0..1) and blend masks by about
# 0.004 and AU intensities (0..5) by about 0.002 at most (measured).
FP16_TOLERANCE = 0.01


@pytest.fixture(scope="module")
def talker():
    return perturbed_talker(seed=3)


@pytest.fixture(scope="module")
def inputs():
    rng = np.random.default_rng(5)
    return {
        "identity_image": rng.uniform(size=(1, 128, 128, 3)).astype(np.float32),
        "audio_features": rng.normal(size=(1, 12, 20, 80)).astype(np.float32),
    }


@pytest.fixture()
def saved(tmp_path, talker):
    return pretrained.save_pretrained(talker, tmp_path / "model", card={"trained_on": "nothing"})


def outputs_of(model, inputs):
    return {name: np.asarray(value) for name, value in model(inputs).items()}


def test_round_trip_gives_the_same_outputs_within_fp16_tolerance(saved, talker, inputs):
    loaded = pretrained.load_pretrained(saved)
    assert loaded is not talker
    assert loaded.model_config == talker.model_config
    assert loaded.pretrained_card == {"trained_on": "nothing"}
    expected, got = outputs_of(talker, inputs), outputs_of(loaded, inputs)
    for name in ("frames", "au_intensity", "blend_mask"):
        assert np.abs(expected[name] - got[name]).max() < FP16_TOLERANCE, name
    # The frames depend on the weights: a tolerance this size is a real check.
    other = outputs_of(perturbed_talker(seed=4), inputs)
    assert np.abs(other["frames"] - expected["frames"]).max() > 10 * FP16_TOLERANCE


def test_loaded_weights_are_the_float16_rounded_originals(saved, talker):
    loaded = pretrained.load_pretrained(saved)
    original = pretrained.generator_weights(talker)
    restored = pretrained.generator_weights(loaded)
    assert sorted(original) == sorted(restored)
    for key, value in original.items():
        assert restored[key].dtype == np.float32
        np.testing.assert_array_equal(restored[key], value.astype(np.float16).astype(np.float32))


def test_float32_weights_round_trip_exactly(tmp_path, talker, inputs):
    folder = pretrained.save_pretrained(talker, tmp_path / "m32", weights_dtype="float32")
    loaded = pretrained.load_pretrained(folder)
    expected, got = outputs_of(talker, inputs), outputs_of(loaded, inputs)
    np.testing.assert_allclose(got["frames"], expected["frames"], atol=1e-6)


def test_only_the_generator_is_saved(saved, talker):
    with np.load(saved / pretrained.WEIGHTS_FILE) as archive:
        keys = archive.files
        assert {archive[key].dtype for key in keys} == {np.dtype(np.float16)}
    assert {key.split("/")[0] for key in keys} == set(GENERATOR_NETWORKS)
    expected = sum(len(getattr(talker, name).weights) for name in GENERATOR_NETWORKS)
    assert len(keys) == expected
    assert not any(key.startswith(("discriminator", "au_classifier")) for key in keys)
    record = json.loads((saved / pretrained.CONFIG_FILE).read_text())
    assert record["format"] == "keras-autalk-pretrained"
    assert record["format_version"] == 1
    assert record["package_version"] == __version__
    assert record["model_config"] == talker.model_config.to_dict()


def test_float16_file_is_half_the_float32_file(tmp_path, talker):
    half = pretrained.save_pretrained(talker, tmp_path / "half") / pretrained.WEIGHTS_FILE
    full = pretrained.save_pretrained(talker, tmp_path / "full", weights_dtype="float32")
    full = full / pretrained.WEIGHTS_FILE
    num_values = sum(value.size for value in pretrained.generator_weights(talker).values())
    # Same headers in both files; the data shrink from 4 to 2 bytes per value.
    saved_bytes = full.stat().st_size - half.stat().st_size
    assert abs(saved_bytes - 2 * num_values) < 0.01 * num_values
    assert half.stat().st_size < 0.62 * full.stat().st_size


def test_saving_is_atomic_and_replaces_an_older_model(tmp_path, talker):
    target = tmp_path / "model"
    target.mkdir()
    (target / "stale.txt").write_text("old")
    pretrained.save_pretrained(talker, target)
    assert files_in(tmp_path) == ["model"]  # no temporary folder left beside it
    assert files_in(target) == [pretrained.WEIGHTS_FILE, pretrained.CONFIG_FILE]
    with pytest.raises(AutalkError, match="does not exist"):
        pretrained.save_pretrained(talker, tmp_path / "missing" / "model")
    assert files_in(tmp_path) == ["model"]


def test_same_bytes_for_the_same_weights(tmp_path, talker):
    first = pretrained.save_pretrained(talker, tmp_path / "a") / pretrained.WEIGHTS_FILE
    second = pretrained.save_pretrained(talker, tmp_path / "b") / pretrained.WEIGHTS_FILE
    assert first.read_bytes() == second.read_bytes()


def test_models_are_cached_per_folder_until_saved_again(saved, talker):
    first = pretrained.load_pretrained(saved)
    assert pretrained.load_pretrained(str(saved)) is first
    assert pretrained.load_pretrained(saved / pretrained.CONFIG_FILE) is first
    pretrained.save_pretrained(talker, saved)
    assert pretrained.load_pretrained(saved) is not first


def test_names_resolve_in_the_search_folders(tmp_path, talker):
    pretrained.save_pretrained(talker, tmp_path / "alpha")
    assert pretrained.resolve_model_dir("alpha", search_dirs=[tmp_path]) == tmp_path / "alpha"
    assert pretrained.available_models([tmp_path]) == ["alpha"]


def test_package_import_stays_cheap_and_exposes_the_loader():
    code = (
        "import sys, keras_autalk; cheap = 'tensorflow' not in sys.modules; "
        "from keras_autalk.presets import pretrained; "
        "from keras_autalk.inference import generate; "
        "print(cheap, keras_autalk.load_pretrained is pretrained.load_pretrained, "
        "keras_autalk.generate is generate.generate)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["True", "True", "True"]


# ------------------------------------------------------------------- errors
def one_sentence(error):
    text = str(error.value)
    assert "\n" not in text and text.endswith(".") and text[0].isupper()
    return text


def test_unknown_name_lists_the_available_models(tmp_path, talker):
    pretrained.save_pretrained(talker, tmp_path / "alpha")
    pretrained.save_pretrained(talker, tmp_path / "beta")
    with pytest.raises(pretrained.PretrainedModelError) as error:
        pretrained.resolve_model_dir("gamma", search_dirs=[tmp_path])
    assert "Unknown pretrained model 'gamma' (available: alpha, beta)" in one_sentence(error)
    with pytest.raises(pretrained.PretrainedModelError) as error:
        pretrained.resolve_model_dir("gamma", search_dirs=[tmp_path / "none"])
    assert "none are installed" in one_sentence(error)


def test_missing_bundled_model_is_named(tmp_path):
    with pytest.raises(pretrained.PretrainedModelError) as error:
        pretrained.resolve_model_dir("demo", search_dirs=[tmp_path])
    text = one_sentence(error)
    assert "bundled pretrained model 'demo' is missing" in text
    assert "demo/model.json" in text and str(tmp_path) in text


def test_missing_folder_and_files(tmp_path, saved):
    with pytest.raises(AutalkError) as error:
        pretrained.load_pretrained(tmp_path / "nope")
    assert "does not exist" in one_sentence(error)
    (tmp_path / "empty").mkdir()
    with pytest.raises(AutalkError) as error:
        pretrained.load_pretrained(tmp_path / "empty")
    assert "has no model.json" in one_sentence(error)
    (saved / pretrained.WEIGHTS_FILE).unlink()
    with pytest.raises(AutalkError) as error:
        pretrained.load_pretrained(saved)
    assert "has no generator.weights.npz" in one_sentence(error)
    (saved / pretrained.WEIGHTS_FILE).write_bytes(b"PK\x03\x04 not a zip")
    with pytest.raises(AutalkError) as error:
        pretrained.load_pretrained(saved)
    assert "does not match the SHA-256" in one_sentence(error)
    edit_record(saved, files={})  # a folder without checksums: the file itself is read
    with pytest.raises(AutalkError) as error:
        pretrained.load_pretrained(saved)
    assert "is corrupt" in one_sentence(error)


def edit_record(folder, **changes):
    path = folder / pretrained.CONFIG_FILE
    record = json.loads(path.read_text())
    record.update(changes)
    path.write_text(json.dumps(record))


def test_model_of_another_format_version(saved):
    edit_record(saved, format_version=2, package_version="9.9.9")
    with pytest.raises(AutalkError) as error:
        pretrained.load_pretrained(saved)
    text = one_sentence(error)
    assert (
        f"made by keras-autalk 9.9.9 (format version 2); this is keras-autalk {__version__}" in text
    )


def test_folder_of_another_format(saved):
    edit_record(saved, format="something-else")
    with pytest.raises(AutalkError) as error:
        pretrained.load_pretrained(saved)
    assert "is not a keras-autalk pretrained model" in one_sentence(error)
    (saved / pretrained.CONFIG_FILE).write_text("{not json")
    with pytest.raises(AutalkError) as error:
        pretrained.load_pretrained(saved)
    assert "is not readable JSON" in one_sentence(error)


def test_weights_that_do_not_match_the_config(saved):
    edit_record(saved, model_config=tiny_config(fusion_channels=16).to_dict())
    with pytest.raises(AutalkError) as error:
        pretrained.load_pretrained(saved)
    text = one_sentence(error)
    assert "do not match its model_config" in text and "of another shape" in text
    edit_record(saved, model_config=tiny_config(drive="audio").to_dict())
    with pytest.raises(AutalkError) as error:
        pretrained.load_pretrained(saved)
    assert "unexpected, e.g. au_encoder/" in one_sentence(error)
    edit_record(saved, model_config=dict(tiny_config().to_dict(), fusion="mystery"))
    with pytest.raises(AutalkError) as error:
        pretrained.load_pretrained(saved)
    assert "has an invalid model_config" in one_sentence(error)


def test_a_damaged_or_replaced_weights_file_is_refused_by_its_sha256(tmp_path, talker, inputs):
    folder = pretrained.save_pretrained(talker, tmp_path / "model")
    record = json.loads((folder / "model.json").read_text())
    weights = folder / "generator.weights.npz"
    assert record["files"]["generator.weights.npz"] == {
        "sha256": hashlib.sha256(weights.read_bytes()).hexdigest(),
        "bytes": weights.stat().st_size,
    }
    assert pretrained.check_files(folder) == 1
    # Another model's weights of the same shapes would load if only shapes were checked.
    other = perturbed_talker(seed=11)
    other_folder = pretrained.save_pretrained(other, tmp_path / "other")
    shutil.copyfile(other_folder / "generator.weights.npz", weights)
    pretrained.clear_cache()
    with pytest.raises(AutalkError) as error:
        pretrained.load_pretrained(folder)
    text = one_sentence(error)
    assert "does not match the SHA-256 its model.json records" in text
    assert "generator.weights.npz" in text


def test_doctor_checks_the_bundled_model():
    from keras_autalk.commands import doctor

    check = doctor.check_bundled_model()
    assert check.ok, check.detail
    assert "2 file(s) match their SHA-256" in check.detail  # the weights and the .tflite
