"""Measures of a frame against its photo: eye-region PSNR, the seam, mouth sharpness."""

import numpy as np
import pytest
import scipy.ndimage

from keras_autalk.evaluation import photo_fidelity
from keras_autalk.media import face, paste


@pytest.fixture(scope="module")
def hopper(grace_hopper):
    return grace_hopper, face.find_face(grace_hopper).landmarks


def test_the_photo_itself_scores_perfectly(hopper):
    photo, landmarks = hopper
    scores = photo_fidelity.fidelity([photo, photo], photo, landmarks)
    assert scores["eye_psnr_db"] == 99.0 and scores["eye_psnr_min_db"] == float("inf")
    assert scores["seam_ratio"] == pytest.approx(1.0)
    assert scores["mouth_sharpness"] == pytest.approx(1.0)


def test_a_blurred_mouth_reads_as_less_sharp_and_the_eyes_do_not_notice(hopper):
    photo, landmarks = hopper
    blurred = photo.copy()
    left, top, right, bottom = photo_fidelity.mouth_box(landmarks)
    blurred[top:bottom, left:right] = scipy.ndimage.gaussian_filter(
        photo[top:bottom, left:right], sigma=(2, 2, 0)
    )
    assert photo_fidelity.sharpness_ratio(blurred, photo, landmarks) < 0.5
    assert photo_fidelity.eye_region_psnr(blurred, photo, landmarks) == float("inf")


def test_a_pasted_rim_raises_the_seam_ratio(hopper):
    photo, landmarks = hopper
    mask = paste.lower_face_mask(photo.shape, landmarks) > 0
    rimmed = photo.copy()
    rimmed[mask] = np.clip(photo[mask].astype(int) + 40, 0, 255).astype(np.uint8)
    assert photo_fidelity.seam_ratio(rimmed, photo, landmarks) > 1.5


def test_the_eye_region_is_above_the_nose_tip(hopper):
    _, landmarks = hopper
    left, top, right, bottom = photo_fidelity.eye_region_box(landmarks)
    assert top < landmarks[36:48, 1].min() and bottom < landmarks[30, 1]
    assert left <= landmarks[17, 0] and right >= landmarks[26, 0]
