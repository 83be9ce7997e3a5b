"""AUClassifier: a face crop to AU intensities."""

import keras
import numpy as np
import pytest

from keras_autalk.models.au_classifier import AUClassifier
from tests.harness import assert_output_shape, run_model_saving_test, run_serialization_test


@pytest.fixture(autouse=True)
def seeded():
    keras.utils.set_random_seed(0)


def test_reads_every_au_on_the_openface_scale(rng):
    classifier = AUClassifier(action_units=(10, 25, 26), filters=(8, 16))
    faces = rng.random((4, 32, 32, 3)).astype("float32")
    assert_output_shape(classifier, faces, (4, 3))
    saturated = np.asarray(classifier(faces * 1e3))
    assert 0.0 <= saturated.min() and saturated.max() <= 5.0


def mouth_faces(rng, count, size=32):
    """Grey faces with a dark 'mouth' whose height is the AU26 target."""
    faces = np.full((count, size, size, 3), 0.7, "float32")
    opening = rng.uniform(0, 1, size=count).astype("float32")
    for face, amount in zip(faces, opening):
        height = 1 + int(round(amount * 8))
        face[20 : 20 + height, 10:22] = 0.1
    faces += 0.02 * rng.normal(size=faces.shape).astype("float32")
    return faces, 5.0 * opening[:, None]


def test_learns_to_read_mouth_opening(rng):
    classifier = AUClassifier(action_units=(26,), filters=(8, 16))
    faces, target = mouth_faces(rng, 64)
    classifier.compile(optimizer=keras.optimizers.Adam(2e-3), loss="mae")
    before = classifier.evaluate(faces, target, verbose=0)
    classifier.fit(faces, target, epochs=20, batch_size=16, verbose=0)
    held_out, held_out_target = mouth_faces(rng, 32)
    predicted = classifier.predict(held_out, verbose=0)
    assert classifier.evaluate(faces, target, verbose=0) < 0.5 * before
    assert np.corrcoef(predicted[:, 0], held_out_target[:, 0])[0, 1] > 0.8


def test_frozen_classifier_has_no_trainable_weights(rng):
    classifier = AUClassifier(action_units=(25, 26), filters=(8, 16))
    classifier(rng.random((1, 32, 32, 3)).astype("float32"))
    classifier.trainable = False
    assert classifier.trainable_weights == []
    assert len(classifier.non_trainable_weights) == len(classifier.weights)


def test_dropout_acts_only_in_training(rng):
    classifier = AUClassifier(action_units=(25,), filters=(8, 16), dropout=0.5)
    faces = rng.random((4, 32, 32, 3)).astype("float32")
    np.testing.assert_array_equal(classifier(faces), classifier(faces))
    assert np.abs(classifier(faces, training=True) - classifier(faces)).max() > 0


def test_round_trips_through_config_and_keras_file(rng, tmp_path):
    classifier = AUClassifier(action_units=(10, 25), filters=(8, 16), dropout=0.2)
    faces = rng.random((2, 32, 32, 3)).astype("float32")
    run_serialization_test(
        classifier, expected_arguments=dict(action_units=[10, 25], filters=[8, 16], dropout=0.2)
    )
    run_model_saving_test(classifier, faces, tmp_path)
