"""OpenFace CSV import/export and the geometric AU estimator."""

import csv
import json

import numpy as np
import pytest

from keras_autalk.errors import AutalkError, InputFileError
from keras_autalk.media import au_labels, face
from keras_autalk.media.au_labels import (
    GEOMETRIC_FEATURES,
    OPENFACE_INTENSITY_AUS,
    OPENFACE_OCCURRENCE_AUS,
    GeometricAUEstimator,
    calibrate,
    geometric_features,
    per_au_correlation,
    read_openface_csv,
    write_openface_csv,
)

FPS = 25
SPEECH_AUS = (10, 14, 20, 25, 26)


# ---------------------------------------------------------------------------
# OpenFace CSVs as OpenFace 2.x FeatureExtraction writes them (all outputs on)


def openface_header(intensity_aus=OPENFACE_INTENSITY_AUS, occurrence_aus=OPENFACE_OCCURRENCE_AUS):
    """The 714 column names of OpenFace 2.x FeatureExtraction's CSV."""
    names = [
        "frame",
        "face_id",
        "timestamp",
        "confidence",
        "success",
        "gaze_0_x",
        "gaze_0_y",
        "gaze_0_z",
        "gaze_1_x",
        "gaze_1_y",
        "gaze_1_z",
        "gaze_angle_x",
        "gaze_angle_y",
    ]
    for axis in ("x", "y", "X", "Y", "Z"):
        names += [f"eye_lmk_{axis}_{i}" for i in range(56)]
    names += ["pose_Tx", "pose_Ty", "pose_Tz", "pose_Rx", "pose_Ry", "pose_Rz"]
    for axis in ("x", "y", "X", "Y", "Z"):
        names += [f"{axis}_{i}" for i in range(68)]
    names += ["p_scale", "p_rx", "p_ry", "p_rz", "p_tx", "p_ty"]
    names += [f"p_{i}" for i in range(34)]
    names += [f"AU{unit:02d}_r" for unit in intensity_aus]
    names += [f"AU{unit:02d}_c" for unit in occurrence_aus]
    return names


def write_openface_like(
    path, intensity, success=None, rng=None, frames=None, header=None, fps=FPS, face_ids=None
):
    """Write a CSV in OpenFace's own format: ", " separators, its precisions.

    `intensity` is `(T, 17)` over OPENFACE_INTENSITY_AUS.
    """
    rng = rng or np.random.default_rng(0)
    header = header or openface_header()
    num_rows = len(intensity)
    success = np.ones(num_rows, int) if success is None else np.asarray(success)
    frames = np.arange(1, num_rows + 1) if frames is None else np.asarray(frames)
    face_ids = np.zeros(num_rows, int) if face_ids is None else np.asarray(face_ids)
    lines = [", ".join(header)]
    for row in range(num_rows):
        ok = bool(success[row])
        values = {
            "frame": str(frames[row]),
            "face_id": str(face_ids[row]),
            "timestamp": f"{(frames[row] - 1) / fps:.3f}",
            "confidence": f"{rng.uniform(0.9, 0.98) if ok else 0.03:.2f}",
            "success": "1" if ok else "0",
        }
        for unit, value in zip(OPENFACE_INTENSITY_AUS, intensity[row]):
            values[f"AU{unit:02d}_r"] = f"{value if ok else 0.0:.2f}"
            values[f"AU{unit:02d}_c"] = f"{float(ok and value >= 1.0):.1f}"
        values["AU28_c"] = "0.0"
        cells = [values.get(name, f"{rng.normal(0, 50):.1f}") for name in header]
        lines.append(", ".join(cells))
    path.write_text("\n".join(lines) + "\n")
    return path


def random_intensity(rng, num_rows):
    return np.round(rng.uniform(0, 4.5, (num_rows, len(OPENFACE_INTENSITY_AUS))), 2)


def columns_of(units):
    return [OPENFACE_INTENSITY_AUS.index(unit) for unit in units]


