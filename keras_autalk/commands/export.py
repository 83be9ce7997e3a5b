"""`autalk export`: the generator as a SavedModel (TF Serving) or as TFLite files."""

from keras_autalk.commands.common import EXIT_OK
from keras_autalk.errors import AutalkError

EXPORT_FORMATS = ("saved_model", "tflite", "litert")


def add_parser(subparsers):
    """Add `autalk export` and its options to `subparsers`."""
    parser = subparsers.add_parser(
        "export",
        help="export the generator for TF Serving (SavedModel) or TFLite",
        description="Export the generator as a SavedModel with named serving signatures "
        "(generate, generate_from_waveform, audio_to_au), as TFLite files "
        "(generator.tflite, audio_to_au.tflite, parity.json; see docs/serving.md), or as a "
        "copy of the model folder with the generator.tflite `autalk generate` runs on "
        "LiteRT, without TensorFlow (litert).",
    )
    parser.add_argument(
        "--format", required=True, metavar="{saved_model,tflite,litert}", help="what to write"
    )
    parser.add_argument(
        "--quantize",
        default=None,
        metavar="{none,fp16,int8}",
        help="tflite only: float32 weights (none, default), float16 weights "
        "(fp16) or dynamic-range int8 weights (int8)",
    )
    from keras_autalk.config import DataConfig

    parser.add_argument(
        "--window-frames",
        type=int,
        default=None,
        help="tflite only: video frames per fixed-shape window (default: the "
        f"training window, {DataConfig().window_frames})",
    )
    parser.add_argument(
        "--model", default="demo", help="a pretrained model name or folder (default demo)"
    )
    parser.add_argument("-o", "--output", required=True, help="the new output folder")
    parser.set_defaults(handler=run)


def run(args):
    """Run `autalk export` with its parsed options; return the exit status."""
    from keras_autalk.files import refuse_overwriting_inputs
    from keras_autalk.native import import_tensorflow
    from keras_autalk.presets import pretrained

    refuse_overwriting_inputs(
        [("output folder", args.output)],
        [("model folder", pretrained.resolve_model_dir(args.model))],
    )
    import_tensorflow()
    from keras_autalk.export import saved_model as export
    from keras_autalk.export import tflite
    from keras_autalk.presets.pretrained import load_pretrained

    if args.format not in EXPORT_FORMATS:
        raise AutalkError(f"--format must be saved_model, tflite or litert, got {args.format!r}.")
    if args.format == "saved_model" and (
        args.quantize is not None or args.window_frames is not None
    ):
        raise AutalkError(
            "--quantize and --window-frames apply to --format tflite only; "
            "a SavedModel keeps float32 weights and any clip length."
        )
    if args.format == "litert":
        return _export_litert(args)
    quantize = "none" if args.quantize is None else args.quantize
    if quantize not in tflite.QUANTIZATIONS:
        raise AutalkError(f"--quantize must be none, fp16 or int8, got {quantize!r}.")
    if args.window_frames is not None and args.window_frames < 1:
        raise AutalkError(f"--window-frames must be at least 1, got {args.window_frames}.")
    export.check_output_directory(args.output)
    model = load_pretrained(args.model)
    if args.format == "saved_model":
        export.export_saved_model(model, args.output)
        print(
            f"wrote {args.output}: SavedModel with signatures generate (serving_default), "
            "generate_from_waveform, audio_to_au"
        )
        return EXIT_OK
    report = tflite.export_tflite(
        model, args.output, quantize=quantize, window_frames=args.window_frames
    )
    generator = report["files"]["generator.tflite"]
    psnr = generator["frames_psnr_db"]
    print(
        f"wrote {args.output}: generator.tflite ({generator['bytes'] / 1e6:.1f} MB, frames "
        f"PSNR {'inf' if psnr is None else f'{psnr:.1f}'} dB against the Keras model, "
        f"{generator['latency_ms_per_window']:.0f} ms per {report['window_frames']}-frame "
        "window), audio_to_au.tflite, parity.json"
    )
    return EXIT_OK


def _export_litert(args):
    from keras_autalk.export import tflite

    if args.window_frames is not None:
        raise AutalkError(
            "--window-frames applies to --format tflite only; the LiteRT "
            "generator takes any clip length."
        )
    quantize = "fp16" if args.quantize is None else args.quantize
    if quantize not in ("none", "fp16"):
        raise AutalkError(f"--quantize must be fp16 or none for litert, got {quantize!r}.")
    record = tflite.export_litert(args.model, args.output, quantize=quantize)
    parity = record["parity"]
    psnr = parity["output_psnr_db"]
    print(
        f"wrote {args.output}: the model with generator.tflite ({record['weights']} weights; "
        f"frames PSNR {'inf' if psnr is None else f'{psnr:.1f}'} dB and AU difference "
        f"{parity['au_max_abs_diff']:.1g} against Keras); autalk generate --model "
        f"{args.output} runs it on LiteRT"
    )
    return EXIT_OK
