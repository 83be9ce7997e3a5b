"""The `autalk` command line: it parses, and each sub-command's module runs.

One module per sub-command in `keras_autalk.commands` adds its options
(`add_parser`) and runs it (`run`). Every sub-command turns bad input into
one sentence on stderr and a non-zero exit status; a traceback is printed
only with `--debug` (or AUTALK_DEBUG=1), for bug reports.
"""

import argparse
import os
import sys

# TensorFlow's C++ start-up chatter is noise for a command-line user.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from keras_autalk import __version__  # noqa: E402
from keras_autalk.commands import (  # noqa: E402
    align,
    demo,
    doctor,
    evaluate,
    export,
    features,
    generate,
    prepare,
    train,
)
from keras_autalk.commands.common import EXIT_ERROR, EXIT_INTERRUPTED  # noqa: E402
from keras_autalk.errors import AutalkError  # noqa: E402

# In the order `autalk --help` lists them.
COMMANDS = (demo, generate, prepare, train, evaluate, export, align, features, doctor)


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


def main(argv=None):
    """Run `autalk` with `argv` (default: the process arguments); return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = args.debug or os.environ.get("AUTALK_DEBUG") == "1"
    try:
        return args.handler(args)
    except AutalkError as error:
        print(f"autalk: error: {error}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("autalk: interrupted; no output was written.", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as error:  # noqa: BLE001 - the last line of defence
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
