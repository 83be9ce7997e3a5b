"""Fixtures the media tests share: the faces found in the bundled photos."""

import pytest

from keras_autalk.media import face


@pytest.fixture(scope="package")
def astronaut_face(astronaut):
    return face.find_face(astronaut)


@pytest.fixture(scope="package")
def hopper_face(grace_hopper):
    return face.find_face(grace_hopper)
