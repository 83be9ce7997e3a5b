"""pytest's root configuration: the names every docstring example may use.

`pytest` also collects the `>>>` examples of the package's modules
(`--doctest-modules` in pytest.ini); like a reader, they take NumPy as `np`
and, in modules built on Keras, `keras` and `keras.ops` as `ops`.
"""

import numpy as np
import pytest


@pytest.fixture(autouse=True)
def _doctest_names(request, doctest_namespace):
    doctest_namespace["np"] = np
    if "keras_autalk/models" in str(request.node.path) or "keras_autalk/layers" in str(
        request.node.path
    ):
        import keras
        from keras import ops

        doctest_namespace["keras"] = keras
        doctest_namespace["ops"] = ops
