"""`AUTalker`: inference, ablation switches, training steps, saving and restoring."""

import dataclasses

import keras
import numpy as np
import pytest

from keras_autalk.models import AUClassifier
from keras_autalk.models.talker import DEFAULT_LOSS_WEIGHTS, METRIC_NAMES, AUTalker
from keras_autalk.native import import_tensorflow
from tests.harness import run_distributed_step, run_model_saving_test, run_serialization_test
from tests.models.distributed_helper import FRAMES, IMAGE, synthetic_batches, tiny_config
from tests.models.test_generator import with_random_content_head

tf = import_tensorflow()
BATCH = 2


def batch(seed=3):
    """One (inputs, targets) batch of BATCH examples."""
    inputs, targets = synthetic_batches(steps=4, batch=2, seed=seed)
    return ({k: v[:BATCH] for k, v in inputs.items()}, {k: v[:BATCH] for k, v in targets.items()})


def make_model(config=None, classifier=True, compile=True, build=True, **compile_args):
    config = config or tiny_config()
    keras.utils.set_random_seed(5)
    au_classifier = (
        AUClassifier(config.action_units, config.au_classifier_filters) if classifier else None
    )
    model = AUTalker(config, au_classifier=au_classifier)
    if build:
        model(batch()[0])
        with_random_content_head(model.decoder)  # else frames == photo at start
    if compile:
        model.compile(
            keras.optimizers.Adam(2e-3, beta_1=0.5),
            keras.optimizers.Adam(2e-3, beta_1=0.5),
            **compile_args,
        )
    return model


def as_numpy(outputs):
    return {name: keras.ops.convert_to_numpy(value) for name, value in outputs.items()}


@pytest.fixture(scope="module")
def trained():
    """A model, its weights before training, and the history of 12 steps on one batch.

    The target frames are the identity image, darkened: learnable, unlike
    the random frames of `batch()`.
    """
    model = make_model()
    initial = {variable.path: variable.numpy() for variable in model.weights}
    inputs, targets = batch()
    targets = {
        **targets,
        "frames": 0.8 * np.repeat(inputs["identity_image"][:, None], FRAMES, axis=1),
    }
    data = tf.data.Dataset.from_tensors((inputs, targets))
    history = model.fit(data, epochs=12, verbose=0, shuffle=False)
    return model, initial, history.history


# ------------------------------------------------------------------ inference
def test_call_returns_frames_aus_and_blend_mask_in_range():
    model = make_model(compile=False)
    outputs = as_numpy(model(batch()[0]))
    assert outputs["frames"].shape == (BATCH, FRAMES, IMAGE, IMAGE, 3)
    assert outputs["au_intensity"].shape == (BATCH, FRAMES, 5)
    assert outputs["blend_mask"].shape == (BATCH, FRAMES, IMAGE, IMAGE, 1)
    assert 0 <= outputs["frames"].min() and outputs["frames"].max() <= 1
    assert 0 <= outputs["au_intensity"].min() and outputs["au_intensity"].max() <= 5
    assert 0 <= outputs["blend_mask"].min() and outputs["blend_mask"].max() <= 1


def test_teacher_forcing_drives_with_given_aus_where_labelled():
    model = make_model(compile=False)
    inputs, targets = batch()
    free = as_numpy(model(inputs))
    forced = as_numpy(model({**inputs, "au_intensity": targets["au_intensity"]}))
    # The given AUs drive the frames; the returned curves stay the prediction.
    assert np.abs(forced["frames"] - free["frames"]).max() > 1e-4
    np.testing.assert_allclose(forced["au_intensity"], free["au_intensity"], atol=1e-6)
    # Frames without an AU label fall back to the prediction.
    unlabelled = as_numpy(
        model(
            {
                **inputs,
                "au_intensity": targets["au_intensity"],
                "au_mask": np.zeros((BATCH, FRAMES), np.float32),
            }
        )
    )
    np.testing.assert_allclose(unlabelled["frames"], free["frames"], atol=1e-6)


