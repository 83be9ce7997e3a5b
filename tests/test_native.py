"""Silencing native stderr chatter, and giving the real stderr back."""

import os
import subprocess
import sys

SCRIPT = r"""
import os, threading
from keras_autalk.native import native_stderr_silenced
os.write(2, b"before\n")
with native_stderr_silenced():
    os.write(2, b"hidden\n")
    with native_stderr_silenced():
        os.write(2, b"hidden too\n")
def worker():
    with native_stderr_silenced():
        os.write(2, b"hidden in a thread\n")
threads = [threading.Thread(target=worker) for _ in range(8)]
[t.start() for t in threads]; [t.join() for t in threads]
os.write(2, b"after\n")
"""


def test_native_writes_are_hidden_and_stderr_restored():
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        capture_output=True,
        text=True,
        env={**os.environ, "AUTALK_DEBUG": "0"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == "before\nafter\n"


def test_debug_shows_everything():
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        capture_output=True,
        text=True,
        env={**os.environ, "AUTALK_DEBUG": "1"},
    )
    assert "hidden\n" in result.stderr and "hidden in a thread" in result.stderr