def test_reads_configured_aus_from_a_real_openface_csv(tmp_path, rng):
    intensity = random_intensity(rng, 30)
    path = write_openface_like(tmp_path / "bbaf2n.csv", intensity, rng=rng)
    assert len(openface_header()) == 714
    with open(path) as handle:
        assert handle.readline().startswith("frame, face_id, timestamp, confidence, success")

    labels = read_openface_csv(path, SPEECH_AUS)
    assert labels.intensity.shape == (30, 5) and labels.intensity.dtype == np.float32
    np.testing.assert_allclose(labels.intensity, intensity[:, columns_of(SPEECH_AUS)], atol=1e-6)
    np.testing.assert_array_equal(labels.occurrence, intensity[:, columns_of(SPEECH_AUS)] >= 1.0)
    np.testing.assert_array_equal(labels.mask, np.ones(30))
    assert labels.action_units == SPEECH_AUS and labels.num_frames == 30


def test_success_zero_frames_are_masked(tmp_path, rng):
    intensity = random_intensity(rng, 20)
    success = np.ones(20, int)
    success[[0, 7, 8, 9]] = 0
    path = write_openface_like(tmp_path / "lost.csv", intensity, success=success, rng=rng)
    labels = read_openface_csv(path, (25, 26))
    np.testing.assert_array_equal(labels.mask, success)
    assert np.all(labels.intensity[success == 0] == 0)
    np.testing.assert_allclose(
        labels.intensity[success == 1], intensity[success == 1][:, columns_of((25, 26))], atol=1e-6
    )


def test_missing_au_column_is_named(tmp_path, rng):
    without_14 = tuple(unit for unit in OPENFACE_INTENSITY_AUS if unit != 14)
    header = openface_header(intensity_aus=without_14)
    path = write_openface_like(
        tmp_path / "no14.csv", random_intensity(rng, 5), header=header, rng=rng
    )
    with pytest.raises(AutalkError, match="no column 'AU14_r'") as error:
        read_openface_csv(path, SPEECH_AUS)
    assert "\n" not in str(error.value)
    assert read_openface_csv(path, (25, 26)).num_frames == 5  # other AUs still read
    no_success = [name for name in openface_header() if name != "success"]
    path = write_openface_like(
        tmp_path / "nosuccess.csv", random_intensity(rng, 5), header=no_success, rng=rng
    )
    with pytest.raises(AutalkError, match="no column 'success'"):
        read_openface_csv(path, SPEECH_AUS)


