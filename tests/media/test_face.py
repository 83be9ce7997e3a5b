"""Face detection, landmarks, alignment and paste-back on real photos."""

import dataclasses
import re

import numpy as np
import pytest
from skimage import transform as sktransform
from skimage.registration import phase_cross_correlation

from keras_autalk.config import FaceConfig
from keras_autalk.errors import AutalkError, NoFaceError
from keras_autalk.media import face, paste
from keras_autalk.media.face_template import TEMPLATE_68


def test_astronaut_real_face_chosen_over_suit_false_positive(astronaut, astronaut_face):
    # The HOG detector fires twice on astronaut: the face (upper middle) and
    # the suit's chest (around y = 380).
    assert len(face.detect_faces(astronaut)) == 2
    left, top, right, bottom = astronaut_face.box
    assert 150 < left < right < 300 and 50 < top < bottom < 200
    assert astronaut_face.num_faces == 1
    assert len(astronaut_face.rejected) == 1
    assert "(126, 335" in astronaut_face.rejected[0]


def test_suit_detection_fails_cnn_confirmation_but_face_passes(astronaut):
    boxes = dict((box[1], box) for box, _ in face.detect_faces(astronaut))
    assert face.confirm_with_cnn(astronaut, boxes[76])
    assert not face.confirm_with_cnn(astronaut, boxes[335])


@pytest.mark.parametrize("photo_name", ["astronaut", "grace_hopper"])
def test_landmarks_are_plausible(photo_name, request):
    found = request.getfixturevalue(
        {"astronaut": "astronaut_face", "grace_hopper": "hopper_face"}[photo_name]
    )
    landmarks = found.landmarks
    assert landmarks.shape == (68, 2)
    eyes_lowest = landmarks[36:48, 1].max()
    assert np.all(landmarks[48:68, 1] > eyes_lowest), "mouth points must lie below the eyes"
    left, top, right, bottom = found.box
    width = right - left
    inner = landmarks[17:68]  # all but the jaw line, which may leave the box
    margin = 0.05 * width
    assert np.all((inner[:, 0] >= left - margin) & (inner[:, 0] <= right + margin))
    assert np.all((inner[:, 1] >= top - 2 * margin) & (inner[:, 1] <= bottom + 2 * margin))
    # Left eye (36-41) is on the image's left of the right eye (42-47).
    assert landmarks[36:42, 0].mean() < landmarks[42:48, 0].mean()
    assert face.check_landmarks(landmarks, found.box) is None


def test_estimate_similarity_recovers_a_known_transform(rng):
    points = rng.uniform(0, 500, size=(30, 2))
    angle, scale, shift = 0.3, 1.7, np.array([12.0, -40.0])
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    moved = scale * points @ rotation.T + shift
    matrix = face.estimate_similarity(points, moved)
    np.testing.assert_allclose(matrix[:, :2], scale * rotation, atol=1e-9)
    np.testing.assert_allclose(matrix[:, 2], shift, atol=1e-7)


def test_alignment_puts_the_face_on_the_template(grace_hopper, hopper_face):
    config = FaceConfig()
    aligned = face.align_face(grace_hopper, hopper_face.landmarks, config)
    assert aligned.crop.shape == (128, 128, 3) and aligned.crop.dtype == np.uint8
    template = face.template_points(config)
    for eye in (face.LEFT_EYE, face.RIGHT_EYE):
        error = np.linalg.norm(aligned.landmarks[eye].mean(axis=0) - template[eye].mean(axis=0))
        assert error < 2.0
    # The eye line is horizontal in the crop.
    left_eye = aligned.landmarks[face.LEFT_EYE].mean(axis=0)
    right_eye = aligned.landmarks[face.RIGHT_EYE].mean(axis=0)
    assert abs(right_eye[1] - left_eye[1]) < 1.5


def test_crop_size_is_configurable(astronaut, astronaut_face):
    aligned = face.align_face(astronaut, astronaut_face.landmarks, FaceConfig(crop_size=96))
    assert aligned.crop.shape == (96, 96, 3)


