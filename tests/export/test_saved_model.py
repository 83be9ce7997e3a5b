"""SavedModel export of the generator, the REST body, and `autalk export`.

A tiny untrained `AUTalker` (32x32) whose zero-initialised content head gets
random weights first, so its frames move away from the identity photo (by
0.3-0.4 here) and a wrong export could not pass for a right one.

The SavedModel is checked loaded both ways: `tf.saved_model.load` (TF2) and
a TF1 session with its restore op, which is how TF Serving and
`saved_model_cli run` load it; the REST body round trip goes through the
latter.

Tolerances, from runs with three weight seeds at T = 8 (measured max, then
the bound the tests use):
- SavedModel vs Keras: < 3e-6, bound 1e-5 (frames, AU intensities, mask).
- "generate_from_waveform" vs Keras on `keras_autalk.media.audio` features of
  the same waveform: < 2e-6, bound 1e-5.
- TFLite: see test_tflite.py.
"""

import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from keras_autalk import cli
from keras_autalk.errors import AutalkError
from keras_autalk.export import saved_model as export
from keras_autalk.features import log_mel
from keras_autalk.media import audio
from tests.conftest import files_in
from tests.export.conftest import IMAGE, assert_close, clip_inputs, keras_outputs
from tests.export.test_tflite import TOLERANCES
from tests.models.distributed_helper import tiny_config
from tests.models.test_generator import with_random_content_head


@pytest.fixture(scope="module")
def served(saved_model_dir):
    import tensorflow as tf

    return tf.saved_model.load(str(saved_model_dir))


# --------------------------------------------------------------- SavedModel
@pytest.mark.parametrize("frames", [7, 3])
def test_saved_model_signatures_equal_the_keras_model(talker, served, frames):
    inputs = clip_inputs(frames=frames)
    expected = keras_outputs(talker, inputs)
    # The check can fail: the frames are not just the identity photo.
    moved = np.abs(expected["frames"] - inputs["identity_image"][:, None]).max()
    assert moved > 0.1
    for name in ("generate", "serving_default"):
        outputs = served.signatures[name](**inputs)
        assert_close({key: value.numpy() for key, value in outputs.items()}, expected, 1e-5)
    au = served.signatures["audio_to_au"](audio_features=inputs["audio_features"])
    # audio_to_au has no articulation: it equals the clip at articulation 1.
    expected_au = np.asarray(talker.audio2au(inputs["audio_features"]))
    np.testing.assert_allclose(au["au_intensity"].numpy(), expected_au, atol=1e-5, rtol=0)
    np.testing.assert_allclose(
        expected["au_intensity"][1], np.clip(expected_au[1] * 0.5, 0, 5), atol=1e-6
    )


def test_flow_decoder_saved_model_equals_the_keras_model(flow_talker, tmp_path):
    import tensorflow as tf

    served = tf.saved_model.load(str(export.export_saved_model(flow_talker, tmp_path / "autalk")))
    inputs = clip_inputs(frames=5)
    expected = keras_outputs(flow_talker, inputs)
    moved = np.abs(expected["frames"] - inputs["identity_image"][:, None]).max()
    assert moved > 0.1
    outputs = served.signatures["generate"](**inputs)
    # The signature serves frames, AUs and mask; the flow stays inside (it is
    # what the frames were warped by). Measured 2e-6 (frames).
    assert "flow" in expected and "flow" not in outputs
    expected.pop("flow")
    assert_close({key: value.numpy() for key, value in outputs.items()}, expected, 1e-5)


def test_saved_model_holds_the_generator_only(talker, served, saved_model_dir):
    saved = {variable.name for variable in served.generator_weights}
    generator = {
        weight.value.name
        for name in export.GENERATOR_NETWORKS
        for weight in getattr(talker, name).weights
    }
    assert saved == generator and len(served.generator_weights) == len(generator)
    assert not any("discriminator" in name for name in saved)
    metadata = json.loads((saved_model_dir / export.METADATA_FILE).read_text())
    assert metadata["model_config"] == talker.model_config.to_dict()
    assert metadata["signatures"]["generate"]["inputs"]["identity_image"] == [None, IMAGE, IMAGE, 3]


