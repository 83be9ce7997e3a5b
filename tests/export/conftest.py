"""Fixtures the export tests share: one tiny talker and its SavedModel, made once."""

import numpy as np
import pytest

from keras_autalk.export import saved_model as export
from tests.models.distributed_helper import IMAGE, tiny_config
from tests.models.test_generator import with_random_content_head

WINDOW = 8


@pytest.fixture(scope="package")
def talker():
    import keras

    from keras_autalk.models import AUTalker

    keras.utils.set_random_seed(0)
    model = AUTalker(tiny_config())
    model.build({"identity_image": (None, IMAGE, IMAGE, 3), "audio_features": (None, None, 20, 80)})
    with_random_content_head(model.decoder)  # it starts at zero: frames would be the photo
    return model


@pytest.fixture(scope="package")
def flow_talker():
    """The tiny talker with `decoder="flow"`, its flow, mask and content heads random."""
    import dataclasses

    import keras

    from keras_autalk.models import AUTalker
    from tests.models.test_flow_decoder import with_random_heads

    keras.utils.set_random_seed(0)
    model = AUTalker(dataclasses.replace(tiny_config(), decoder="flow"))
    model.build({"identity_image": (None, IMAGE, IMAGE, 3), "audio_features": (None, None, 20, 80)})
    with_random_heads(model.decoder)
    return model


@pytest.fixture(scope="package")
def saved_model_dir(talker, tmp_path_factory):
    return export.export_saved_model(talker, tmp_path_factory.mktemp("export") / "autalk")


def clip_inputs(batch=2, frames=7, seed=3):
    rng = np.random.default_rng(seed)
    return {
        "identity_image": rng.uniform(size=(batch, IMAGE, IMAGE, 3)).astype("float32"),
        "audio_features": (rng.normal(size=(batch, frames, 20, 80)) * 2 - 6).astype("float32"),
        "articulation": np.linspace(1.0, 0.5, batch).astype("float32"),
    }


def keras_outputs(model, inputs):
    return {name: np.asarray(value) for name, value in model(dict(inputs)).items()}


def assert_close(actual, expected, atol):
    assert set(actual) == set(expected)
    for name in expected:
        np.testing.assert_allclose(
            np.asarray(actual[name]), expected[name], atol=atol, rtol=0, err_msg=name
        )
