"""Evaluation metrics: known answers on synthetic images and the real photos."""

import numpy as np
import pytest
from scipy import ndimage
from skimage import data as skdata
from skimage import filters
from skimage.metrics import structural_similarity

from keras_autalk.config import FaceConfig
from keras_autalk.errors import AutalkError, NoFaceError
from keras_autalk.evaluation import metrics
from keras_autalk.media import face
from keras_autalk.models import losses


@pytest.fixture(scope="module")
def aligned(astronaut, grace_hopper):
    """name -> AlignedFace of the bundled photos (128-pixel crops)."""
    return {
        "astronaut": face.align_face(astronaut, face.find_face(astronaut).landmarks),
        "grace_hopper": face.align_face(grace_hopper, face.find_face(grace_hopper).landmarks),
    }


def as_float(image):
    return image.astype(np.float64) / 255.0


def mouth_landmarks(x_min, y_min, x_max, y_max):
    """68 landmarks at (0, 0) except the mouth, whose points span the given box."""
    landmarks = np.zeros((68, 2))
    xs = np.linspace(x_min, x_max, 20)
    ys = np.linspace(y_min, y_max, 20)
    landmarks[48:68] = np.stack([xs, ys[::-1]], axis=1)
    return landmarks


# ---------------------------------------------------------------- PSNR / SSIM


def test_psnr_known_values_and_shape():
    reference = np.zeros((2, 3, 8, 8, 3))
    generated = np.full((2, 3, 8, 8, 3), 0.1)
    generated[1, 2] = 0.0
    values = metrics.psnr(generated, reference)
    assert values.shape == (2, 3) and values.dtype == np.float64
    np.testing.assert_allclose(values[0], 20.0)  # MSE 0.01
    assert values[1, 2] == np.inf
    # On the 0-255 scale the same images give the same PSNR.
    np.testing.assert_allclose(
        metrics.psnr(generated * 255, reference * 255, max_value=255.0)[0], 20.0
    )


def test_psnr_refuses_mismatched_shapes():
    with pytest.raises(AutalkError, match="differ in shape"):
        metrics.psnr(np.zeros((2, 8, 8, 3)), np.zeros((3, 8, 8, 3)))


def test_ssim_matches_scikit_image(rng):
    photo = skdata.astronaut()[:96, 200:296] / 255.0
    noisy = np.clip(photo + rng.normal(0.0, 0.08, photo.shape), 0.0, 1.0)
    blurred = filters.gaussian(photo, sigma=1.5, channel_axis=-1)
    random = rng.random((40, 56, 3))
    pairs = [(noisy, photo), (blurred, photo), (random, rng.random((40, 56, 3)))]
    for generated, reference in pairs:
        expected = structural_similarity(
            generated,
            reference,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
            data_range=1,
            channel_axis=-1,
        )
        assert abs(metrics.ssim(generated, reference) - expected) < 1e-4
    batch = metrics.ssim(np.stack([noisy, blurred]), np.stack([photo, photo]))
    assert batch.shape == (2,) and batch[0] < batch[1] < 1.0
    np.testing.assert_allclose(metrics.ssim(photo, photo), 1.0)


# ------------------------------------------------------------- mouth region


def test_mouth_box_is_the_loss_region():
    landmarks = mouth_landmarks(40.0, 80.0, 80.0, 100.0)
    # Width 40, margin 0.25 -> 10 pixels each side: x 30..90, y 70..110.
    assert metrics.mouth_box(landmarks, 128) == (30, 70, 91, 111)
    x0, y0, x1, y1 = metrics.mouth_box(landmarks + 0.5, 128)  # 30.5..90.5
    assert (x0, x1) == (31, 91)
    region = np.asarray(losses.mouth_region((landmarks + 0.5)[None, None], 128, 128))[0, 0, ..., 0]
    box_mask = np.zeros((128, 128))
    box_mask[y0:y1, x0:x1] = 1.0
    np.testing.assert_array_equal(region, box_mask)
    # Clipped to the image: (height, width) = (100, 60).
    assert metrics.mouth_box(landmarks, (100, 60)) == (30, 70, 60, 100)


