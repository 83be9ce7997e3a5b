"""The `autalk` command line: it parses, and each sub-command's module runs.

One module per sub-command in `keras_autalk.commands` adds its options
(`add_parser`) and runs it (`run`). Every sub-command turns bad input into
one sentence on stderr and a non-zero exit status; a traceback is printed
only with `--debug` (or AUTALK_DEBUG=1), for bug reports.
"""

import argparse
import contextlib
import os
import signal
import sys

# TensorFlow's C++ start-up chatter is noise for a command-line user.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from keras_autalk import __version__, stops  # noqa: E402
from keras_autalk.commands import (  # noqa: E402
    align,
    demo,
    doctor,
    evaluate,
    export,
    features,
    generate,
    prepare,
    presets,
    train,
)
from keras_autalk.commands.common import EXIT_ERROR  # noqa: E402
from keras_autalk.errors import AutalkError  # noqa: E402
from keras_autalk.files import process_temp_dir  # noqa: E402

# In the order `autalk --help` lists them.
COMMANDS = (demo, generate, presets, prepare, train, evaluate, export, align, features, doctor)


def build_parser():
    """The argument parser of `autalk`."""
    parser = argparse.ArgumentParser(
        prog="autalk",
        description="Talking-head video from one face photo and speech (keras-autalk).",
    )
    parser.add_argument("--version", action="version", version=f"keras-autalk {__version__}")
    parser.add_argument(
        "--debug", action="store_true", help="show the traceback of unexpected errors"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for command in COMMANDS:
        command.add_parser(subparsers)
    return parser


# The signals that stop a run cleanly: the temporaries go, the output is untouched.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
DEFAULT_STOPPED_NOTE = "nothing was written"


def _stop(signum, frame):
    # Further stop signals would interrupt the clean-up itself; a stop that
    # this raise fails to deliver is raised again by `stops.check()`.
    for other in STOP_SIGNALS:
        signal.signal(other, signal.SIG_IGN)
    stops.request(signum)
    raise stops.Stopped(signum)


@contextlib.contextmanager
def _stop_signals_raise():
    """SIGINT, SIGTERM and SIGHUP raise `stops.Stopped` inside the block."""
    previous = {signum: signal.signal(signum, _stop) for signum in STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _stopped(args, signum):
    """Tell the user the run was stopped; return the exit status, 128 + the signal's number."""
    print(
        f"autalk: stopped by {signal.Signals(signum).name}; {_stopped_note(args)}.", file=sys.stderr
    )
    return 128 + int(signum)


def _stopped_note(args):
    """What a stopped run of this command leaves (the command module's `STOPPED_NOTE`)."""
    module = sys.modules.get(getattr(args.handler, "__module__", ""), None)
    return getattr(module, "STOPPED_NOTE", DEFAULT_STOPPED_NOTE)


def main(argv=None):
    """Run `autalk` with `argv` (default: the process arguments); return the exit status.

    Run as the process's own command line (`argv` None), it also makes stop
    signals (SIGINT, SIGTERM, SIGHUP) end the run cleanly with exit status
    128 + the signal's number, and keeps the process's temporary files in
    one folder that is removed at the end (`files.process_temp_dir`).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = args.debug or os.environ.get("AUTALK_DEBUG") == "1"
    with contextlib.ExitStack() as process:
        try:
            if argv is None:
                process.enter_context(_stop_signals_raise())
                process.enter_context(process_temp_dir())
            return args.handler(args)
        except KeyboardInterrupt as error:
            return _stopped(args, getattr(error, "signum", signal.SIGINT))
        except AutalkError as error:
            if stops.RECEIVED:
                return _stopped(args, stops.RECEIVED[0])
            print(f"autalk: error: {error}", file=sys.stderr)
            return EXIT_ERROR
        except Exception as error:  # noqa: BLE001 - the last line of defence
            # A stop raised inside some native code comes back as another
            # error (SystemError from a C extension, say): it is still a stop.
            if stops.RECEIVED:
                return _stopped(args, stops.RECEIVED[0])
            if debug:
                raise
            print(
                f"autalk: error: unexpected failure ({type(error).__name__}: {error}); "
                "run again with --debug and report the traceback.",
                file=sys.stderr,
            )
            return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
