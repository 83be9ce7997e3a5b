"""`autalk evaluate`: talkers and baselines scored on a prepared split."""

import json

import keras
import numpy as np
import pytest
from PIL import Image

from keras_autalk.config import AutalkConfig, model_config
from keras_autalk.evaluation import evaluate as evaluation
from keras_autalk.models import AUClassifier
from keras_autalk.models.talker import AUTalker
from keras_autalk.training.au_classifier import load_au_classifier
from tests.test_cli import assert_one_sentence_error, run


def tiny_talker():
    keras.utils.set_random_seed(3)
    config = model_config(
        "small",
        encoder_filters=(8, 8, 16, 16),
        decoder_filters=(16, 16, 8, 8),
        discriminator_filters=(8, 16),
        au_classifier_filters=(8, 16),
        fusion_channels=32,
        fusion_dilations=(1, 2),
        dropout=0.0,
    )
    model = AUTalker(config)
    model(
        {
            "identity_image": np.zeros((1, 128, 128, 3), "float32"),
            "audio_features": np.zeros((1, 4, 20, 80), "float32"),
        }
    )
    return model


@pytest.fixture(scope="module")
def talker_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("talker") / "talker.keras"
    tiny_talker().save(path)
    return path


@pytest.fixture(scope="module")
def classifier_file(tmp_path_factory):
    keras.utils.set_random_seed(4)
    classifier = AUClassifier(AutalkConfig().action_units, (8, 16))
    classifier(np.zeros((1, 128, 128, 3), "float32"))
    path = tmp_path_factory.mktemp("au") / "au_classifier.keras"
    classifier.save(path)
    return path


