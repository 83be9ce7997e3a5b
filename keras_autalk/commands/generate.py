"""`autalk generate`: a face photo and speech in, a talking-head MP4 out (or several)."""

from keras_autalk.commands.common import EXIT_OK, add_face_choice, face_choice, note
from keras_autalk.errors import AutalkError


def add_parser(subparsers):
    """Add `autalk generate` and its options to `subparsers`."""
    parser = subparsers.add_parser(
        "generate",
        help="make a talking-head video from a face photo and speech",
        description="Find the face in PHOTO, animate it with SPEECH and write an MP4 with "
        "the speech as its audio track. Several --audio (or a --jobs file) render several "
        "clips in one process, each photo's face found once.",
    )
    parser.add_argument(
        "--image", metavar="PHOTO", help="the face photo (JPEG, PNG, WebP, TIFF, ...)"
    )
    parser.add_argument(
        "--audio",
        action="append",
        metavar="SPEECH",
        help="the speech (WAV, FLAC, OGG, MP3, M4A, ...; any rate and "
        "channels); repeat for several clips of one photo",
    )
    parser.add_argument(
        "-o",
        "--output",
        action="append",
        help="the MP4 to write: one per --audio, or one existing folder "
        "(each clip is then named after its speech file)",
    )
    parser.add_argument(
        "--jobs",
        metavar="FILE",
        help="render the clips this file lists, one per line: PHOTO SPEECH "
        "OUTPUT (shell quoting; paths relative to the file; # comments)",
    )
    parser.add_argument(
        "--size",
        type=int,
        default=None,
        help="crop side the model runs at (default: the model's, 128)",
    )
    parser.add_argument(
        "--au-csv",
        default=None,
        help="also write the predicted AU curves to this CSV (OpenFace columns; one clip only)",
    )
    parser.add_argument(
        "--articulation",
        type=float,
        default=1.0,
        help="scale the predicted mouth action units (default 1.0; 0 keeps "
        "the AU-driven mouth still)",
    )
    parser.add_argument(
        "--fps", type=float, default=None, help="output frame rate (default: the model's, 25)"
    )
    add_face_choice(parser)
    parser.add_argument(
        "--model",
        default="demo",
        help="a pretrained preset (autalk presets lists them) or a model folder (default demo)",
    )
    parser.add_argument(
        "--runtime",
        default="auto",
        metavar="{auto,litert,keras}",
        help="where the model runs: LiteRT, without TensorFlow (needs the "
        "model folder's generator.tflite), or Keras; auto (default) takes "
        "LiteRT where it can",
    )
    parser.set_defaults(handler=run)


def _jobs(args):
    """The clips asked for, checked, as `inference.jobs.Job`s."""
    from keras_autalk.inference import jobs as jobs_lib

    if args.jobs is not None:
        given = [
            name
            for name, value in (
                ("--image", args.image),
                ("--audio", args.audio),
                ("-o", args.output),
                ("--au-csv", args.au_csv),
            )
            if value
        ]
        if given:
            raise AutalkError(
                f"--jobs lists every clip's photo, speech and output; leave out {', '.join(given)}."
            )
        jobs = jobs_lib.read_jobs_file(args.jobs)
    else:
        missing = [
            name
            for name, value in (
                ("--image", args.image),
                ("--audio", args.audio),
                ("-o", args.output),
            )
            if not value
        ]
        if missing:
            raise AutalkError(f"Give {' and '.join(missing)} (or --jobs FILE).")
        jobs = jobs_lib.jobs_from_arguments(args.image, args.audio, args.output)
    if args.au_csv is not None and len(jobs) > 1:
        raise AutalkError(
            "--au-csv writes the AU curves of one clip; leave it out when rendering several."
        )
    return jobs


def run(args):
    """Run `autalk generate` with its parsed options; return the exit status."""
    from keras_autalk.inference import runtime

    runtime.check_runtime(args.runtime)
    face_index, face_box = face_choice(args)
    jobs = _jobs(args)
    options = dict(
        model=args.model,
        size=args.size,
        articulation=args.articulation,
        fps=args.fps,
        face=face_index,
        face_box=face_box,
        runtime=args.runtime,
    )
    if len(jobs) == 1 and jobs[0].where is None:
        from keras_autalk.inference import generate

        result = generate.generate(
            jobs[0].photo,
            jobs[0].audio,
            jobs[0].output,
            au_csv=args.au_csv,
            progress=True,
            **options,
        )
        _tell(args.output[0], result, args.au_csv)  # the name as the user wrote it
        return EXIT_OK
    from keras_autalk.inference import jobs as jobs_lib

    jobs_lib.check_jobs(jobs, args.model)
    model, runtime_name = options.pop("model"), options.pop("runtime")
    jobs_lib.run_jobs(
        jobs,
        model=model,
        runtime=runtime_name,
        progress=True,
        on_done=lambda job, result: _tell(job.output, result),
        **options,
    )
    return EXIT_OK


def _tell(output, result, au_csv=None):
    for message in result.notes:
        note(message)
    print(
        f"wrote {output}"
        + (f" and {au_csv}" if au_csv else "")
        + f": {result.num_frames} frames at {result.fps:g} fps, "
        f"{result.audio_seconds:.1f} s of speech, in {result.timings['total']:.1f} s "
        f"({result.runtime})"
    )
