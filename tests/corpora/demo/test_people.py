"""The demo corpus's people: every usable face of the package photos, grouped, some held out."""

import numpy as np

from keras_autalk.corpora.demo import people as people_lib
from keras_autalk.corpora.demo.people import PhotoFace


def photo_face(photo, number=1, source="src"):
    return PhotoFace(source, photo, number, ((0.0, 0.0),) * 68, 100.0, 0.0)


def test_faces_are_grouped_by_descriptor_but_never_two_of_one_photo():
    near, far = np.zeros(128), np.full(128, 0.1)  # 0.0 apart / 1.13 apart
    faces = [
        photo_face("a.jpg"),
        photo_face("b.jpg"),
        photo_face("c.jpg", 1),
        photo_face("c.jpg", 2),
        photo_face("d.jpg"),
    ]
    groups = people_lib._group(faces, [near, near, near, near + 1e-3, far])
    assert groups[0] == groups[1] == groups[2]  # one person in three photos
    assert groups[4] not in groups[:4]  # another person
    # Two faces of one photo are two people, however alike (linked only through others).
    alone = people_lib._group([photo_face("c.jpg", 1), photo_face("c.jpg", 2)], [near, near])
    assert alone[0] != alone[1]
    collage = people_lib._group(
        [
            photo_face("bald_guys.jpg", 1, "libdlib19.1"),
            photo_face("bald_guys.jpg", 2, "libdlib19.1"),
        ],
        [near, near],
    )
    assert collage[0] == collage[1]


def test_at_least_25_training_people_and_the_hard_ones_held_out(people):
    training = [person for person in people if not person.held_out]
    held_out = [person for person in people if person.held_out]
    assert len(training) >= 25 and len(held_out) >= 5
    held_photos = {(face.source, face.photo) for person in held_out for face in person.faces}
    assert set(people_lib.EVALUATION_PHOTOS) <= held_photos
    training_photos = {(face.source, face.photo) for person in training for face in person.faces}
    assert not training_photos & held_photos
    assert not training_photos & set(people_lib.EXCLUDED_PHOTOS)
    # The johns folders give one person with 11 photos each.
    johns = [person for person in training if person.name.startswith("John_")]
    assert len(johns) == 5 and all(len(person.faces) == 11 for person in johns)
    assert max(face.height_px for person in held_out for face in person.faces) > 300
    assert max(abs(face.yaw) for person in held_out for face in person.faces) >= 20
    assert (
        min(face.height_px for person in people for face in person.faces) >= people_lib.MIN_FACE_PX
    )