def test_mouth_psnr_and_ssim_only_see_the_mouth(rng):
    reference = rng.random((2, 3, 64, 64, 3))
    landmarks = np.broadcast_to(mouth_landmarks(20.0, 36.0, 44.0, 48.0), (2, 3, 68, 2))
    x0, y0, x1, y1 = metrics.mouth_box(landmarks[0, 0], 64)
    assert (x0, y0, x1, y1) == (14, 30, 51, 55)
    outside = np.ones((64, 64, 1), dtype=bool)
    outside[y0:y1, x0:x1] = False
    changed_outside = np.where(outside, 1.0 - reference, reference)
    assert np.all(metrics.mouth_psnr(changed_outside, reference, landmarks) == np.inf)
    np.testing.assert_allclose(metrics.mouth_ssim(changed_outside, reference, landmarks), 1.0)
    shifted_inside = np.where(outside, reference, reference + 0.1)
    values = metrics.mouth_psnr(shifted_inside, reference, landmarks)
    assert values.shape == (2, 3)
    np.testing.assert_allclose(values, 20.0)
    region = (Ellipsis, slice(y0, y1), slice(x0, x1), slice(None))
    np.testing.assert_allclose(
        metrics.mouth_ssim(shifted_inside, reference, landmarks),
        metrics.ssim(shifted_inside[region], reference[region]),
    )


def test_mouth_metrics_are_nan_for_a_mouth_outside_the_frame(rng):
    reference = rng.random((1, 32, 32, 3))
    landmarks = mouth_landmarks(100.0, 100.0, 110.0, 105.0)[None]
    assert np.isnan(metrics.mouth_psnr(reference * 0.5, reference, landmarks)[0])
    assert np.isnan(metrics.mouth_ssim(reference * 0.5, reference, landmarks)[0])


# ---------------------------------------------------------------- landmarks


def test_landmark_distance_known_values(rng):
    reference = rng.random((4, 68, 2)) * 128
    moved = reference + np.array([3.0, 4.0])
    np.testing.assert_allclose(metrics.landmark_distance(moved, reference), 5.0)
    np.testing.assert_allclose(metrics.landmark_distance(moved, reference, points="face"), 5.0)
    mouth_moved = reference.copy()
    mouth_moved[:, list(metrics.MOUTH_POINTS)] += np.array([3.0, 4.0])
    np.testing.assert_allclose(metrics.landmark_distance(mouth_moved, reference), 5.0)
    np.testing.assert_allclose(
        metrics.landmark_distance(mouth_moved, reference, points="face"), 5.0 * 20 / 68
    )
    assert metrics.MOUTH_POINTS == tuple(range(48, 68))
    with pytest.raises(ValueError, match="mouth"):
        metrics.landmark_distance(moved, reference, points="lips")


def test_aligned_face_box_sits_on_the_template():
    left, top, right, bottom = metrics.aligned_face_box()
    template = face.template_points(FaceConfig())
    assert abs(left - template[:, 0].min()) <= 1 and abs(right - template[:, 0].max()) <= 1
    assert right - left == bottom - top
    assert top < template[17:27, 1].min()  # above the eyebrows
    # Scaled with the crop.
    assert metrics.aligned_face_box(FaceConfig(crop_size=256))[2] == pytest.approx(2 * right, abs=1)


def test_crop_landmarks_on_aligned_crops(aligned):
    crops = np.stack([aligned[name].crop for name in ("astronaut", "grace_hopper")])
    landmarks, found = metrics.crop_landmarks(as_float(crops))
    assert landmarks.shape == (2, 68, 2) and landmarks.dtype == np.float32
    assert found.tolist() == [True, True]
    # Against the landmarks fitted on the full-resolution photos, mapped into the crops.
    expected = np.stack([aligned[name].landmarks for name in ("astronaut", "grace_hopper")])
    assert np.all(metrics.landmark_distance(landmarks, expected, points="face") < 1.5)
    assert np.all(metrics.landmark_distance(landmarks, expected) < 1.5)
    # uint8 input, leading (B, T) dimensions, and `found` is `check_landmarks`.
    batched, batched_found = metrics.crop_landmarks(np.stack([crops, crops[::-1]]))
    assert batched.shape == (2, 2, 68, 2) and batched_found.shape == (2, 2)
    np.testing.assert_allclose(batched[0], landmarks)
    box = metrics.aligned_face_box()
    for points, was_found in zip(batched.reshape(-1, 68, 2), batched_found.ravel()):
        assert was_found == (face.check_landmarks(points, box) is None)