@pytest.fixture(scope="module")
def report(prepared, talker_file, classifier_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("evaluation")
    classifier = load_au_classifier(classifier_file)
    result = evaluation.evaluate(
        {"tiny": evaluation.load_talker(talker_file)},
        prepared,
        out,
        au_classifier=classifier,
        settings=evaluation.EvaluationSettings(max_utterances=2),
        progress=False,
        log=lambda *_: None,
    )
    return result, out


def test_identity_frame_is_the_most_closed_mouth_with_a_face():
    landmarks = np.zeros((4, 68, 2))
    landmarks[:, 66, 1] = [0.1, 3.0, 1.0, 2.0]
    assert evaluation.identity_frame_index(landmarks, np.array([0, 1, 1, 1.0])) == 2


def test_model_specs_are_named_after_their_run_folder_or_given_names():
    assert evaluation.parse_model_specs(
        ["runs/full/talker.keras", "conv=x/talker.keras", "demo"]
    ) == {"full": "runs/full/talker.keras", "conv": "x/talker.keras", "demo": "demo"}
    with pytest.raises(evaluation.AutalkError, match="Two rows"):
        evaluation.parse_model_specs(["a/talker.keras", "a=b.keras"])
    with pytest.raises(evaluation.AutalkError, match="Two rows"):
        evaluation.parse_model_specs(["static=b.keras"])


def test_markdown_table_marks_exact_ground_truth_and_missing_values():
    table = evaluation.markdown_table(
        {
            "split": "test",
            "utterances": 2,
            "frames": 150,
            "systems": {
                "full": {"mean": {"psnr": 31.234, "lse_c": 2.5}},
                "ground truth": {"mean": {"psnr": 100.0}},
            },
        }
    )
    lines = table.splitlines()
    assert lines[2] == "| system | PSNR (dB) | LSE-C |"
    assert lines[4] == "| full | 31.23 | 2.500 |"
    assert lines[5] == "| ground truth | (exact) | — |"


def test_evaluate_writes_json_table_and_plots_for_every_system(report):
    result, out = report
    assert result["utterances"] == 2
    assert list(result["systems"]) == ["tiny", "static", "ground truth"]
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["utterances"] == 2 and saved["frames"] == result["frames"] > 0
    for name, entry in saved["systems"].items():
        assert len(entry["utterances"]) == 2
        for key in ("psnr", "ssim", "mouth_psnr", "cpbd", "identity_distance", "au_pearson"):
            assert key in entry["mean"], (name, key)
    table = (out / "metrics.md").read_text()
    for name in ("tiny", "static", "ground truth"):
        assert f"| {name} |" in table
    for plot in ("au_curves.png", "frame_strip.png"):
        with Image.open(out / plot) as image:
            assert image.format == "PNG" and image.size[0] > 100


def test_baselines_score_what_they_are(report):
    result, _ = report
    static = result["systems"]["static"]["mean"]
    truth = result["systems"]["ground truth"]["mean"]
    # The static row repeats the identity frame: its embedding distance is 0.
    assert static["identity_distance"] < 1e-6
    # Ground truth against itself: exact pixels and landmarks.
    assert truth["psnr"] == 100.0 and truth["ssim"] == pytest.approx(1.0)
    assert truth["lmd_mouth"] == 0.0
    # The real mouth moves away from the closed identity frame; the static one does not.
    assert static["lmd_mouth"] > 0.5
    assert static["psnr"] < truth["psnr"]


def test_evaluate_cli_writes_the_table(prepared, talker_file, classifier_file, tmp_path, capsys):
    out = tmp_path / "eval"
    status, stdout, stderr = run(
        capsys,
        "evaluate",
        "--prepared",
        str(prepared),
        "--model",
        f"tiny={talker_file}",
        "--au-classifier",
        str(classifier_file),
        "--max-utterances",
        "1",
        "--no-baselines",
        "-o",
        str(out),
    )
    assert status == 0, stderr
    assert "| tiny |" in stdout
    assert json.loads((out / "metrics.json").read_text())["utterances"] == 1


@pytest.mark.parametrize("case", ["no_prepared", "no_model", "not_a_talker", "no_parent"])
def test_evaluate_cli_bad_input_is_one_sentence(
    case, prepared, talker_file, classifier_file, tmp_path, capsys
):
    args = {"--prepared": str(prepared), "--model": str(talker_file), "-o": str(tmp_path / "eval")}
    if case == "no_prepared":
        args["--prepared"] = str(tmp_path / "missing")
    elif case == "no_model":
        args["--model"] = str(tmp_path / "missing.keras")
    elif case == "not_a_talker":
        args["--model"] = str(classifier_file)
    else:
        args["-o"] = str(tmp_path / "missing" / "eval")
    status, _, stderr = run(capsys, "evaluate", *[item for pair in args.items() for item in pair])
    assert_one_sentence_error(status, stderr)
    assert not (tmp_path / "eval" / "metrics.json").exists()


def test_every_kth_utterance_spans_the_split(prepared):
    every = [u["utterance_id"] for u in evaluation.iter_utterances(prepared, every=2)]
    everything = [u["utterance_id"] for u in evaluation.iter_utterances(prepared)]
    assert len(everything) == 5
    assert every == everything[::2]
    first = next(evaluation.iter_utterances(prepared, max_utterances=1))
    frames = first["frames"]
    assert frames.dtype == np.float32 and frames.shape[1:] == (128, 128, 3)
    assert 0.0 <= frames.min() and frames.max() <= 1.0
    assert first["audio_features"].shape == (len(frames), 20, 80)


def test_run_talker_normalises_the_features_of_a_normalising_model():
    from keras_autalk.features import log_mel
    from tests.pretrained_helpers import perturbed_talker

    talker = perturbed_talker(seed=3, audio_normalization="utterance")
    rng = np.random.default_rng(0)
    image = rng.uniform(size=(128, 128, 3)).astype(np.float32)
    features = (rng.normal(size=(12, 20, 80)) - 4).astype(np.float32)
    frames, au_intensity = evaluation.run_talker(talker, image, features)
    expected = talker(
        {
            "identity_image": image[None],
            "audio_features": log_mel.normalize_features(features)[None],
        },
        training=False,
    )
    np.testing.assert_allclose(au_intensity, np.asarray(expected["au_intensity"])[0], atol=1e-5)
    np.testing.assert_allclose(frames, np.asarray(expected["frames"])[0], atol=1e-5)
    # A constant shift of every log-mel value (a gain) is normalised away.
    _, shifted = evaluation.run_talker(talker, image, features + 2.0)
    np.testing.assert_allclose(shifted, au_intensity, atol=1e-4)
