"""The bundled model's output is pinned: a change to what users get fails here.

The numbers come from `python tools/pin_bundled_output.py` on the bundled
model; re-pin them only on purpose (a retrained model, a deliberate change).
"""

import json
import pathlib
import sys

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[2]
PINNED = json.loads((pathlib.Path(__file__).parent / "bundled_output.json").read_text())


def test_the_bundled_model_gives_the_pinned_output():
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        from pin_bundled_output import bundled_output
    finally:
        sys.path.remove(str(ROOT / "tools"))
    output = bundled_output()
    # float16 weights, float32 arithmetic: equal to well under one grey level.
    np.testing.assert_allclose(output["frame_means"], PINNED["frame_means"], atol=2e-4)
    np.testing.assert_allclose(output["mouth_means"], PINNED["mouth_means"], atol=2e-4)
    np.testing.assert_allclose(output["au_intensity"], PINNED["au_intensity"], atol=2e-3)
    # The pinned output moves: a model that ignored the speech would not pass.
    assert np.ptp(PINNED["mouth_means"]) > 1e-3