def test_crop_landmarks_follow_an_opening_mouth(aligned):
    # Stretch the lower part of the crop downwards: the lips move apart.
    crop = as_float(aligned["astronaut"].crop)
    rows = np.arange(128, dtype=np.float64)
    mouth_top = aligned["astronaut"].landmarks[48:68, 1].min()
    source_rows = np.where(rows > mouth_top, mouth_top + (rows - mouth_top) / 1.15, rows)
    grid_rows, grid_cols = np.meshgrid(source_rows, np.arange(128.0), indexing="ij")
    stretched = np.stack(
        [
            ndimage.map_coordinates(crop[..., c], [grid_rows, grid_cols], order=1, mode="nearest")
            for c in range(3)
        ],
        axis=-1,
    )
    landmarks, _ = metrics.crop_landmarks(np.stack([crop, stretched]))
    chin_drop = landmarks[1, 57, 1] - landmarks[0, 57, 1]  # lower-lip bottom
    expected_drop = (aligned["astronaut"].landmarks[57, 1] - mouth_top) * 0.15
    assert chin_drop == pytest.approx(expected_drop, abs=1.5)
    assert metrics.landmark_distance(landmarks[1], landmarks[0]) > 1.0


# --------------------------------------------------------------------- CPBD


def ramp_image(steps, contrast, size=128, column=30, falling=False):
    """A vertical edge: flat, a linear ramp of `steps` steps, flat (grey levels / 255)."""
    low = 100.0
    profile = np.full(size, low + contrast)
    profile[: column + 1] = low
    profile[column : column + steps + 1] = np.linspace(low, low + contrast, steps + 1)
    image = np.repeat(np.broadcast_to(profile, (size, size))[..., None], 3, axis=-1) / 255.0
    return image[:, ::-1] if falling else image


@pytest.mark.parametrize("steps", [2, 3, 4, 7])
@pytest.mark.parametrize("falling", [False, True])
def test_edge_width_of_a_linear_ramp(steps, falling):
    image = ramp_image(steps, 120.0, falling=falling)
    gray = np.rint(image[..., 0] * 255.0)
    edges = np.zeros(gray.shape, dtype=bool)
    column = 31 if not falling else 127 - 30 - steps + 1  # first pixel inside the ramp
    edges[1:-1, column] = True
    widths = metrics.edge_widths(gray, edges)
    np.testing.assert_array_equal(widths[1:-1, column], steps)
    assert np.count_nonzero(widths) == 126


@pytest.mark.parametrize(
    "steps, contrast, expected",
    [
        (2, 120.0, 1.0),  # P = 0.21 against w_JNB 3
        (3, 120.0, 1.0),  # exactly w_JNB: P = 0.632, binned to 63 %: still sharp
        (4, 120.0, 0.0),  # P = 0.94
        (4, 40.0, 1.0),  # low contrast, w_JNB 5: P = 0.36
        (6, 40.0, 0.0),  # P = 0.85
    ],
)
def test_cpbd_of_step_edges(steps, contrast, expected):
    assert metrics.cpbd(ramp_image(steps, contrast)) == expected
    assert metrics.cpbd(ramp_image(steps, contrast, falling=True)) == expected


def test_cpbd_of_a_flat_image_is_zero():
    assert metrics.cpbd(np.full((128, 128, 3), 0.5)) == 0.0
    assert metrics.cpbd(np.zeros((40, 40))) == 0.0  # smaller than a block