def test_empty_csv_and_header_only_csv_are_refused(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(InputFileError, match="is empty"):
        read_openface_csv(empty, SPEECH_AUS)
    header_only = tmp_path / "header.csv"
    header_only.write_text(", ".join(openface_header()) + "\n")
    with pytest.raises(AutalkError, match="has a header but no rows"):
        read_openface_csv(header_only, SPEECH_AUS)
    with pytest.raises(InputFileError, match="does not exist"):
        read_openface_csv(tmp_path / "missing.csv", SPEECH_AUS)


def test_truncated_and_non_numeric_rows_are_refused(tmp_path, rng):
    path = write_openface_like(tmp_path / "cut.csv", random_intensity(rng, 4), rng=rng)
    text = path.read_text()
    path.write_text(text[: len(text) - 300])  # killed while writing the last row
    with pytest.raises(AutalkError, match="line 5 .*truncated"):
        read_openface_csv(path, SPEECH_AUS)
    lines = text.splitlines()
    lines[2] = lines[2].replace(", 1, ", ", yes, ", 1)  # the success cell
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(AutalkError, match="non-numeric value 'yes' in column 'success' on line 3"):
        read_openface_csv(path, SPEECH_AUS)


def test_num_frames_cuts_pads_and_masks_missing_rows(tmp_path, rng):
    intensity = random_intensity(rng, 20)
    keep = np.ones(20, bool)
    keep[12] = False  # OpenFace skipped a frame
    path = write_openface_like(
        tmp_path / "gap.csv", intensity[keep], frames=np.arange(1, 21)[keep], rng=rng
    )
    padded = read_openface_csv(path, (25,), num_frames=24)
    expected_mask = np.r_[keep, np.zeros(4)]
    np.testing.assert_array_equal(padded.mask, expected_mask)
    np.testing.assert_allclose(
        padded.intensity[:20][keep, 0], intensity[keep][:, columns_of((25,))[0]], atol=1e-6
    )
    cut = read_openface_csv(path, (25,), num_frames=10)
    assert cut.num_frames == 10 and cut.mask.sum() == 10
    assert read_openface_csv(path, (25,)).num_frames == 20


def test_several_faces_per_frame_keep_the_tracked_most_confident(tmp_path, rng):
    # FaceLandmarkVidMulti writes one row per face and frame.
    intensity = np.zeros((6, len(OPENFACE_INTENSITY_AUS)))
    column = OPENFACE_INTENSITY_AUS.index(26)
    intensity[::2, column] = 4.0  # face 0 (tracked)
    intensity[1::2, column] = 1.0  # face 1 (lost)
    path = write_openface_like(
        tmp_path / "multi.csv",
        intensity,
        success=[1, 0, 1, 0, 1, 0],
        frames=[1, 1, 2, 2, 3, 3],
        face_ids=[0, 1, 0, 1, 0, 1],
        rng=rng,
    )
    labels = read_openface_csv(path, (26,))
    np.testing.assert_array_equal(labels.intensity[:, 0], [4.0, 4.0, 4.0])
    np.testing.assert_array_equal(labels.mask, [1, 1, 1])


def test_timestamps_resample_a_csv_made_at_another_frame_rate(tmp_path):
    # OpenFace ran on a 30 fps copy of the video; the video has 25 fps.
    times = np.arange(60) / 30.0
    intensity = np.zeros((60, len(OPENFACE_INTENSITY_AUS)))
    intensity[:, OPENFACE_INTENSITY_AUS.index(25)] = np.round(2.0 * times, 2)
    path = write_openface_like(tmp_path / "30fps.csv", intensity, fps=30)
    labels = read_openface_csv(path, (25,), num_frames=52, fps=25)
    targets = np.arange(52) / 25.0
    assert labels.mask[:50].all() and not labels.mask[50:].any()  # the CSV ends at 1.97 s
    np.testing.assert_allclose(labels.intensity[:50, 0], 2.0 * targets[:50], atol=0.02)


def test_write_then_read_round_trips_in_openface_format(tmp_path, rng):
    units = (10, 14, 18, 20, 25, 26)  # AU18 is not one of OpenFace's outputs
    intensity = rng.uniform(0, 5, (40, len(units)))
    success = (rng.uniform(size=40) > 0.2).astype(int)
    path = write_openface_csv(tmp_path / "truth.csv", intensity, units, fps=FPS, success=success)
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    header = rows[0]
    assert header[:5] == ["frame", " face_id", " timestamp", " confidence", " success"]
    assert " AU25_r" in header and " AU25_c" in header and " AU28_c" in header
    assert header.index(" AU17_r") < header.index(" AU18_r") < header.index(" AU20_r")
    assert rows[2][:3] == ["2", " 0", " 0.040"]  # 1-based frames, seconds

    labels = read_openface_csv(path, units)
    np.testing.assert_array_equal(labels.mask, success)
    np.testing.assert_allclose(labels.intensity, intensity * success[:, None], atol=0.005)
    np.testing.assert_array_equal(labels.occurrence, (intensity >= 1.0) & (success[:, None] == 1))
    # AUs that were not given are written as 0.
    assert np.all(read_openface_csv(path, (1, 45)).intensity == 0)


def test_write_refuses_bad_input_and_leaves_no_file(tmp_path):
    target = tmp_path / "bad.csv"
    with pytest.raises(AutalkError, match=r"shape \(num_frames, 2\)"):
        write_openface_csv(target, np.zeros((10, 3)), (25, 26), fps=FPS)
    with pytest.raises(AutalkError, match="not finite"):
        write_openface_csv(target, np.full((10, 2), np.nan), (25, 26), fps=FPS)
    with pytest.raises(AutalkError, match="action_units"):
        write_openface_csv(target, np.zeros((10, 2)), (25, 0), fps=FPS)
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------
# Geometric estimator on the dlib landmarks of the real photos


@pytest.fixture(scope="module")
def base_shapes():
    from keras_autalk.media import photos

    return [
        face.find_face(photos.load_photo(name)).landmarks for name in ("astronaut", "grace_hopper")
    ]


def face_axes(landmarks):
    """Eye midpoint, unit x (towards the right eye), unit y (down) and IOD."""
    left, right = landmarks[36:42].mean(axis=0), landmarks[42:48].mean(axis=0)
    distance = np.hypot(*(right - left))
    x_axis = (right - left) / distance
    y_axis = np.array([-x_axis[1], x_axis[0]])
    return (left + right) / 2, x_axis, y_axis, distance


def speaking_landmarks(base, params, rng=None, jitter=0.0):
    """Displace the mouth and chin of `base` by (jaw, lip_part, stretch) per frame.

    Displacements are in the face's own frame, in inter-ocular units; with
    `jitter`, mouth and chin points also move randomly (as dlib's do).
    """
    origin, x_axis, y_axis, distance = face_axes(base)
    local = np.stack([(base - origin) @ x_axis, (base - origin) @ y_axis], axis=1) / distance
    frames = []
    for jaw, lip_part, stretch in params:
        points = local.copy()
        chin = np.arange(5, 12)
        points[chin, 1] += jaw * 0.35 * (1 - np.abs(chin - 8) / 4)
        points[[55, 56, 57, 58, 59, 65, 66, 67], 1] += jaw * 0.3 + lip_part * 0.1
        points[[48, 54, 60, 64], 1] += jaw * 0.15
        points[[61, 62, 63], 1] -= lip_part * 0.05
        side = np.sign(points[:, 0] - local[[48, 54], 0].mean())
        points[[48, 54, 60, 64], 0] += side[[48, 54, 60, 64]] * stretch * 0.15
        points[[49, 53, 55, 59], 0] += side[[49, 53, 55, 59]] * stretch * 0.08
        if jitter:
            moving = np.r_[5:12, 48:68]
            points[moving] += rng.normal(0, jitter, (len(moving), 2))
        frames.append(origin + distance * (points[:, :1] * x_axis + points[:, 1:] * y_axis))
    return np.stack(frames)


def random_similarity(rng, landmarks):
    angle = rng.uniform(-0.5, 0.5)
    scale = rng.uniform(0.3, 3.0)
    rotation = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    return landmarks @ rotation.T + rng.uniform(-300, 300, 2)


def speech_params(rng, num_frames=60):
    """Smooth random (jaw, lip_part, stretch) curves, closed at both ends."""
    knots = rng.uniform(0, 1, (8, 3))
    knots[[0, -1]] = 0
    positions = np.linspace(0, 7, num_frames)
    return np.stack([np.interp(positions, np.arange(8), knots[:, k]) for k in range(3)], 1)


def test_features_are_invariant_to_translation_scale_and_rotation(base_shapes, rng):
    for base in base_shapes:
        clip = speaking_landmarks(base, speech_params(rng, 12), rng, jitter=0.01)
        reference = geometric_features(clip)
        assert reference.shape == (12, len(GEOMETRIC_FEATURES))
        for _ in range(3):
            moved = random_similarity(rng, clip)
            np.testing.assert_allclose(geometric_features(moved), reference, atol=2e-5)
        # Not invariant to what matters: the mouth itself.
        opened = speaking_landmarks(base, [(0.0, 1.0, 0.0)])
        assert not np.allclose(geometric_features(opened), geometric_features(base), atol=1e-3)


def test_features_follow_the_mouth(base_shapes):
    names = list(GEOMETRIC_FEATURES)
    ramp = np.linspace(0, 1, 6)
    for base in base_shapes:
        jaw = geometric_features(speaking_landmarks(base, [(v, 0, 0) for v in ramp]))
        part = geometric_features(speaking_landmarks(base, [(0, v, 0) for v in ramp]))
        stretch = geometric_features(speaking_landmarks(base, [(0, 0, v) for v in ramp]))
        assert np.all(np.diff(jaw[:, names.index("jaw_drop")]) > 0.04)
        assert np.all(np.diff(jaw[:, names.index("outer_lip_height")]) > 0.04)
        assert np.all(np.diff(part[:, names.index("inner_lip_gap")]) > 0.02)
        np.testing.assert_allclose(
            part[:, names.index("jaw_drop")], part[0, names.index("jaw_drop")], atol=1e-5
        )
        assert np.all(np.diff(stretch[:, names.index("mouth_width")]) > 0.04)
        assert np.all(np.diff(stretch[:, names.index("mouth_aspect")]) < 0)


def test_single_frame_and_non_finite_landmarks(base_shapes):
    assert geometric_features(base_shapes[0]).shape == (1, len(GEOMETRIC_FEATURES))
    clip = np.stack([base_shapes[0], np.full((68, 2), np.nan), np.zeros((68, 2))])
    features = geometric_features(clip)
    assert np.all(np.isfinite(features[0]))
    assert np.all(np.isnan(features[1:]))
    with pytest.raises(AutalkError, match=r"shape \(num_frames, 68, 2\)"):
        geometric_features(np.zeros((5, 67, 2)))


def synthetic_clips(base_shapes, rng, num_clips, jitter=0.01):
    clips, params = [], []
    for index in range(num_clips):
        clip_params = speech_params(rng)
        base = base_shapes[index % len(base_shapes)]
        clips.append(
            random_similarity(rng, speaking_landmarks(base, clip_params, rng, jitter=jitter))
        )
        params.append(clip_params)
    return clips, params


def test_fit_recovers_a_known_linear_relation(base_shapes, rng):
    clips, _ = synthetic_clips(base_shapes, rng, 8, jitter=0.02)
    features = [geometric_features(clip).astype(np.float64) for clip in clips]
    true_weights = rng.normal(0, 2.0, (len(GEOMETRIC_FEATURES), 3))
    true_bias = np.array([1.0, 2.5, -0.5])
    targets = [f @ true_weights + true_bias for f in features]

    estimator = GeometricAUEstimator((12, 25, 26), ridge=0.0, clip_baseline=False)
    estimator.fit(features, targets)
    weights, bias = estimator.coefficients()
    np.testing.assert_allclose(weights, true_weights, atol=1e-3 * np.abs(true_weights).max())
    np.testing.assert_allclose(bias, true_bias, atol=1e-2)
    # Predictions are the relation, clipped to OpenFace's 0-5 scale.
    predicted = estimator.predict(clips[0])
    np.testing.assert_allclose(predicted, np.clip(targets[0], 0, 5), atol=1e-3)


def test_predictions_are_clipped_to_0_5(base_shapes, rng):
    clips, params = synthetic_clips(base_shapes, rng, 4)
    features = [geometric_features(clip) for clip in clips]
    targets = [40.0 * p[:, :1] - 10.0 for p in params]  # far outside 0-5
    estimator = GeometricAUEstimator((26,), ridge=0.0).fit(features, targets)
    predicted = estimator.predict(clips[0])
    assert predicted.min() == 0.0 and predicted.max() == 5.0
    assert predicted.dtype == np.float32


def test_calibrate_generalises_to_held_out_clips(base_shapes, rng):
    def aus(p):
        jaw, lip_part, stretch = p.T
        return np.stack([5 * stretch, 5 * np.clip(jaw + lip_part, 0, 1), 5 * jaw], 1)

    clips, params = synthetic_clips(base_shapes, rng, 16)
    estimator = calibrate(clips[:12], [aus(p) for p in params[:12]], (20, 25, 26))
    assert estimator.calibration["num_clips"] == 12
    assert estimator.calibration["num_frames"] == 12 * 60
    assert all(r > 0.95 for r in estimator.calibration["correlation"].values())
    predicted = np.concatenate([estimator.predict(clip) for clip in clips[12:]])
    held_out = per_au_correlation(
        predicted, np.concatenate([aus(p) for p in params[12:]]), (20, 25, 26)
    )
    assert set(held_out) == {"AU20", "AU25", "AU26"}
    assert all(r > 0.95 for r in held_out.values()), held_out


def test_masked_frames_are_left_out_of_the_fit(base_shapes, rng):
    clips, params = synthetic_clips(base_shapes, rng, 4)
    targets = [5 * p[:, :1] for p in params]
    corrupted = [t.copy() for t in targets]
    masks = []
    for target in corrupted:
        mask = np.ones(len(target))
        mask[::3] = 0
        target[::3] = 5.0  # wrong labels, but masked
        masks.append(mask)
    clean = calibrate(clips, targets, (26,))
    masked = calibrate(clips, corrupted, (26,), masks=masks)
    unmasked = calibrate(clips, corrupted, (26,))
    difference = np.abs(masked.predict(clips[0]) - clean.predict(clips[0])).max()
    assert difference < 0.15
    assert np.abs(unmasked.predict(clips[0]) - clean.predict(clips[0])).max() > 3 * difference


def test_non_finite_frames_predict_zero(base_shapes, rng):
    clips, params = synthetic_clips(base_shapes, rng, 4)
    estimator = calibrate(clips, [5 * p[:, :1] for p in params], (26,))
    clip = clips[0].copy()
    clip[10] = np.nan
    predicted = estimator.predict(clip)
    assert predicted[10, 0] == 0.0 and np.all(np.isfinite(predicted))
    assert estimator.predict(np.zeros((0, 68, 2))).shape == (0, 1)  # no face in any frame


def test_save_load_round_trip(base_shapes, rng, tmp_path):
    clips, params = synthetic_clips(base_shapes, rng, 4)
    estimator = calibrate(clips, [5 * p for p in params], (26, 25, 20))
    path = estimator.save(tmp_path / "estimator.json")
    state = json.loads(path.read_text())
    assert state["action_units"] == [26, 25, 20]
    assert state["feature_names"] == list(GEOMETRIC_FEATURES)
    loaded = GeometricAUEstimator.load(path)
    assert loaded.action_units == (26, 25, 20)
    assert loaded.calibration == estimator.calibration
    np.testing.assert_array_equal(loaded.predict(clips[1]), estimator.predict(clips[1]))
    assert [p.name for p in tmp_path.iterdir()] == ["estimator.json"]


def test_load_refuses_other_files(tmp_path):
    not_json = tmp_path / "model.json"
    not_json.write_text("{weights: oops")
    with pytest.raises(InputFileError, match="not valid JSON"):
        GeometricAUEstimator.load(not_json)
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"format": "something else"}))
    with pytest.raises(AutalkError, match="not a keras-autalk geometric AU estimator"):
        GeometricAUEstimator.load(other)
    old = tmp_path / "old.json"
    old.write_text(
        json.dumps(
            {
                "format": "keras_autalk.geometric_au_estimator",
                "version": 1,
                "feature_names": ["mouth_width"],
            }
        )
    )
    with pytest.raises(AutalkError, match="another version"):
        GeometricAUEstimator.load(old)


def test_unfitted_estimator_and_bad_arguments(base_shapes):
    with pytest.raises(AutalkError, match="not calibrated"):
        GeometricAUEstimator().predict(base_shapes[0])
    with pytest.raises(AutalkError, match="at least two usable frames"):
        GeometricAUEstimator((25,)).fit(
            np.full((3, len(GEOMETRIC_FEATURES)), np.nan), np.zeros((3, 1))
        )
    with pytest.raises(AutalkError, match=r"AU targets must have shape \(3, 2\)"):
        GeometricAUEstimator((25, 26)).fit(np.zeros((3, len(GEOMETRIC_FEATURES))), np.zeros((3, 1)))


def test_default_estimator_is_missing_or_loads():
    if au_labels.DEFAULT_ESTIMATOR_PATH.is_file():
        assert au_labels.load_default_estimator().fitted
    else:
        with pytest.raises(AutalkError, match="No calibrated geometric AU estimator"):
            au_labels.load_default_estimator()
