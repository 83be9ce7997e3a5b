"""Building blocks shared by the convolutional networks."""

import keras


def downsampling_stage(width, index, refine=True):
    """The layers of one stride-2 stage: conv 4x4/2 + LeakyReLU, then
    (with `refine`) conv 3x3 + LeakyReLU, named `down{index}`, `conv{index}`.

    Example:
    ```python
    layers = downsampling_stage(32, 0)  # [Conv2D, LeakyReLU, Conv2D, LeakyReLU]
    ```
    """
    layers = [
        keras.layers.Conv2D(width, 4, strides=2, padding="same", name=f"down{index}"),
        keras.layers.LeakyReLU(0.2, name=f"down{index}_act"),
    ]
    if refine:
        layers += [
            keras.layers.Conv2D(width, 3, padding="same", name=f"conv{index}"),
            keras.layers.LeakyReLU(0.2, name=f"conv{index}_act"),
        ]
    return layers