def session_run(saved_model_dir, signature_name, feeds):
    """Load and run a signature as TF Serving does: a TF1 session, restore op, feeds."""
    import tensorflow as tf

    with tf.Graph().as_default() as graph, tf.compat.v1.Session(graph=graph) as session:
        meta_graph = tf.compat.v1.saved_model.loader.load(session, ["serve"], str(saved_model_dir))
        signature = meta_graph.signature_def[signature_name]
        feed = {signature.inputs[name].name: value for name, value in feeds.items()}
        fetch = {name: info.name for name, info in signature.outputs.items()}
        return session.run(fetch, feed)


def test_saved_model_runs_in_a_tf1_session_like_tf_serving(talker, saved_model_dir):
    # Tracking Keras 3 variables instead of the tf.Variables they wrap gives
    # a SavedModel that tf.saved_model.load runs but a session load (TF
    # Serving, saved_model_cli run) fails on: "Could not find variable".
    inputs = clip_inputs(frames=4)
    expected = keras_outputs(talker, inputs)
    assert_close(session_run(saved_model_dir, "serving_default", inputs), expected, 1e-5)
    au = session_run(saved_model_dir, "audio_to_au", {"audio_features": inputs["audio_features"]})[
        "au_intensity"
    ]
    np.testing.assert_allclose(
        au, np.asarray(talker.audio2au(inputs["audio_features"])), atol=1e-5, rtol=0
    )


@pytest.mark.parametrize("num_samples", [16000, 12345])
def test_waveform_signature_equals_keras_on_features_of_the_same_waveform(
    talker, served, num_samples
):
    rng = np.random.default_rng(num_samples)
    waveform = (0.1 * rng.standard_normal((2, num_samples))).astype("float32")
    identity_image = rng.uniform(size=(2, IMAGE, IMAGE, 3)).astype("float32")
    outputs = served.signatures["generate_from_waveform"](
        identity_image=identity_image, waveform=waveform
    )
    features = np.stack([log_mel.audio_features(row) for row in waveform])
    assert features.shape[1] == audio.num_video_frames(num_samples)  # 25 and 20 frames
    expected = keras_outputs(talker, {"identity_image": identity_image, "audio_features": features})
    del expected["blend_mask"]
    assert_close({key: value.numpy() for key, value in outputs.items()}, expected, 1e-5)


def test_a_normalising_model_normalises_inside_its_signatures(tmp_path):
    import dataclasses

    import keras
    import tensorflow as tf

    from keras_autalk.models import AUTalker

    keras.utils.set_random_seed(1)
    model = AUTalker(dataclasses.replace(tiny_config(), audio_normalization="utterance"))
    model.build({"identity_image": (None, IMAGE, IMAGE, 3), "audio_features": (None, None, 20, 80)})
    with_random_content_head(model.decoder)
    served = tf.saved_model.load(str(export.export_saved_model(model, tmp_path / "autalk")))
    rng = np.random.default_rng(5)
    waveform = (0.1 * rng.standard_normal((1, 16000))).astype("float32")
    identity_image = rng.uniform(size=(1, IMAGE, IMAGE, 3)).astype("float32")
    features = log_mel.audio_features(waveform[0])[None]
    expected = keras_outputs(
        model,
        {
            "identity_image": identity_image,
            "audio_features": log_mel.audio_features(waveform[0], normalization="utterance")[None],
        },
    )
    for signature, inputs in (
        (
            "generate",
            {
                "identity_image": identity_image,
                "audio_features": features,
                "articulation": np.ones([1], "float32"),
            },
        ),
        ("generate_from_waveform", {"identity_image": identity_image, "waveform": waveform}),
        # 20 dB louder: the same features after the normalisation.
        ("generate_from_waveform", {"identity_image": identity_image, "waveform": 10 * waveform}),
    ):
        outputs = served.signatures[signature](**inputs)
        np.testing.assert_allclose(outputs["frames"].numpy(), expected["frames"], atol=1e-4)
        np.testing.assert_allclose(
            outputs["au_intensity"].numpy(), expected["au_intensity"], atol=1e-4
        )


