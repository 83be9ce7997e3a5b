"""Shared helpers of the layer tests."""

import numpy as np
import tensorflow as tf


def frame_influence(layer, inputs, frame, **call_kwargs):
    """|d output[:, frame] / d input[:, s]| summed, for every input frame s."""
    inputs = tf.constant(inputs)
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        outputs = layer(inputs, **call_kwargs)
        target = tf.reduce_sum(outputs[:, frame] * tf.range(1.0, outputs.shape[-1] + 1.0))
    gradient = tape.gradient(target, inputs).numpy()
    return np.abs(gradient).sum(axis=(0, 2))
