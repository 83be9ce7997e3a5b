"""`AUTalker` under tf.distribute: MirroredStrategy on 2 logical CPU devices and
MultiWorkerMirroredStrategy with 2 worker processes on localhost.

Both need TensorFlow configured before it starts, so the training runs in
subprocesses (`distributed_helper.py`); each writes what it measured to JSON.
"""

import json
import os
import pathlib
import socket
import subprocess
import sys

import numpy as np
import pytest

HELPER = pathlib.Path(__file__).with_name("distributed_helper.py")
REPO = HELPER.parents[2]
# float32 sums of the same numbers in another order differ by a few ulp.
WEIGHT_TOLERANCE = 1e-5
LOSS_RTOL = 1e-5


def run_helper(mode, out, env=None):
    return subprocess.Popen(
        [sys.executable, str(HELPER), mode, str(out)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish(process, timeout):
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
        pytest.fail(f"{process.args} timed out:\n{output[-3000:]}")
    assert process.returncode == 0, output[-3000:]


@pytest.fixture(scope="module")
def mirrored_run(tmp_path_factory):
    """One device and MirroredStrategy on 2 logical devices, same data and start."""
    out = tmp_path_factory.mktemp("mirrored") / "mirrored.json"
    finish(run_helper("mirrored", out), timeout=240)
    return json.loads(out.read_text())


def test_mirrored_step_equals_single_device_step(mirrored_run):
    result = mirrored_run
    assert result["replicas"] == 2
    # Two steps on the same global batches (uneven masks across replicas):
    # the same losses ...
    for name, value in result["single"].items():
        assert np.isfinite(value)
        np.testing.assert_allclose(result["mirrored"][name], value, rtol=LOSS_RTOL, err_msg=name)
    # ... and the same weights, far closer than one update moves them
    # (gradients summed over replicas without the 1/replicas scaling would
    # end about 0.05 apart here).
    assert result["largest_update"] > 0.01
    assert result["largest_difference"] < WEIGHT_TOLERANCE
    assert result["g_iterations"] == result["d_iterations"] == 2
    # The generator's optimiser holds one momentum per generator variable only.
    assert result["g_slots"] == result["generator_variables"] + 2


def free_port():
    with socket.socket() as sock:
        sock.bind(("localhost", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_multi_worker_training_on_two_local_processes(tmp_path, mirrored_run):
    workers = [f"localhost:{free_port()}" for _ in range(2)]
    processes = []
    for index in range(2):
        tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        processes.append(
            run_helper(
                "worker", tmp_path / f"worker{index}.json", env={"TF_CONFIG": json.dumps(tf_config)}
            )
        )
    for process in processes:
        finish(process, timeout=300)
    chief, other = (
        json.loads((tmp_path / f"worker{index}.json").read_text()) for index in range(2)
    )
    assert chief["replicas"] == 2
    assert chief["g_iterations"] == 2
    # Synchronous training: both workers hold the very same weights ...
    assert chief["weights"] == other["weights"]
    # ... which are those of one device trained on the same global batches
    # (per-variable sums compared).
    np.testing.assert_allclose(
        chief["weights"], mirrored_run["single_weights"], atol=1e-4, rtol=1e-5
    )
    for name, value in mirrored_run["single"].items():
        np.testing.assert_allclose(chief["logs"][name], value, rtol=LOSS_RTOL, err_msg=name)