@pytest.mark.parametrize("photo_name", ["astronaut", "grace_hopper"])
def test_align_then_inverse_align_round_trips_within_a_pixel(photo_name, request):
    photo = request.getfixturevalue(photo_name)
    found = face.find_face(photo)
    config = FaceConfig(crop_size=256)
    aligned = face.align_face(photo, found.landmarks, config)
    # Exact geometry: crop coordinates map back onto the original landmarks.
    back = face.apply_transform(face.invert_transform(aligned.matrix), aligned.landmarks)
    np.testing.assert_allclose(back, found.landmarks, atol=1e-6)
    # Content: the crop warped back into the photo lines up with the original
    # face to within a fraction of a pixel (sub-pixel phase correlation).
    restored = paste.paste_back(photo, aligned.crop, aligned.matrix, config)
    left, top, right, bottom = found.box
    original_region = photo[top:bottom, left:right].mean(axis=2)
    restored_region = restored[top:bottom, left:right].mean(axis=2)
    shift, _, _ = phase_cross_correlation(original_region, restored_region, upsample_factor=20)
    assert np.hypot(*shift) < 0.5, f"round trip moved the face by {shift} pixels"


def test_tilted_face_is_straightened(grace_hopper):
    tilted = sktransform.rotate(grace_hopper, 20, resize=True, mode="edge", preserve_range=True)
    tilted = tilted.astype(np.uint8)
    found = face.find_face(tilted)
    aligned = face.align_face(tilted, found.landmarks)
    left_eye = aligned.landmarks[face.LEFT_EYE].mean(axis=0)
    right_eye = aligned.landmarks[face.RIGHT_EYE].mean(axis=0)
    assert abs(np.degrees(np.arctan2(*(right_eye - left_eye)[::-1]))) < 3.0


def test_large_photo_is_detected_at_reduced_size_and_fitted_at_full_size(grace_hopper, hopper_face):
    large = sktransform.rescale(grace_hopper, 3, channel_axis=2, order=1, preserve_range=True)
    large = large.astype(np.uint8)  # 1800 x 1536: detection runs on a 1024 copy
    found = face.find_face(large)
    assert found.box[2] - found.box[0] == pytest.approx(
        3 * (hopper_face.box[2] - hopper_face.box[0]), rel=0.05
    )
    difference = np.linalg.norm(found.landmarks / 3.0 - hopper_face.landmarks, axis=1)
    assert difference[face.STABLE_POINTS].mean() < 2.0


def test_feather_mask_is_one_inside_and_zero_at_the_border():
    mask = face.feather_mask(FaceConfig(crop_size=128, feather=0.1))
    assert mask.shape == (128, 128)
    assert mask[64, 64] == pytest.approx(1.0)
    assert mask[0, 64] < 0.01 and mask[64, 0] < 0.01
    assert np.all(np.diff(mask[64, :64]) >= 0)


def test_image_without_a_face_raises(rng):
    noise = rng.integers(0, 255, size=(300, 300, 3), dtype=np.uint8)
    with pytest.raises(NoFaceError, match="No face was found"):
        face.find_face(noise)


def test_two_faces_the_larger_wins(grace_hopper):
    small = sktransform.rescale(grace_hopper, 0.6, channel_axis=2, preserve_range=True)
    canvas = np.full((700, 1000, 3), 128, dtype=np.uint8)
    canvas[:600, :512] = grace_hopper
    canvas[: small.shape[0], 600 : 600 + small.shape[1]] = small.astype(np.uint8)
    found = face.find_face(canvas)
    assert found.num_faces == 2
    assert found.box[0] < 512  # the full-size face, not the smaller copy


@pytest.mark.slow
def test_cnn_detector_finds_only_the_real_face(astronaut):
    config = dataclasses.replace(FaceConfig(), detector="cnn", upsample=0)
    found = face.find_face(astronaut, config)
    left, top, right, bottom = found.box
    assert 150 < left < right < 300 and 50 < top < bottom < 200
    assert found.rejected == []


# ------------------------------------------------------------------ acceptance: size and pose
def test_the_template_faces_the_camera():
    template = np.asarray(TEMPLATE_68) * 200
    yaw, pitch, roll = face.head_pose(template)
    assert abs(yaw) < 1 and abs(pitch) < 1 and abs(roll) < 1


def test_roll_is_the_eye_lines_angle_and_leaves_yaw_and_pitch_alone():
    template = np.asarray(TEMPLATE_68) * 200
    angle = np.radians(30)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    yaw, pitch, roll = face.head_pose(template @ rotation.T)
    assert roll == pytest.approx(30, abs=0.5)
    assert abs(yaw) < 1 and abs(pitch) < 1


