"""The AU classifier: reads action-unit intensities off a face crop."""

import keras
from keras import ops

from keras_autalk.models.blocks import downsampling_stage
from keras_autalk.models.encoders import _build_chain


@keras.saving.register_keras_serializable(package="keras_autalk")
class AUClassifier(keras.Model):
    """A CNN from an aligned face crop to AU intensities (0..5).

    One stage per entry of `filters` (stride-2 4x4 convolution and 3x3
    convolution, LeakyReLU(0.2) after each), then the last map is flattened
    (aligned crops put the mouth at a fixed place, so where a feature fires
    matters), a dense layer of `filters[-1]` units, dropout and one output
    per AU, squashed to 0..5 by 5*sigmoid. It is trained first (the recipe
    `au_classifier_demo`) and frozen (`trainable=False`) inside the GAN,
    where its reading of the generated frames is pulled toward the target
    AUs.

    Args:
        action_units: the AU numbers it predicts, in output order.
        filters: filters of each stride-2 stage.
        dropout: dropout rate before the output layer.
        **kwargs: `keras.Model` arguments.

    Example:
    >>> classifier = AUClassifier(action_units=(25, 26), filters=(8, 16))
    >>> tuple(classifier(np.zeros((3, 32, 32, 3), "float32")).shape)
    (3, 2)
    """

    def __init__(self, action_units, filters, dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        self.action_units = tuple(int(au) for au in action_units)
        self.filters = tuple(int(f) for f in filters)
        self.dropout = float(dropout)
        self.body = []
        for index, width in enumerate(self.filters):
            self.body += downsampling_stage(width, index)
        self.body += [
            keras.layers.Flatten(name="flatten"),
            keras.layers.Dense(self.filters[-1], activation="gelu", name="hidden"),
        ]
        self.dropout_layer = keras.layers.Dropout(self.dropout, name="dropout")
        self.head = keras.layers.Dense(len(self.action_units), name="head")

    def build(self, input_shape):
        self.head.build(_build_chain(self.body, tuple(input_shape)))
        self.built = True

    def call(self, face_crop, training=None):
        x = face_crop * 2.0 - 1.0
        for layer in self.body:
            x = layer(x)
        x = self.dropout_layer(x, training=training)
        return 5.0 * ops.sigmoid(self.head(x))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], len(self.action_units))

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "action_units": list(self.action_units),
                "filters": list(self.filters),
                "dropout": self.dropout,
            }
        )
        return config
