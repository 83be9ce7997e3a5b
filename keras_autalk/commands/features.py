"""The `features` task: a speech recording in, its per-frame features out."""

from keras_autalk.commands.common import EXIT_OK
from keras_autalk.config import AudioConfig
from keras_autalk.errors import InputFileError
from keras_autalk.files import atomic_output, check_output_path, refuse_overwriting_inputs


def write_features(audio_path, output_path, config=AudioConfig(), backend="auto"):
    """Compute `log_mel.audio_features` of `audio_path` and save them as `.npy`.

    The output is checked before any work and written atomically.

    Returns:
        The shape written, `(frames, context_steps, num_mel_bins)`.
    """
    output_path = check_output_path(output_path, "features file")
    if output_path.suffix.lower() != ".npy":
        raise InputFileError(
            f"Cannot write features to '{output_path}'; give a file name ending in .npy."
        )
    refuse_overwriting_inputs([("features file", output_path)], [("audio file", audio_path)])
    import numpy as np

    from keras_autalk.features import log_mel

    features = log_mel.audio_features(audio_path, config, backend=backend)
    with atomic_output(output_path, "features file") as temporary:
        with open(temporary, "wb") as handle:
            np.save(handle, features)
    return features.shape


def add_parser(subparsers):
    """Add `autalk features` and its options to `subparsers`."""
    parser = subparsers.add_parser(
        "features", help="compute the per-video-frame audio features of a recording"
    )
    parser.add_argument("audio", help="WAV, FLAC, OGG, MP3 or M4A file, any rate and channels")
    parser.add_argument("-o", "--output", required=True, help="where to write them (.npy)")
    parser.add_argument(
        "--backend",
        choices=("auto", "tfio", "soundfile"),
        default="auto",
        help="audio decoding backend (default: tensorflow-io if its ops load)",
    )
    parser.set_defaults(handler=run)


def run(args):
    """Run `autalk features` with its parsed options; return the exit status."""
    shape = write_features(args.audio, args.output, backend=args.backend)
    print(f"wrote {args.output}: {shape[0]} frames x {shape[1]} steps x {shape[2]} mel bins")
    return EXIT_OK
