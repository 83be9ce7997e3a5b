"""Paste-back: generated crops warped back into the photo through the feathered mask."""

import numpy as np
import pytest

from keras_autalk.config import FaceConfig
from keras_autalk.media import face, paste


def psnr(first, second):
    mse = np.mean((first.astype(np.float64) - second.astype(np.float64)) ** 2)
    return np.inf if mse == 0 else 10.0 * np.log10(255.0 ** 2 / mse)


@pytest.fixture(scope="module")
def aligned(grace_hopper):
    found = face.find_face(grace_hopper)
    return face.align_face(grace_hopper, found.landmarks)


def test_paste_back_of_unchanged_crop_leaves_photo_nearly_unchanged(astronaut, grace_hopper):
    # Measured: astronaut 46.7 dB, grace_hopper 35.6 dB (its face is shrunk
    # from about 186 to 128 pixels, so the round trip loses fine detail).
    for photo, floor in ((astronaut, 42.0), (grace_hopper, 33.0)):
        found = face.find_face(photo)
        aligned = face.align_face(photo, found.landmarks)
        restored = paste.paste_back(photo, aligned.crop, aligned.matrix)
        assert restored.shape == photo.shape and restored.dtype == np.uint8
        assert psnr(restored, photo) > floor


def test_paste_back_changes_only_the_face_region(astronaut, astronaut_face):
    aligned = face.align_face(astronaut, astronaut_face.landmarks)
    black = np.zeros_like(aligned.crop)
    pasted = paste.paste_back(astronaut, black, aligned.matrix)
    changed = np.any(pasted != astronaut, axis=2)
    rows, cols = np.nonzero(changed)
    corners = face.apply_transform(face.invert_transform(aligned.matrix),
                                   [[0, 0], [128, 0], [0, 128], [128, 128]])
    assert cols.min() >= corners[:, 0].min() - 1 and cols.max() <= corners[:, 0].max() + 1
    assert rows.min() >= corners[:, 1].min() - 1 and rows.max() <= corners[:, 1].max() + 1
    nose = astronaut_face.landmarks[face.NOSE_TIP].astype(int)
    assert pasted[nose[1], nose[0]].max() < 5  # fully replaced at the centre


def test_paste_back_keeps_every_pixel_outside_the_mask(grace_hopper, aligned):
    paster = paste.FacePaster(grace_hopper, aligned.matrix, 128)
    crop = np.random.default_rng(0).uniform(size=(128, 128, 3)).astype(np.float32)
    frame = paster.paste(crop)
    changed = np.any(frame != grace_hopper, axis=2)
    left, top, right, bottom = paster.box
    assert changed[top:bottom, left:right].mean() > 0.3
    changed[top:bottom, left:right] = False
    assert not changed.any()
    # The same result as face.paste_back (up to rounding), which warps per call.
    crop8 = np.rint(crop * 255).astype(np.uint8)
    reference = paste.paste_back(grace_hopper, crop8, aligned.matrix, FaceConfig())
    assert np.abs(paster.paste(crop8).astype(int) - reference.astype(int)).max() <= 1