def test_articulation_scales_the_driving_aus():
    model = make_model(compile=False)
    inputs, _ = batch()
    silent = as_numpy(model({**inputs, "articulation": np.zeros(BATCH, np.float32)}))
    np.testing.assert_array_equal(silent["au_intensity"], 0.0)
    driven_by_zeros = as_numpy(model({**inputs, "au_intensity": np.zeros((BATCH, FRAMES, 5))}))
    np.testing.assert_allclose(silent["frames"], driven_by_zeros["frames"], atol=1e-6)
    free = as_numpy(model(inputs))
    same = as_numpy(model({**inputs, "articulation": np.float32(1.0)}))
    np.testing.assert_allclose(same["frames"], free["frames"], atol=1e-6)
    strong = as_numpy(model({**inputs, "articulation": np.array(1.5, np.float32)}))
    np.testing.assert_allclose(
        strong["au_intensity"], np.clip(1.5 * free["au_intensity"], 0, 5), rtol=1e-5
    )


def test_drive_with_aus_only_ignores_the_audio_given_the_aus():
    model = make_model(dataclasses.replace(tiny_config(), drive="au"), compile=False)
    assert model.audio_encoder is None
    inputs, targets = batch()
    forced = {**inputs, "au_intensity": targets["au_intensity"]}
    other_audio = {**forced, "audio_features": inputs["audio_features"][::-1].copy()}
    np.testing.assert_allclose(
        as_numpy(model(forced))["frames"], as_numpy(model(other_audio))["frames"], atol=1e-6
    )


def test_drive_with_audio_only_ignores_the_aus():
    model = make_model(
        dataclasses.replace(tiny_config(), drive="audio", fusion="conv"), compile=False
    )
    assert model.au_encoder is None
    inputs, targets = batch()
    forced = as_numpy(model({**inputs, "au_intensity": targets["au_intensity"]}))
    np.testing.assert_allclose(forced["frames"], as_numpy(model(inputs))["frames"], atol=1e-6)


def test_au_classifier_for_other_action_units_is_refused():
    config = tiny_config()
    with pytest.raises(ValueError, match="action units"):
        AUTalker(config, au_classifier=AUClassifier((25, 26), config.au_classifier_filters))


# ------------------------------------------------------------------- compile
def test_compile_refuses_unknown_loss_names():
    model = make_model(compile=False, build=False)
    with pytest.raises(ValueError, match="Unknown loss weights"):
        model.compile("adam", "adam", loss_weights={"perceptual": 1.0})
    with pytest.raises(ValueError, match="adversarial_loss"):
        model.compile("adam", "adam", adversarial_loss="wasserstein")


def test_compile_keeps_defaults_for_unnamed_weights_and_builds_both_optimizers():
    model = make_model(loss_weights={"au_classifier": 0.0})
    assert model.gan_loss_weights == {**DEFAULT_LOSS_WEIGHTS, "au_classifier": 0.0}
    assert model.optimizer is model.g_optimizer
    # Built for their own networks only (Adam: two slots per variable).
    assert len(model.g_optimizer.variables) == 2 * len(model.generator_variables) + 2
    assert len(model.d_optimizer.variables) == 2 * len(model.discriminator_variables) + 2
    assert model.metrics_names == list(METRIC_NAMES)


def test_calling_a_compiled_model_builds_both_optimizers_for_their_networks():
    # What BackupAndRestore relies on: optimiser state exists before `fit`.
    model = make_model(build=False)
    assert not model.g_optimizer.built
    model(batch()[0])
    assert len(model.g_optimizer.variables) == 2 * len(model.generator_variables) + 2
    assert len(model.d_optimizer.variables) == 2 * len(model.discriminator_variables) + 2


# ------------------------------------------------------------------ training
def test_train_step_updates_generator_and_discriminator_not_the_au_classifier(trained):
    model, initial, history = trained
    assert sorted(history) == sorted(METRIC_NAMES)
    assert int(model.g_optimizer.iterations.numpy()) == 12
    assert int(model.d_optimizer.iterations.numpy()) == 12

    def changed(variables):
        return [not np.array_equal(v.numpy(), initial[v.path]) for v in variables]

    assert all(changed(model.discriminator.trainable_variables))
    assert np.mean(changed(model.generator_variables)) > 0.9
    assert not any(changed(model.au_classifier.weights))
    for name in METRIC_NAMES:
        assert np.all(np.isfinite(history[name])), name


def test_training_on_one_batch_lowers_reconstruction_and_audio2au_losses(trained):
    _, _, history = trained
    for name in ("l1_loss", "mouth_l1_loss", "audio2au_loss"):
        assert history[name][-1] < 0.6 * history[name][0], (name, history[name])
    # The generator loss is the weighted sum of its terms.
    weights = DEFAULT_LOSS_WEIGHTS
    total = (
        weights["l1"] * history["l1_loss"][0]
        + weights["mouth_l1"] * history["mouth_l1_loss"][0]
        + weights["adversarial"] * history["adversarial_loss"][0]
        + weights["au_classifier"] * history["au_loss"][0]
        + weights["audio2au"] * history["audio2au_loss"][0]
    )
    np.testing.assert_allclose(history["g_loss"][0], total, rtol=1e-5)


