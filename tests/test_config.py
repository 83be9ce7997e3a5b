"""ModelConfig, the model presets and model_config()."""

import dataclasses
import json

import pytest

from keras_autalk.config import (
    DEFAULT_ACTION_UNITS,
    MODEL_PRESETS,
    FaceConfig,
    ModelConfig,
    model_config,
)


def test_presets_exist_and_render_the_face_crop():
    assert set(MODEL_PRESETS) == {"small", "paper"}
    for config in MODEL_PRESETS.values():
        assert config.image_size == FaceConfig().crop_size
        assert config.action_units == DEFAULT_ACTION_UNITS


def test_small_preset_is_narrower_than_paper_everywhere():
    small, paper = MODEL_PRESETS["small"], MODEL_PRESETS["paper"]
    for name in ("audio_channels", "identity_channels", "fusion_channels"):
        assert getattr(small, name) < getattr(paper, name)
    for name in (
        "encoder_filters",
        "decoder_filters",
        "discriminator_filters",
        "au_classifier_filters",
    ):
        assert sum(getattr(small, name)) < sum(getattr(paper, name))


def test_model_config_applies_overrides_without_touching_the_preset():
    config = model_config("small", image_size=64, fusion="conv", drive="audio")
    assert (config.image_size, config.fusion, config.drive) == (64, "conv", "audio")
    assert MODEL_PRESETS["small"].image_size == 128
    assert config.audio_channels == MODEL_PRESETS["small"].audio_channels


def test_unknown_preset_names_the_choices():
    with pytest.raises(ValueError, match="paper"):
        model_config("huge")


def test_dict_round_trip_through_json_restores_tuples():
    config = model_config("paper", action_units=(25, 26), dropout=0.0)
    values = json.loads(json.dumps(config.to_dict()))
    assert isinstance(values["encoder_filters"], list)
    restored = ModelConfig.from_dict(values)
    assert restored == config
    assert isinstance(restored.fusion_dilations, tuple)


def test_decoder_round_trips_and_defaults_to_frames_when_absent():
    # Models saved before the field existed have no "decoder" key.
    config = model_config("small", decoder="flow")
    restored = ModelConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert restored.decoder == "flow" and restored == config
    older = {k: v for k, v in config.to_dict().items() if k != "decoder"}
    assert ModelConfig.from_dict(older).decoder == "frames"
    assert ModelConfig().decoder == "frames"


def test_from_dict_rejects_unknown_fields():
    with pytest.raises(ValueError, match="colour"):
        ModelConfig.from_dict({"colour": "red"})


def test_drive_switches_say_which_streams_are_used():
    uses = {
        drive: (ModelConfig(drive=drive).uses_audio, ModelConfig(drive=drive).uses_au)
        for drive in ModelConfig.DRIVES
    }
    assert uses == {"audio+au": (True, True), "audio": (True, False), "au": (False, True)}


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"fusion": "lstm"}, "fusion"),
        ({"drive": "video"}, "drive"),
        ({"decoder": "warp"}, r"decoder must be one of \('frames', 'flow'\), got 'warp'"),
        ({"decoder_filters": (64, 32)}, "decoder_filters"),
        ({"image_size": 100}, "divisible"),
        ({"fusion_channels": 30, "attention_heads": 4}, "attention_heads"),
        ({"action_units": ()}, "action_units"),
        ({"fusion_dilations": (1, 0)}, "dilations"),
        ({"dropout": 1.0}, "dropout"),
    ],
)
def test_invalid_configs_are_refused_with_the_field_named(overrides, message):
    with pytest.raises(ValueError, match=message):
        ModelConfig(**overrides)


def test_config_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        MODEL_PRESETS["small"].image_size = 64
