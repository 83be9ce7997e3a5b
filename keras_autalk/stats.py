"""Numbers every part of the package computes the same way (NumPy only)."""

import numpy as np


def pearson(first, second, axis=None):
    """Pearson correlation of two series, or of matching columns; nan where one is constant.

    Args:
        first, second: arrays of the same shape.
        axis: None correlates the flattened arrays (a float); an axis
            correlates along it (an array, e.g. one value per AU column).

    Example:
    >>> pearson([1, 2, 3], [2, 4, 7])
    0.9933992677987828
    >>> pearson([[1, 5], [2, 5], [3, 5]], [[1, 0], [2, 1], [4, 2]], axis=0).round(3).tolist()
    [0.982, nan]
    """
    first = np.asarray(first, np.float64)
    second = np.asarray(second, np.float64)
    along = 0 if axis is None else axis
    if axis is None:
        first, second = first.ravel(), second.ravel()
    centred_first = first - first.mean(axis=along, keepdims=True)
    centred_second = second - second.mean(axis=along, keepdims=True)
    product = (centred_first * centred_second).sum(axis=along)
    denominator = np.sqrt((centred_first**2).sum(axis=along) * (centred_second**2).sum(axis=along))
    with np.errstate(invalid="ignore", divide="ignore"):
        values = np.where(
            denominator > 0, product / np.where(denominator > 0, denominator, 1.0), np.nan
        )
    return float(values) if axis is None else values
