"""What every `autalk` sub-command shares: exit statuses and notes to the user."""

import sys

EXIT_OK = 0
EXIT_ERROR = 1


def add_face_choice(parser):
    """`--face N` and `--face-box X,Y,W,H`: which face of a photo to use."""
    parser.add_argument(
        "--face",
        type=int,
        default=None,
        metavar="N",
        help="use the N-th face, counting left to right from 1 (default: the largest)",
    )
    parser.add_argument(
        "--face-box",
        default=None,
        metavar="X,Y,W,H",
        help="use the face in this box of the photo (pixels)",
    )


def face_choice(args):
    """`(face_index, face_box)` from the options `add_face_choice` added."""
    from keras_autalk.media.face import parse_face_box

    return args.face, parse_face_box(args.face_box) if args.face_box else None


def note(message):
    """Tell the user something worth knowing that is not an error."""
    print(f"autalk: note: {message}", file=sys.stderr)
