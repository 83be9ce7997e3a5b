"""Keep native libraries' own stderr chatter out of the user's terminal.

TensorFlow's start-up (CUDA factory registration), tensorflow-io and
libmpg123 write straight to file descriptor 2 from C, bypassing Python.
Around those calls the descriptor is pointed at a scratch file; with
AUTALK_DEBUG=1 nothing is hidden.
"""

import contextlib
import os
import sys
import tempfile
import threading

_LOCK = threading.Lock()
_DEPTH = 0
_SAVED_FD = None


@contextlib.contextmanager
def native_stderr_silenced():
    """Silence writes to fd 2 made by native code inside the block.

    Nesting and concurrent use from several threads are safe: the real
    stderr is restored when the outermost block ends. Python-level writes
    to `sys.stderr` made inside the block are silenced too, so keep the
    block around the native call only.
    """
    global _DEPTH, _SAVED_FD
    if os.environ.get("AUTALK_DEBUG") == "1":
        yield
        return
    with _LOCK:
        if _DEPTH == 0:
            try:
                sys.stderr.flush()
            except (AttributeError, ValueError):
                pass
            sink = tempfile.TemporaryFile()
            _SAVED_FD = os.dup(2)
            os.dup2(sink.fileno(), 2)
            sink.close()
        _DEPTH += 1
    try:
        yield
    finally:
        with _LOCK:
            _DEPTH -= 1
            if _DEPTH == 0:
                os.dup2(_SAVED_FD, 2)
                os.close(_SAVED_FD)
                _SAVED_FD = None


def import_tensorflow():
    """Import TensorFlow without its start-up messages; return the module."""
    with native_stderr_silenced():
        import tensorflow

    return tensorflow
