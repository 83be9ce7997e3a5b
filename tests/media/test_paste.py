"""Paste-back: generated crops warped back into the photo through the feathered mask."""

import numpy as np
import pytest

from keras_autalk.config import FaceConfig
from keras_autalk.media import face, paste


def psnr(first, second):
    mse = np.mean((first.astype(np.float64) - second.astype(np.float64)) ** 2)
    return np.inf if mse == 0 else 10.0 * np.log10(255.0**2 / mse)


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
    corners = face.apply_transform(
        face.invert_transform(aligned.matrix), [[0, 0], [128, 0], [0, 128], [128, 128]]
    )
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


# ------------------------------------------------------------------ the lower face only
def test_the_lower_face_mask_covers_mouth_and_chin_not_eyes_or_nose(grace_hopper, hopper_face):
    landmarks = hopper_face.landmarks
    mask = paste.lower_face_mask(grace_hopper.shape, landmarks)
    assert mask.shape == grace_hopper.shape[:2] and mask.dtype == np.float32
    assert 0.0 <= mask.min() and mask.max() == pytest.approx(1.0)

    def at(point):
        return mask[int(round(point[1])), int(round(point[0]))]

    mouth_centre = landmarks[48:68].mean(axis=0)
    assert at(mouth_centre) == pytest.approx(1.0)
    for index in list(range(36, 48)) + [27, 28, 29, 30] + list(range(17, 27)):
        assert at(landmarks[index]) == 0.0, index
    # The photo's own jaw line is the mask's edge: zero there, feathered inside.
    assert max(at(landmarks[index]) for index in range(3, 14)) < 0.05
    polygon = paste.lower_face_polygon(landmarks)
    assert polygon.shape[1] == 2 and np.isin(polygon[:13], landmarks[2:15]).all()


def test_pasting_the_lower_face_keeps_every_other_pixel_bit_for_bit(
    grace_hopper, aligned, hopper_face
):
    paster = paste.FacePaster(grace_hopper, aligned.matrix, 128, landmarks=hopper_face.landmarks)
    crop = np.random.default_rng(0).uniform(size=(128, 128, 3)).astype(np.float32)
    frame = paster.paste(crop)
    mask = paste.lower_face_mask(grace_hopper.shape, hopper_face.landmarks)
    outside = mask == 0
    np.testing.assert_array_equal(frame[outside], grace_hopper[outside])
    changed = np.any(frame != grace_hopper, axis=2)
    assert changed[mask > 0.5].mean() > 0.9
    # The brows, eyes and nose down to its tip stay the photo's own.
    upper = hopper_face.landmarks[17:48]
    left, top = upper.min(axis=0).astype(int)
    right, bottom = upper.max(axis=0).astype(int)
    bottom = int(hopper_face.landmarks[30, 1])
    np.testing.assert_array_equal(
        frame[top:bottom, left:right], grace_hopper[top:bottom, left:right]
    )


def test_the_generated_colour_is_matched_to_the_photo_along_the_seam(
    grace_hopper, aligned, hopper_face
):
    brighter = np.clip(aligned.crop.astype(np.float32) + 40.0, 0, 255) / 255.0
    matched = paste.FacePaster(
        grace_hopper, aligned.matrix, 128, landmarks=hopper_face.landmarks
    ).paste(brighter)
    whole = paste.FacePaster(grace_hopper, aligned.matrix, 128).paste(brighter)
    mask = paste.lower_face_mask(grace_hopper.shape, hopper_face.landmarks)
    band = (mask > 0.05) & (mask < 0.6)
    photo = grace_hopper.astype(np.float64)
    # Measured: about 1 grey level off with matching; the whole crop pasted as
    # it is stays about 20-35 levels too bright there.
    assert abs((matched[band] - photo[band]).mean()) < 3.0
    assert (whole[band] - photo[band]).mean() > 15.0


def test_motion_with_no_flow_and_no_occlusion_leaves_the_photo_bit_for_bit(
    grace_hopper, aligned, hopper_face
):
    paster = paste.FacePaster(grace_hopper, aligned.matrix, 128, landmarks=hopper_face.landmarks)
    crop = np.random.default_rng(0).uniform(size=(128, 128, 3)).astype(np.float32)
    frame = paster.paste_motion(
        crop, np.zeros((128, 128, 2), np.float32), np.zeros((128, 128), np.float32)
    )
    np.testing.assert_array_equal(frame, grace_hopper)


def test_motion_moves_the_photos_own_pixels_by_the_flow_in_photo_units(
    aligned, hopper_face, grace_hopper
):
    # A photo whose red channel is its column number: the warped value tells
    # where each pixel was sampled from.
    height, width = grace_hopper.shape[:2]
    ramp = np.zeros_like(grace_hopper)
    ramp[..., 0] = (np.arange(width) % 256)[None, :]
    paster = paste.FacePaster(ramp, aligned.matrix, 128, landmarks=hopper_face.landmarks)
    flow = np.zeros((128, 128, 2), np.float32)
    flow[..., 0] = 2.0  # 2 crop pixels to the right
    frame = paster.paste_motion(
        np.zeros((128, 128, 3), np.float32), flow, np.zeros((128, 128), np.float32)
    )
    scale = np.sqrt(abs(np.linalg.det(aligned.matrix[:2, :2])))  # crop pixels per photo pixel
    rotation = np.arctan2(aligned.matrix[1, 0], aligned.matrix[0, 0])
    expected_shift = 2.0 / scale * np.cos(rotation)
    mask = paste.lower_face_mask(grace_hopper.shape, hopper_face.landmarks)
    deep = (mask > 0.99) & (ramp[..., 0] < 250)
    shift = frame[..., 0][deep].astype(np.float64) - ramp[..., 0][deep]
    assert abs(np.median(shift) - expected_shift) < 0.6
    np.testing.assert_array_equal(frame[mask == 0], ramp[mask == 0])
    # Where the occlusion mask is on, the generated crop shows instead.
    shown = paster.paste_motion(
        np.ones((128, 128, 3), np.float32), flow, np.ones((128, 128), np.float32)
    )
    assert shown[deep].min() >= 250  # the mask is above 0.99 there