def test_saved_model_cli_lists_the_signatures_and_their_inputs(saved_model_dir):
    tool = pathlib.Path(sys.executable).parent / "saved_model_cli"
    shown = subprocess.run(
        [str(tool), "show", "--dir", str(saved_model_dir), "--all"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    blocks = {block.split("']", 1)[0]: block for block in shown.split("signature_def['")[1:]}
    expected_inputs = {
        "generate": ["articulation", "audio_features", "identity_image"],
        "serving_default": ["articulation", "audio_features", "identity_image"],
        "generate_from_waveform": ["identity_image", "waveform"],
        "audio_to_au": ["audio_features"],
    }
    for name, inputs in expected_inputs.items():
        listed = [
            line.split("'")[1]
            for line in blocks[name].splitlines()
            if line.strip().startswith("inputs['")
        ]
        assert listed == inputs, name
    assert "outputs['blend_mask']" in blocks["generate"]
    assert "shape: (-1, -1, 20, 80)" in blocks["audio_to_au"]
    assert "shape: (-1, -1)" in blocks["generate_from_waveform"]


def tf_serving_inputs(body):
    """What TF Serving does with a row-format body: stack each input over the instances."""
    body = json.loads(json.dumps(body))
    names = body["instances"][0].keys()
    return {
        name: np.asarray([instance[name] for instance in body["instances"]], "float32")
        for name in names
    }


def test_rest_body_round_trips_to_the_keras_outputs(talker, saved_model_dir):
    # Body -> JSON -> TF Serving's row-format batching -> the signature, run
    # in a TF1 session as TF Serving runs it.
    inputs = clip_inputs(frames=5)
    expected = keras_outputs(talker, inputs)
    body = export.serving_request(
        "generate", inputs["identity_image"], inputs["audio_features"], inputs["articulation"]
    )
    assert body["signature_name"] == "generate"
    assert len(body["instances"]) == 2
    assert sorted(body["instances"][0]) == ["articulation", "audio_features", "identity_image"]
    outputs = session_run(saved_model_dir, body["signature_name"], tf_serving_inputs(body))
    assert_close(outputs, expected, 1e-5)

    body = export.serving_request("audio_to_au", audio=inputs["audio_features"][0])
    outputs = session_run(saved_model_dir, "audio_to_au", tf_serving_inputs(body))
    np.testing.assert_allclose(
        outputs["au_intensity"][0],
        np.asarray(talker.audio2au(inputs["audio_features"]))[0],
        atol=1e-5,
        rtol=0,
    )

    waveform = (0.1 * np.random.default_rng(5).standard_normal(8000)).astype("float32")
    body = export.serving_request("generate_from_waveform", inputs["identity_image"][0], waveform)
    outputs = session_run(saved_model_dir, "generate_from_waveform", tf_serving_inputs(body))
    expected = keras_outputs(
        talker,
        {
            "identity_image": inputs["identity_image"][:1],
            "audio_features": log_mel.audio_features(waveform)[None],
        },
    )
    np.testing.assert_allclose(outputs["frames"], expected["frames"], atol=1e-5, rtol=0)
    assert outputs["frames"].shape[1] == 13  # 0.5 s at 25 fps, rounded up


def test_rest_body_defaults_articulation_to_one():
    body = export.serving_request("generate", np.zeros((IMAGE, IMAGE, 3)), np.zeros((2, 20, 80)))
    assert [instance["articulation"] for instance in body["instances"]] == [1.0]


@pytest.mark.parametrize(
    "call, message",
    [
        (
            lambda: export.serving_request("predict", np.zeros((4, 4, 3)), np.zeros((2, 20, 80))),
            "Unknown signature",
        ),
        (
            lambda: export.serving_request("generate", None, np.zeros((2, 20, 80))),
            "needs an identity_image",
        ),
        (
            lambda: export.serving_request(
                "generate", np.zeros((2, 4, 4, 3)), np.zeros((3, 2, 20, 80))
            ),
            "batch size",
        ),
        (
            lambda: export.serving_request(
                "audio_to_au", audio=np.zeros((2, 20, 80)), articulation=0.5
            ),
            "takes no articulation",
        ),
        (
            lambda: export.serving_request(
                "generate_from_waveform", np.zeros((4, 4, 3)), np.zeros((1, 2, 3))
            ),
            "waveform must have",
        ),
    ],
)
def test_rest_body_refuses_bad_inputs(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_export_refuses_a_non_empty_folder_and_a_missing_parent(talker, tmp_path):
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "keep.txt").write_text("mine")
    with pytest.raises(AutalkError, match="already exists and is not empty"):
        export.export_saved_model(talker, taken)
    with pytest.raises(AutalkError, match="does not exist"):
        export.export_saved_model(talker, tmp_path / "no" / "such")
    assert files_in(tmp_path) == ["taken"]
    assert files_in(taken) == ["keep.txt"]


def test_atomic_directory_leaves_nothing_behind_on_failure(tmp_path):
    with pytest.raises(RuntimeError):
        with export.atomic_directory(tmp_path / "out") as partial:
            (partial / "half.bin").write_bytes(b"x")
            raise RuntimeError("interrupted")
    assert files_in(tmp_path) == []
    (tmp_path / "empty").mkdir()
    with export.atomic_directory(tmp_path / "empty") as partial:
        (partial / "done.txt").write_text("ok")
    assert files_in(tmp_path) == ["empty"]
    assert files_in(tmp_path / "empty") == ["done.txt"]


# ---------------------------------------------------------------------- CLI
@pytest.fixture(scope="module")
def pretrained_dir(talker, tmp_path_factory):
    from keras_autalk.presets.pretrained import save_pretrained

    return save_pretrained(
        talker, tmp_path_factory.mktemp("pretrained") / "tiny", weights_dtype="float32"
    )


def run(capsys, *argv):
    status = cli.main([str(arg) for arg in argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_cli_exports_a_saved_model(capsys, talker, pretrained_dir, tmp_path):
    import tensorflow as tf

    status, out, err = run(
        capsys,
        "export",
        "--format",
        "saved_model",
        "--model",
        pretrained_dir,
        "-o",
        tmp_path / "autalk",
    )
    assert status == 0, err
    assert "generate_from_waveform" in out
    served = tf.saved_model.load(str(tmp_path / "autalk"))
    inputs = clip_inputs(frames=4)
    outputs = served.signatures["generate"](**inputs)
    np.testing.assert_allclose(
        outputs["frames"].numpy(), keras_outputs(talker, inputs)["frames"], atol=1e-5, rtol=0
    )


def test_cli_exports_tflite_with_a_parity_report(capsys, pretrained_dir, tmp_path):
    status, out, err = run(
        capsys,
        "export",
        "--format",
        "tflite",
        "--quantize",
        "fp16",
        "--window-frames",
        "4",
        "--model",
        pretrained_dir,
        "-o",
        tmp_path / "mobile",
    )
    assert status == 0, err
    assert files_in(tmp_path / "mobile") == [
        "audio_to_au.tflite",
        "generator.tflite",
        "parity.json",
    ]
    report = json.loads((tmp_path / "mobile" / "parity.json").read_text())
    assert report["quantize"] == "fp16" and report["window_frames"] == 4
    assert report["files"]["generator.tflite"]["frames_psnr_db"] > TOLERANCES["fp16"][1]
    assert "PSNR" in out


def other_version_model(pretrained_dir, tmp_path):
    folder = tmp_path / "old_model"
    folder.mkdir()
    for path in pretrained_dir.iterdir():
        (folder / path.name).write_bytes(path.read_bytes())
    record = json.loads((folder / "model.json").read_text())
    record.update(format_version=99, package_version="9.0.0")
    (folder / "model.json").write_text(json.dumps(record))
    return folder


@pytest.mark.parametrize(
    "case, message",
    [
        ("unknown_format", "--format must be saved_model, tflite or litert"),
        ("quantize_with_saved_model", "apply to --format tflite only"),
        ("unknown_quantize", "--quantize must be none, fp16 or int8"),
        ("non_empty_output", "already exists and is not empty"),
        ("missing_model", "does not exist"),
        ("other_version", "format version"),
    ],
)
def test_cli_refuses_bad_input_in_one_sentence(capsys, pretrained_dir, tmp_path, case, message):
    work = tmp_path / "work"
    work.mkdir()
    out = work / "out"
    model = pretrained_dir
    argv = ["export", "--format", "tflite"]
    if case == "unknown_format":
        argv = ["export", "--format", "onnx"]
    elif case == "quantize_with_saved_model":
        argv = ["export", "--format", "saved_model", "--quantize", "int8"]
    elif case == "unknown_quantize":
        argv += ["--quantize", "int4"]
    elif case == "non_empty_output":
        out.mkdir()
        (out / "keep.txt").write_text("mine")
    elif case == "missing_model":
        model = tmp_path / "no_model"
    elif case == "other_version":
        model = other_version_model(pretrained_dir, tmp_path)
    before = files_in(work)
    status, _, err = run(capsys, *argv, "--model", model, "-o", out)
    assert status == 1
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("autalk: error: "), err
    assert message in lines[0]
    assert files_in(work) == before
