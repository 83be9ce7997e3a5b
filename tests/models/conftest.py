"""Fixtures shared by the model tests."""

import pytest


@pytest.fixture()
def decoder_inputs(rng):
    """`[fused, skips, identity_image]` for a 32x32 decoder with filters (16, 8), 4 frames."""
    fused = rng.normal(size=(2, 4, 24)).astype("float32")
    skips = [
        rng.normal(size=(2, 16, 16, 8)).astype("float32"),
        rng.normal(size=(2, 8, 8, 16)).astype("float32"),
    ]
    identity_image = rng.random((2, 32, 32, 3)).astype("float32")
    return [fused, skips, identity_image]
