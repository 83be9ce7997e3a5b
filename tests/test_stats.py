"""`keras_autalk.stats`: the one implementation of numbers the package computes everywhere."""

import math

import numpy as np
import pytest

from keras_autalk.stats import pearson


@pytest.fixture()
def rng():
    return np.random.default_rng(0)


def test_pearson_matches_numpy_and_flags_constant_columns(rng):
    target = rng.normal(size=(200, 3))
    prediction = target * [1.0, -2.0, 0.0] + rng.normal(scale=0.5, size=(200, 3))
    prediction[:, 2] = 1.5  # a constant reading has no correlation
    result = pearson(prediction, target, axis=0)
    for column in range(2):
        expected = np.corrcoef(prediction[:, column], target[:, column])[0, 1]
        assert result[column] == pytest.approx(expected, abs=1e-12)
    assert result[0] > 0.8 and result[1] < -0.9
    assert np.isnan(result[2])


def test_pearson_of_two_series_matches_numpy_and_a_constant_is_nan(rng):
    first, second = rng.normal(size=50), rng.normal(size=50)
    assert pearson(first, second) == pytest.approx(np.corrcoef(first, second)[0, 1], abs=1e-12)
    assert pearson([1.0, 2.0, 3.0], [2.0, 4.0, 6.5]) > 0.99
    assert math.isnan(pearson([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]))
