"""One harness for the layer and model tests.

Every layer and model test checks the same things the same way: output
shapes (called and computed), that padded frames change nothing, the config
and `.keras` round trips, and a training step under `tf.distribute`. Each
function asserts and returns what a test may check further.
"""

import json

import keras
import numpy as np


def as_arrays(outputs):
    """The output tensors of a call as a flat list of numpy arrays (dicts by key)."""
    return [keras.ops.convert_to_numpy(value) for value in keras.tree.flatten(outputs)]


def shapes_of(structure):
    """Shapes (of arrays, or shape tuples themselves) in `structure`, as a flat list of tuples."""
    if structure is None:
        return [None]
    if hasattr(structure, "shape"):
        return [tuple(structure.shape)]
    if isinstance(structure, dict):
        return [shape for key in sorted(structure) for shape in shapes_of(structure[key])]
    if all(dim is None or isinstance(dim, (int, np.integer)) for dim in structure):
        return [tuple(structure)]
    return [shape for item in structure for shape in shapes_of(item)]


def input_shapes(inputs):
    """`inputs` with every array replaced by its shape, for `compute_output_shape`."""
    if isinstance(inputs, dict):
        return {key: input_shapes(value) for key, value in inputs.items()}
    if isinstance(inputs, (list, tuple)):
        return type(inputs)(input_shapes(value) for value in inputs)
    return None if inputs is None else tuple(inputs.shape)


def assert_output_shape(layer, inputs, expected_shape, dtype="float32"):
    """Calls `layer`; its outputs and `compute_output_shape` both have `expected_shape`.

    `expected_shape` is one shape or the outputs' structure of shapes; every
    output is `dtype`. Returns the outputs.
    """
    outputs = layer(inputs)
    expected = shapes_of(expected_shape)
    assert shapes_of(outputs) == expected
    assert shapes_of(layer.compute_output_shape(input_shapes(inputs))) == expected
    for value in keras.tree.flatten(outputs):
        assert keras.backend.standardize_dtype(value.dtype) == dtype
    return outputs


def run_layer_test(layer_cls, init_kwargs, inputs, expected_output_shape):
    """`layer_cls(**init_kwargs)`: its output shape, and a config round trip.

    The config holds `init_kwargs` and its clone, given the same weights,
    gives the same outputs on `inputs`. Returns the layer.
    """
    layer = layer_cls(**init_kwargs)
    assert_output_shape(layer, inputs, expected_output_shape)
    run_serialization_test(layer, expected_arguments=init_kwargs, inputs=inputs)
    return layer


def run_serialization_test(instance, expected_arguments=None, inputs=None):
    """`from_config(get_config())` gives the same config, also through JSON.

    With `expected_arguments`, the config holds them (the constructor's
    arguments); with `inputs`, the clone given the same weights gives the
    very same outputs. Returns the clone.
    """
    config = instance.get_config()
    if expected_arguments is not None:
        assert {key: config[key] for key in expected_arguments} == expected_arguments
    clone = type(instance).from_config(config)
    assert clone.get_config() == config
    as_json = json.dumps(keras.saving.serialize_keras_object(instance))
    revived = keras.saving.deserialize_keras_object(json.loads(as_json))
    assert type(revived) is type(instance)
    assert revived.get_config() == config
    if inputs is not None:
        outputs = instance(inputs)
        clone(inputs)
        clone.set_weights(instance.get_weights())
        assert_same_outputs(clone(inputs), outputs)
    return clone


def run_model_saving_test(model, inputs, tmp_path, atol=0.0):
    """Saves `model` to a `.keras` file and loads it back.

    The loaded model has the same class, config and weights and, on
    `inputs`, the same outputs (exactly, or within `atol`). Returns it.
    """
    outputs = model(inputs)
    path = tmp_path / f"{model.name}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded) is type(model)
    assert build_shapes_as_lists(loaded.get_config()) == build_shapes_as_lists(model.get_config())
    assert len(loaded.weights) == len(model.weights)
    for saved, restored in zip(model.weights, loaded.weights):
        np.testing.assert_array_equal(restored.numpy(), saved.numpy(), err_msg=saved.path)
    assert_same_outputs(loaded(inputs), outputs, atol=atol)
    return loaded