@pytest.mark.parametrize("shift, turned", [(0.1, False), (0.5, False), (0.9, True)])
def test_a_nose_off_the_jaws_middle_reads_as_a_turned_head(shift, turned):
    landmarks = np.asarray(TEMPLATE_68, dtype=np.float64) * 200
    # Move the nose (27-35) sideways by `shift` of the jaw line's half-span.
    half_span = (landmarks[14, 0] - landmarks[2, 0]) / 2
    landmarks[27:36, 0] += shift * half_span
    yaw, _, _ = face.head_pose(landmarks)
    assert yaw == pytest.approx(np.degrees(np.arctan(shift * 0.95)), abs=1.5)
    reason = face.usable(landmarks)
    if turned:
        assert reason == (
            f"the head is turned about {abs(yaw):.0f}° to the side; use a photo "
            "that faces the camera within 35°"
        )
    else:
        assert reason is None


def test_a_face_too_small_to_animate_is_refused_with_its_size(grace_hopper):
    small = sktransform.rescale(
        grace_hopper, 0.2, channel_axis=2, order=1, preserve_range=True
    ).astype(np.uint8)
    with pytest.raises(NoFaceError) as caught:
        face.find_face(small)
    match = re.fullmatch(
        r"The face is (\d+) px tall; use a photo where it is at least 44 px\.", str(caught.value)
    )
    assert match and 25 <= int(match.group(1)) < 44


def test_a_small_face_above_the_limit_is_found_with_more_upsampling(grace_hopper):
    small = sktransform.rescale(
        grace_hopper, 0.33, channel_axis=2, order=1, preserve_range=True
    ).astype(np.uint8)
    found = face.find_face(small)
    assert 44 <= found.height_px < 70


def two_faces(grace_hopper):
    """grace_hopper at full size on the left, at 60 % on the right."""
    small = sktransform.rescale(grace_hopper, 0.6, channel_axis=2, preserve_range=True)
    canvas = np.full((700, 1000, 3), 128, dtype=np.uint8)
    canvas[:600, :512] = grace_hopper
    canvas[: small.shape[0], 600 : 600 + small.shape[1]] = small.astype(np.uint8)
    return canvas


def test_faces_are_numbered_left_to_right_and_chosen_by_number_or_box(grace_hopper):
    canvas = two_faces(grace_hopper)
    largest = face.find_face(canvas)
    assert largest.index == 1 and len(largest.faces) == 2
    second = face.find_face(canvas, face_index=2)
    assert second.index == 2 and second.box[0] > 600
    left, top, right, bottom = second.box
    by_box = face.find_face(canvas, face_box=(left - 5, top - 5, right + 5, bottom + 5))
    assert by_box.box == second.box
    assert face.face_notes(second, "animating")[0] == (
        f"found 2 faces (1 at {face.describe_box(largest.box)}; 2 at "
        f"{face.describe_box(second.box)}); animating face 2 at {face.describe_box(second.box)}; "
        "choose another with --face N or --face-box X,Y,W,H."
    )


def test_a_face_number_or_box_that_names_no_face_is_refused(grace_hopper):
    canvas = two_faces(grace_hopper)
    with pytest.raises(NoFaceError, match=r"--face 3 names no face: the photo has 2 \(1 at "):
        face.find_face(canvas, face_index=3)
    with pytest.raises(NoFaceError, match=r"^No face was found in --face-box 850,620,100,70 "):
        face.find_face(canvas, face_box=(850, 620, 950, 690))
    with pytest.raises(NoFaceError, match="reaches outside the 1000x700 photo"):
        face.find_face(canvas, face_box=(900, 600, 1100, 800))


@pytest.mark.parametrize(
    "text, box", [("10,20,100,120", (10, 20, 110, 140)), ("10.4, 20, 100, 120", (10, 20, 110, 140))]
)
def test_face_box_option_is_x_y_width_height(text, box):
    assert face.parse_face_box(text) == box


@pytest.mark.parametrize("text", ["10,20,100", "a,b,c,d", "10,20,0,5", "-1,0,10,10"])
def test_a_malformed_face_box_is_one_sentence(text):
    with pytest.raises(AutalkError, match="--face-box"):
        face.parse_face_box(text)