def test_evaluate_changes_nothing_and_ignores_frames_without_a_face(trained):
    model, _, _ = trained
    inputs, targets = batch()
    before = [v.numpy() for v in model.weights]
    first = model.evaluate(inputs, targets, batch_size=BATCH, verbose=0, return_dict=True)
    assert all(np.array_equal(a, v.numpy()) for a, v in zip(before, model.weights))
    assert sorted(first) == sorted(METRIC_NAMES)
    # Frame 0 of example 0 has no face: its target pixels count nowhere.
    assert targets["face_mask"][0, 0] == 0
    spoiled = {**targets, "frames": targets["frames"].copy()}
    spoiled["frames"][0, 0] = 10.0
    second = model.evaluate(inputs, spoiled, batch_size=BATCH, verbose=0, return_dict=True)
    for name in ("l1_loss", "mouth_l1_loss", "d_loss"):
        assert second[name] == pytest.approx(first[name], rel=1e-6), name
    # A frame with a face does count (and trackers restart at each evaluate).
    spoiled["frames"][0, 5] = 10.0
    third = model.evaluate(inputs, spoiled, batch_size=BATCH, verbose=0, return_dict=True)
    assert third["l1_loss"] > first["l1_loss"] + 0.1


def test_without_au_classifier_the_au_loss_is_off():
    model = make_model(classifier=False)
    inputs, targets = batch()
    logs = model.evaluate(inputs, targets, batch_size=BATCH, verbose=0, return_dict=True)
    assert logs["au_loss"] == 0.0
    assert logs["l1_loss"] > 0.0


def test_unbuilt_model_under_a_strategy_builds_itself_and_its_optimizers():
    def unbuilt_model():
        model = make_model(build=False, steps_per_execution=1)
        assert not model.built
        return model

    model, _ = run_distributed_step(
        tf.distribute.MirroredStrategy(["/cpu:0"]),
        unbuilt_model,
        tf.data.Dataset.from_tensors(batch()),
    )
    assert model.built
    assert len(model.g_optimizer.variables) == 2 * len(model.generator_variables) + 2
    assert int(model.d_optimizer.iterations.numpy()) == 1


# ------------------------------------------------------------ saving, restoring
def test_config_round_trip():
    model = make_model(compile=False, build=False)
    clone = run_serialization_test(model)
    assert clone.model_config == model.model_config
    assert clone.au_classifier.get_config()["filters"] == list(tiny_config().au_classifier_filters)


def test_keras_file_round_trip_gives_same_outputs_and_resumes_training(trained, tmp_path):
    model, _, _ = trained
    inputs, targets = batch()
    loaded = run_model_saving_test(model, inputs, tmp_path)
    assert loaded.gan_loss_weights == model.gan_loss_weights
    for original, restored in (
        (model.g_optimizer, loaded.g_optimizer),
        (model.d_optimizer, loaded.d_optimizer),
    ):
        assert len(original.variables) == len(restored.variables)
        for a, b in zip(original.variables, restored.variables):
            np.testing.assert_array_equal(a.numpy(), b.numpy())
    loaded.fit(inputs, targets, batch_size=BATCH, epochs=1, verbose=0)
    assert int(loaded.g_optimizer.iterations.numpy()) == 13


def test_checkpoint_restores_weights_and_both_optimizers(trained, tmp_path):
    model, _, _ = trained
    path = tf.train.Checkpoint(model=model).save(str(tmp_path / "ckpt"))
    restored = make_model()  # fresh optimisers (built, at step 0)
    assert int(restored.g_optimizer.iterations.numpy()) == 0
    for variable in restored.weights:  # and weights unlike any saved ones
        variable.assign(variable + 1.0)
    tf.train.Checkpoint(model=restored).restore(path).assert_consumed()
    for optimizer in ("g_optimizer", "d_optimizer"):
        original, loaded = getattr(model, optimizer), getattr(restored, optimizer)
        assert int(loaded.iterations.numpy()) == 12
        for a, b in zip(original.variables, loaded.variables):  # moments included
            np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)
    # Every weight, the frozen AU classifier's too.
    for a, b in zip(model.weights, restored.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)