def build_shapes_as_lists(config):
    """`config` with every `build_config` as JSON has it.

    Keras keeps the shapes a (sub)layer was built with as tuples; a loaded
    one has them from the file, as lists. Everything else must match exactly.
    """
    if isinstance(config, dict):
        return {
            key: json.loads(json.dumps(value))
            if key == "build_config"
            else build_shapes_as_lists(value)
            for key, value in config.items()
        }
    if isinstance(config, (list, tuple)):
        return type(config)(build_shapes_as_lists(value) for value in config)
    return config


def assert_same_outputs(got, expected, atol=0.0):
    """Two calls' outputs are equal, output by output (within `atol` if given)."""
    got, expected = as_arrays(got), as_arrays(expected)
    assert len(got) == len(expected)
    for index, (a, b) in enumerate(zip(got, expected)):
        if atol:
            np.testing.assert_allclose(a, b, atol=atol, err_msg=f"output {index}")
        else:
            np.testing.assert_array_equal(a, b, err_msg=f"output {index}")


def masked_sequence_model(channels, *layers):
    """A functional model of `layers` in a row over `(frames, channels)` and a frame mask."""
    frames_in = keras.Input((None, channels))
    mask_in = keras.Input((None,), dtype="bool")
    outputs = frames_in
    for layer in layers:
        outputs = layer(outputs, mask=mask_in)
    return keras.Model([frames_in, mask_in], outputs)


def assert_masked_frames_ignored(
    layer, inputs, mask, rng, only_real_frames=True, nan=True, atol=1e-6
):
    """Noise, then NaN, in the masked frames changes no output at a real frame.

    Every input whose first two axes are `mask.shape` (batch, frames) gets
    the noise; the others are kept. With `only_real_frames=False` no output
    at all may change. Returns the outputs on `inputs`.
    """
    mask = np.asarray(mask, bool)
    reference = as_arrays(layer(inputs, mask=mask))
    fills = [lambda shape: rng.normal(scale=100.0, size=shape)]
    if nan:
        fills.append(lambda shape: np.full(shape, np.nan))
    for fill in fills:
        changed = keras.tree.map_structure(lambda value: padded_with(value, mask, fill), inputs)
        for got, expected in zip(as_arrays(layer(changed, mask=mask)), reference):
            if only_real_frames:
                got, expected = got[mask], expected[mask]
            np.testing.assert_allclose(got, expected, atol=atol)
    return reference


def padded_with(value, mask, fill):
    """`value` with `fill(shape)` in its masked frames, if it has `mask`'s frames."""
    if value is None or np.shape(value)[:2] != mask.shape:
        return value
    changed = np.array(value, copy=True)
    changed[~mask] = fill(changed[~mask].shape)
    return changed


def assert_padding_acts_like_sequence_end(layer, inputs, length, atol=1e-5):
    """Frames past `length`, masked, leave the first `length` outputs those of the short window."""
    mask = np.zeros(inputs.shape[:2], bool)
    mask[:, :length] = True
    padded = keras.ops.convert_to_numpy(layer(inputs, mask=mask))[:, :length]
    np.testing.assert_allclose(padded, layer(inputs[:, :length]), atol=atol)


def run_distributed_step(strategy, make_model, data, epochs=1):
    """Makes a model inside `strategy.scope()` and fits it on the dataset `data`.

    Returns the model and the last value of each logged metric.
    """
    with strategy.scope():
        model = make_model()
    history = model.fit(data, epochs=epochs, verbose=0, shuffle=False)
    return model, {name: float(values[-1]) for name, values in history.history.items()}