@pytest.mark.parametrize("region", ["photo", "crop"])
def test_cpbd_falls_with_blur(astronaut, region):
    # The whole 512-pixel photo, and a 128-pixel crop around the face.
    image = as_float(astronaut if region == "photo" else astronaut[60:188, 140:268])
    values = [
        metrics.cpbd(filters.gaussian(image, sigma=sigma, channel_axis=-1) if sigma else image)
        for sigma in (0, 1, 2, 3)
    ]
    # Sharp photos score about 0.4-0.5; sigma 1 already widens high-contrast
    # edges beyond the just-noticeable 3 pixels, and by sigma 2 no edge is
    # narrow enough, so the metric reaches 0 and stays there.
    assert 0.3 < values[0] < 0.6
    assert values[0] > values[1] > values[2] >= values[3]
    assert values[1] < 0.1 and values[2] == values[3] == 0.0
    if region == "photo":
        finer = [
            metrics.cpbd(filters.gaussian(image, sigma=s, channel_axis=-1)) for s in (0.5, 1.0, 1.5)
        ]
        assert values[0] > finer[0] > finer[1] > finer[2] > 0.0
    batch = metrics.cpbd(np.stack([image, image])[:, :128, :128])
    assert batch.shape == (2,) and batch[0] == batch[1]


# ---------------------------------------------------------------------- AUs


def test_au_metrics_perfect_and_affine_predictions(rng):
    target = rng.uniform(0.0, 5.0, (50, 2))
    perfect = metrics.au_metrics(target, target, (10, 25))
    assert set(perfect) == {"AU10", "AU25", "mean_pearson", "mean_mae", "mean_f1"}
    for name in ("AU10", "AU25"):
        assert perfect[name]["pearson"] == pytest.approx(1.0)
        assert perfect[name]["mae"] == 0.0 and perfect[name]["f1"] == 1.0
    affine = metrics.au_metrics(0.5 * target + 0.3, target, (10, 25))
    assert affine["AU10"]["pearson"] == pytest.approx(1.0)
    assert affine["AU10"]["mae"] == pytest.approx(np.mean(np.abs(0.5 * target[:, 0] - 0.3)))
    inverted = metrics.au_metrics(5.0 - target, target, ("AU10", "AU25"))
    assert inverted["mean_pearson"] == pytest.approx(-1.0)


def test_au_metrics_f1_by_hand():
    target = np.array([[0.0], [2.0], [3.0], [0.5], [1.5]])
    predicted = np.array([[1.2], [2.0], [0.2], [0.0], [1.0]])
    # Occurring (>= 1): target F T T F T, predicted T T F F T -> TP 2, FP 1, FN 1.
    result = metrics.au_metrics(predicted, target, (26,))
    assert result["AU26"]["f1"] == pytest.approx(2 * 2 / (2 * 2 + 1 + 1))
    assert result["AU26"]["mae"] == pytest.approx((1.2 + 0 + 2.8 + 0.5 + 0.5) / 5)
    # At threshold 2: target F T T F F, predicted F T F F F -> TP 1, FN 1.
    assert metrics.au_metrics(predicted, target, (26,), threshold=2.0)["AU26"]["f1"] == (
        pytest.approx(2 / 3)
    )
    # No occurrence in the target: 1.0 when none is predicted, else 0.0.
    quiet = np.zeros((5, 1))
    assert metrics.au_metrics(quiet + 0.5, quiet, (26,))["AU26"]["f1"] == 1.0
    assert metrics.au_metrics(predicted, quiet, (26,))["AU26"]["f1"] == 0.0


def test_au_metrics_mask_and_sequences(rng):
    target = rng.uniform(0.0, 5.0, (2, 6, 3))
    predicted = target.copy()
    predicted[1, 4:] = 5.0 - target[1, 4:]  # wrong, but masked out below
    mask = np.ones((2, 6))
    mask[1, 4:] = 0.0
    masked = metrics.au_metrics(predicted, target, (10, 14, 20), mask=mask)
    assert masked["mean_mae"] == 0.0 and masked["mean_f1"] == 1.0
    assert masked["mean_pearson"] == pytest.approx(1.0)
    assert metrics.au_metrics(predicted, target, (10, 14, 20))["mean_mae"] > 0.1
    # A constant AU has no correlation; the mean skips it.
    constant = target.copy()
    constant[..., 0] = 2.0
    result = metrics.au_metrics(constant, constant, (10, 14, 20))
    assert np.isnan(result["AU10"]["pearson"]) and result["mean_pearson"] == pytest.approx(1.0)
    with pytest.raises(AutalkError, match="2 action units"):
        metrics.au_metrics(target, target, (10, 14))


