"""Stop signals recorded for long loops: `stops.check()` raises once one has arrived."""

import signal

import pytest

from keras_autalk import stops


def test_check_passes_until_a_stop_is_requested_then_raises_it(monkeypatch):
    monkeypatch.setattr(stops, "RECEIVED", [])
    stops.check()
    stops.request(signal.SIGTERM)
    stops.request(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt) as caught:
        stops.check()
    assert isinstance(caught.value, stops.Stopped)
    assert caught.value.signum == signal.SIGTERM and str(caught.value) == "SIGTERM"
