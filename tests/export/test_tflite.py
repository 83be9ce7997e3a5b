"""TFLite export of the generator: each quantisation against the Keras model.

The talker and its SavedModel come from `tests/export/conftest.py`.
Tolerances, from runs with three weight seeds at T = 8 (measured max, then
the bound the tests use):
- TFLite fp32: < 3e-6, bound 1e-4.
- TFLite fp16 weights: frames < 2e-4 (PSNR >= 89 dB), AU < 1e-3; bounds
  frames 2e-3, PSNR 70 dB, AU 1e-2.
- TFLite dynamic-range int8: frames < 1.6e-3 (PSNR >= 75 dB), AU < 0.03 (on
  0-5); bounds frames 1e-2, PSNR 60 dB, AU 0.1.
"""

import json

import numpy as np
import pytest

from keras_autalk.errors import AutalkError
from keras_autalk.export import tflite
from tests.conftest import files_in
from tests.export.conftest import IMAGE, WINDOW, clip_inputs, keras_outputs

TOLERANCES = {  # quantize: (frames max abs, frames PSNR dB, AU max abs)
    "none": (1e-4, 100.0, 1e-4),
    "fp16": (2e-3, 70.0, 1e-2),
    "int8": (1e-2, 60.0, 0.1),
}


@pytest.fixture(scope="module")
def tflite_exports(talker, saved_model_dir, tmp_path_factory):
    """Each quantisation's folder and report, converted from the exported SavedModel.

    (`autalk export --format tflite` below converts from the Keras model.)
    """
    root = tmp_path_factory.mktemp("tflite")
    exports = {}
    for quantize in tflite.QUANTIZATIONS:
        folder = root / quantize
        report = tflite.export_tflite(
            saved_model_dir,
            folder,
            quantize=quantize,
            window_frames=WINDOW,
            reference_model=talker,
            latency_runs=2,
        )
        exports[quantize] = (folder, report)
    return exports


@pytest.mark.parametrize("quantize", tflite.QUANTIZATIONS)
def test_tflite_matches_keras_within_its_tolerance(talker, tflite_exports, quantize):
    import tensorflow as tf

    folder, report = tflite_exports[quantize]
    assert files_in(folder) == ["audio_to_au.tflite", "generator.tflite", "parity.json"]
    assert json.loads((folder / "parity.json").read_text()) == report
    assert report["reference"] == "keras" and report["window_frames"] == WINDOW
    frames_tol, psnr_min, au_tol = TOLERANCES[quantize]
    generator = report["files"]["generator.tflite"]
    assert generator["max_abs_diff"]["frames"] < frames_tol
    assert generator["max_abs_diff"]["au_intensity"] < au_tol
    assert generator["frames_psnr_db"] > psnr_min
    assert generator["latency_ms_per_window"] > 0
    assert report["files"]["audio_to_au.tflite"]["max_abs_diff"]["au_intensity"] < au_tol

    # Independently of the report: other inputs, fed through the interpreter here.
    inputs = clip_inputs(batch=1, frames=WINDOW, seed=11)
    inputs["articulation"] = np.ones([1], "float32")
    expected = keras_outputs(talker, inputs)
    interpreter = tf.lite.Interpreter(model_path=str(folder / "generator.tflite"))
    runner = interpreter.get_signature_runner("generator")
    details = runner.get_input_details()
    assert list(details["identity_image"]["shape"]) == [1, IMAGE, IMAGE, 3]
    assert list(details["audio_features"]["shape"]) == [1, WINDOW, 20, 80]
    outputs = runner(**inputs)
    assert np.abs(outputs["frames"] - expected["frames"]).max() < frames_tol
    assert np.abs(outputs["au_intensity"] - expected["au_intensity"]).max() < au_tol
    assert tflite.psnr(expected["frames"], outputs["frames"]) > psnr_min
    interpreter = tf.lite.Interpreter(model_path=str(folder / "audio_to_au.tflite"))
    au = interpreter.get_signature_runner("audio_to_au")(audio_features=inputs["audio_features"])[
        "au_intensity"
    ]
    assert np.abs(au - expected["au_intensity"]).max() < au_tol


def test_quantised_tflite_files_are_smaller(tflite_exports):
    size = {
        quantize: report["files"]["generator.tflite"]["bytes"]
        for quantize, (_, report) in tflite_exports.items()
    }
    assert size["fp16"] < 0.8 * size["none"]
    assert size["int8"] < 0.8 * size["none"]


def test_export_tflite_refuses_bad_options_and_leaves_nothing(talker, tmp_path):
    with pytest.raises(AutalkError, match="quantize must be one of"):
        tflite.export_tflite(talker, tmp_path / "a", quantize="int4")
    with pytest.raises(AutalkError, match="window_frames"):
        tflite.export_tflite(talker, tmp_path / "b", window_frames=0)
    with pytest.raises(AutalkError, match="not a SavedModel folder"):
        tflite.export_tflite(tmp_path, tmp_path / "c")
    assert files_in(tmp_path) == []


def test_psnr_known_values():
    assert tflite.psnr(np.zeros(8), np.full(8, 0.1)) == pytest.approx(20.0)
    assert tflite.psnr(np.zeros(8), np.full(8, 0.01)) == pytest.approx(40.0)
    assert tflite.psnr(np.ones(3), np.ones(3)) is None


def test_flow_decoder_converts_to_tflite_and_keeps_the_photo_outside_the_lower_face(
    flow_talker, tmp_path
):
    # The warp's gathers, floors and clamps convert: fp32 parity as for the
    # frame decoder (measured 3e-7 in the report, 2e-6 on other inputs; fp16
    # weights 1.3e-3, int8 6.7e-3: a flow's error moves pixels, so more than
    # the frame decoder's), and outside the fixed lower-face region the
    # frames are the photo bit for bit in TFLite too.
    import tensorflow as tf

    from tests.models.test_flow_decoder import outside_region

    report = tflite.export_tflite(
        flow_talker, tmp_path / "flow", window_frames=WINDOW, latency_runs=1
    )
    frames_tol, psnr_min, au_tol = TOLERANCES["none"]
    generator = report["files"]["generator.tflite"]
    assert generator["max_abs_diff"]["frames"] < frames_tol
    assert generator["frames_psnr_db"] > psnr_min
    inputs = clip_inputs(batch=1, frames=WINDOW, seed=11)
    inputs["articulation"] = np.ones([1], "float32")
    expected = keras_outputs(flow_talker, inputs)
    interpreter = tf.lite.Interpreter(model_path=str(tmp_path / "flow" / "generator.tflite"))
    outputs = interpreter.get_signature_runner("generator")(**inputs)
    assert np.abs(outputs["frames"] - expected["frames"]).max() < frames_tol
    assert np.abs(outputs["au_intensity"] - expected["au_intensity"]).max() < au_tol
    photo = np.broadcast_to(inputs["identity_image"][:, None], outputs["frames"].shape)
    outside = outside_region(outputs["frames"].shape)
    np.testing.assert_array_equal(outputs["frames"][outside], photo[outside])
    assert np.abs(outputs["frames"] - photo).max() > 0.1  # inside, the face moves