def test_the_drawn_mouth_keeps_to_the_colours_of_the_photos_lower_face(
    grace_hopper, aligned, hopper_face
):
    paster = paste.FacePaster(grace_hopper, aligned.matrix, 128, landmarks=hopper_face.landmarks)
    green = np.zeros((128, 128, 3), np.float32)
    green[..., 1] = 1.0  # an undertrained mouth's worst
    frame = paster.paste_motion(
        green, np.zeros((128, 128, 2), np.float32), np.ones((128, 128), np.float32)
    )
    mask = paste.lower_face_mask(grace_hopper.shape, hopper_face.landmarks)
    inside = frame[mask > 0.99].astype(np.float32)
    photo = grace_hopper[mask > 0.99].astype(np.float32)
    chroma, own = paste._chroma(inside), paste._chroma(photo)
    low = np.percentile(own, 1, axis=0) - paste.CHROMA_MARGIN - 2
    high = np.percentile(own, 99, axis=0) + paste.CHROMA_MARGIN + 2
    assert np.all((chroma >= low) & (chroma <= high))
    assert np.all(inside[:, 1] < inside[:, 0])  # green stays below red, as in skin
    assert np.abs(inside.mean(axis=0) - photo.mean(axis=0)).max() > 5  # it was drawn


# ------------------------------------------------------------------ reused frames
def motion_frames(num_frames=3, seed=0):
    """`(crop, flow, occlusion)` for a few frames: random crops, flows of a pixel or two."""
    rng = np.random.default_rng(seed)
    for _ in range(num_frames):
        yield (
            rng.uniform(size=(128, 128, 3)).astype(np.float32),
            rng.normal(0.0, 1.5, size=(128, 128, 2)).astype(np.float32),
            rng.uniform(size=(128, 128)).astype(np.float32),
        )


@pytest.mark.parametrize("landmarks", [True, False], ids=["lower_face", "crop"])
def test_pasting_into_a_reused_frame_or_region_equals_a_new_frame_bit_for_bit(
    grace_hopper, aligned, hopper_face, landmarks
):
    paster = paste.FacePaster(
        grace_hopper, aligned.matrix, 128, landmarks=hopper_face.landmarks if landmarks else None
    )
    left, top, right, bottom = paster.changed_box
    frame, region = grace_hopper.copy(), paster.new_region()
    for crop, flow, occlusion in motion_frames():
        for pasted in (
            lambda **out: paster.paste(crop, **out),
            lambda **out: paster.paste_motion(crop, flow, occlusion, **out),
        ):
            new = pasted()
            reused_frame, reused_region = pasted(out=frame), pasted(out=region)
            assert reused_frame is frame and reused_region is region
            np.testing.assert_array_equal(reused_frame, new)
            np.testing.assert_array_equal(reused_region, new[top:bottom, left:right])


def test_every_pixel_outside_the_changed_box_is_the_photos(grace_hopper, aligned, hopper_face):
    for landmarks in (hopper_face.landmarks, None):
        paster = paste.FacePaster(grace_hopper, aligned.matrix, 128, landmarks=landmarks)
        left, top, right, bottom = paster.changed_box
        assert (
            paster.box[0] <= left < right <= paster.box[2]
            and paster.box[1] <= top < bottom <= paster.box[3]
        )
        changed = np.zeros(grace_hopper.shape[:2], bool)
        for crop, flow, occlusion in motion_frames():
            changed |= np.any(paster.paste_motion(crop, flow, occlusion) != grace_hopper, axis=2)
            changed |= np.any(paster.paste(1.0 - crop) != grace_hopper, axis=2)
        rows, cols = np.nonzero(changed)
        # Every changed pixel is in the box, and the box is hardly bigger than they
        # need (the faintest edge of the mask may round back to the photo's value).
        spans = np.array([cols.min(), rows.min(), cols.max() + 1, rows.max() + 1])
        margins = (spans - paster.changed_box) * [1, 1, -1, -1]
        assert margins.min() >= 0 and margins.max() <= 2


def test_a_reused_frame_of_another_shape_or_type_is_refused(grace_hopper, aligned):
    paster = paste.FacePaster(grace_hopper, aligned.matrix, 128)
    crop = np.zeros((128, 128, 3), np.float32)
    region = paster.new_region()
    for wrong in (
        region[:-1],
        region.astype(np.float32),
        np.asfortranarray(grace_hopper),
        grace_hopper[:, ::-1],
    ):
        with pytest.raises(ValueError, match="received"):
            paster.paste(crop, out=wrong)
