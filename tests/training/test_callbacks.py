"""keras_autalk.training.callbacks: the sample frame strips written to TensorBoard.

(`ResumableBackupAndRestore` and `make_callbacks` are exercised through
`fit` in test_fit.py.)
"""

import glob
import os

import numpy as np
import pytest

from keras_autalk.native import import_tensorflow
from keras_autalk.training.callbacks import SampleFramesCallback

tf = import_tensorflow()
import keras  # noqa: E402


def event_values(folder):
    """(tag, step, tensor proto) of every summary value under `folder`."""
    values = []
    for path in sorted(
        glob.glob(os.path.join(folder, "**", "events.out.tfevents.*"), recursive=True)
    ):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                values.append((value.tag, event.step, value.tensor))
    return values


# --- SampleFramesCallback -------------------------------------------------


def frames_model(frames, size):
    """A tiny renderer: {"noisy_frames"} -> {"frames"} (and a blend mask)."""
    noisy = keras.Input((frames, size, size, 3), name="noisy_frames")
    rendered = keras.layers.Conv3D(3, 1, activation="sigmoid", name="render")(noisy)
    mask = keras.layers.Conv3D(1, 1, activation="sigmoid", name="mask")(noisy)
    return keras.Model({"noisy_frames": noisy}, {"frames": rendered, "blend_mask": mask})


@pytest.mark.filterwarnings("ignore:Gradients do not exist")
def test_sample_frames_callback_writes_real_and_generated_strips(tmp_path, rng):
    examples, frames, size = 3, 4, 8
    real = rng.uniform(size=(examples, frames, size, size, 3)).astype("float32")
    inputs = {"noisy_frames": real + rng.normal(scale=0.1, size=real.shape).astype("float32")}
    keras.utils.set_random_seed(0)
    model = frames_model(frames, size)
    model.compile("adam", loss={"frames": "mse", "blend_mask": None})
    callback = SampleFramesCallback(inputs, {"frames": real}, tmp_path, max_examples=2)
    model.fit(inputs, {"frames": real}, epochs=2, batch_size=3, verbose=0, callbacks=[callback])

    images = [v for v in event_values(tmp_path / "samples") if v[0].startswith("samples/")]
    assert sorted((tag, step) for tag, step, _ in images) == [
        ("samples/example_0", 1),
        ("samples/example_0", 2),
        ("samples/example_1", 1),
        ("samples/example_1", 2),
    ]
    # (tf.summary.image quantises to 8 bits by truncation: within 1/255.)
    # The last strip of example 1: real frames on top, the model's frames
    # below, the blend mask last; frames side by side.
    tensor = [t for tag, step, t in images if tag == "samples/example_1" and step == 2][0]
    width, height, png = tf.make_ndarray(tensor)
    strip = tf.image.decode_png(png).numpy() / 255.0
    assert (int(height), int(width)) == (3 * size, frames * size) == strip.shape[:2]
    outputs = model(inputs, training=False)
    top, middle, bottom = strip[:size], strip[size : 2 * size], strip[2 * size :]
    for index in range(frames):
        columns = slice(index * size, (index + 1) * size)
        np.testing.assert_allclose(top[:, columns], real[1, index], atol=1.01 / 255)
        np.testing.assert_allclose(middle[:, columns], outputs["frames"][1, index], atol=1.01 / 255)
        np.testing.assert_allclose(
            bottom[:, columns, 0], outputs["blend_mask"][1, index, ..., 0], atol=1.01 / 255
        )
