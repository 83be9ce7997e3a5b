"""keras_autalk.training.talker: starting a run from another run's weights."""

import numpy as np
import pytest

from keras_autalk.errors import AutalkError
from keras_autalk.native import import_tensorflow
from keras_autalk.training import talker

tf = import_tensorflow()
import keras  # noqa: E402


def test_initial_weights_load_into_the_same_model_and_refuse_others(tmp_path):
    from tests.models.test_talker import make_model

    trained = make_model()
    path = tmp_path / "epoch-001.weights.h5"
    trained.save_weights(path)
    keras.utils.set_random_seed(99)
    fresh = make_model()
    fresh.decoder.content_head.weights[0].assign(
        np.zeros(fresh.decoder.content_head.weights[0].shape, "float32")
    )
    talker._load_initial_weights(fresh, path)
    for mine, theirs in zip(fresh.weights, trained.weights):
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy())
    not_weights = tmp_path / "model.keras"
    not_weights.write_text("x")
    with pytest.raises(AutalkError, match="not a Keras weights file"):
        talker._load_initial_weights(fresh, not_weights)
    other = tmp_path / "other.weights.h5"
    small = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    small.save_weights(other)
    with pytest.raises(AutalkError, match="do not fit this model"):
        talker._load_initial_weights(fresh, other)