# ----------------------------------------------------------------- identity


def test_identity_distance(astronaut, grace_hopper, aligned):
    crop = as_float(aligned["astronaut"].crop)
    jittered = np.clip(ndimage.shift(crop, (1.5, -2.0, 0.0), mode="nearest") * 1.1, 0.0, 1.0)
    other = as_float(aligned["grace_hopper"].crop)
    distances = metrics.identity_distance(crop, np.stack([crop, jittered, other]))
    assert distances.shape == (3,)
    assert distances[0] < 1e-6
    assert distances[1] < 0.3
    assert distances[2] > 0.6
    # A full photo (the face is found first) against aligned crops.
    from_photo = metrics.identity_distance(astronaut, np.stack([crop, other]))
    assert from_photo[0] < 0.3 and from_photo[1] > 0.6
    hopper = metrics.identity_distance(grace_hopper, np.stack([crop, other])[None])
    assert hopper.shape == (1, 2) and hopper[0, 1] < 0.3 and hopper[0, 0] > 0.6


def test_face_embeddings_shapes_and_no_face(aligned):
    crops = [aligned["astronaut"].crop, aligned["grace_hopper"].crop]
    embeddings = metrics.face_embeddings(crops)
    assert embeddings.shape == (2, 128) and embeddings.dtype == np.float64
    assert np.linalg.norm(embeddings[0] - embeddings[1]) > 0.6
    np.testing.assert_allclose(metrics.face_embeddings(crops[0])[0], embeddings[0])
    with pytest.raises(NoFaceError):
        metrics.face_embeddings(np.full((200, 240, 3), 0.5))


# ------------------------------------------------------------ Keras metrics


def test_keras_metrics_match_numpy(rng):
    frames = rng.random((2, 3, 32, 32, 3)).astype(np.float32)
    generated = np.clip(frames + rng.normal(0.0, 0.05, frames.shape), 0, 1).astype(np.float32)
    psnr_metric, ssim_metric = metrics.PSNRMetric(), metrics.SSIMMetric()
    psnr_metric.update_state(frames[0], generated[0])  # (T, H, W, 3)
    psnr_metric.update_state(frames[1:], generated[1:])  # (B, T, H, W, 3)
    ssim_metric.update_state(frames, generated)
    # float32 against float64: within 1e-3 dB and 1e-4.
    assert float(psnr_metric.result()) == pytest.approx(
        metrics.psnr(generated, frames).mean(), abs=1e-3
    )
    assert float(ssim_metric.result()) == pytest.approx(
        metrics.ssim(generated, frames).mean(), abs=1e-4
    )
    weights = np.zeros((2, 3))
    weights[0, 1] = 1.0
    weighted = metrics.SSIMMetric()
    weighted.update_state(frames, generated, sample_weight=weights)
    assert float(weighted.result()) == pytest.approx(
        metrics.ssim(generated[0, 1], frames[0, 1]), abs=1e-4
    )
    restored = metrics.PSNRMetric.from_config(metrics.PSNRMetric(max_value=255.0).get_config())
    restored.update_state(frames * 255.0, generated * 255.0)
    assert float(restored.result()) == pytest.approx(
        metrics.psnr(generated, frames).mean(), abs=1e-3
    )


def test_face_embeddings_from_given_landmarks_equal_a_fresh_search(astronaut):
    found = face.find_face(astronaut)
    searched = metrics.face_embeddings(astronaut, aligned=False)
    given = metrics.face_embeddings([astronaut], aligned=False, landmarks=[found.landmarks])
    np.testing.assert_allclose(given, searched, atol=1e-9)
    # Landmarks of another place give another descriptor: they are really used.
    moved = metrics.face_embeddings(
        [astronaut], aligned=False, landmarks=[found.landmarks + [40.0, 0.0]]
    )
    assert np.linalg.norm(moved - searched) > 0.05
