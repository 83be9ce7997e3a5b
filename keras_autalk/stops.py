"""Stop signals, told to long loops: a stop that a native library swallowed is not lost.

The command line's signal handler (`cli.main`) records each stop signal here
and raises `Stopped` at once. A `KeyboardInterrupt` raised while Python runs
a finaliser or inside some C extensions is printed and dropped, or comes
back as another error; so the loops that do the long work (the frames of
`generate`, the frames written to the encoder) also call `check()`, which
raises `Stopped` again once a signal has been recorded.
"""

import signal

# The stop signals received by this process, in order.
RECEIVED = []


class Stopped(KeyboardInterrupt):
    """A stop signal arrived: a `KeyboardInterrupt`, so every `finally` runs on the way out."""

    def __init__(self, signum):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def request(signum):
    """Record a stop signal."""
    RECEIVED.append(int(signum))


def check():
    """Raise `Stopped` if a stop signal has been received."""
    if RECEIVED:
        raise Stopped(RECEIVED[0])
