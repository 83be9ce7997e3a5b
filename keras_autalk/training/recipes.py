"""What the training recipes share: their options, their runs, finding them.

The recipes in `recipes/` (and `autalk train RECIPE`) are thin scripts over
this module: `recipe_parser` gives their command-line options,
`run_au_classifier_recipe` and `run_talker_recipe` run the two stages (the
AU classifier is trained first, then frozen inside the talker GAN; see
`keras_autalk.training.au_classifier` and `keras_autalk.training.talker`),
`find_recipe` finds one by name and `recipe_main` runs one as a script.
"""

import argparse
import pathlib
import sys

from keras_autalk.errors import AutalkError
from keras_autalk.training.au_classifier import (
    AU_CLASSIFIER_FILE,
    AU_CLASSIFIER_MULTI_WORKER,
    train_au_classifier,
)
from keras_autalk.training.strategy import STRATEGIES, make_strategy
from keras_autalk.training.talker import train_talker


def recipe_parser(
    description, prepared, epochs, steps_per_epoch, batch_size, talker=True, preset="small"
):
    """The command-line options every recipe shares, with its defaults.

    Args:
        description: the recipe's one-line description.
        prepared: default prepared folder.
        epochs, steps_per_epoch, batch_size: default run length and batch.
        talker: add the talker's options (AU classifier stage, ablations);
            otherwise the AU classifier's (dropout).
        preset: default model preset.

    Example:
    ```python
    parser = recipe_parser("Train on my corpus.", "prepared/mine", 10, 200, 4)
    args = parser.parse_args(["--out", "runs/mine"])
    ```
    """
    parser = argparse.ArgumentParser(description=description)
    _add_run_options(parser, prepared, epochs, steps_per_epoch, batch_size, preset)
    _add_execution_options(parser)
    if talker:
        _add_au_stage_options(parser)
        _add_ablation_options(parser)
    else:
        parser.add_argument("--dropout", type=float, default=0.1)
    return parser


def _add_run_options(parser, prepared, epochs, steps_per_epoch, batch_size, preset):
    """Add what a run trains on, where it writes, for how long and with which model."""
    parser.add_argument(
        "--prepared",
        default=prepared,
        help=f"folder written by `autalk prepare` (default {prepared})",
    )
    parser.add_argument("--out", required=True, help="output folder of the run")
    parser.add_argument("--epochs", type=int, default=epochs)
    parser.add_argument("--steps-per-epoch", type=int, default=steps_per_epoch)
    parser.add_argument(
        "--batch-size",
        type=int,
        default=batch_size,
        help="global batch (frames for the AU classifier, windows for the talker)",
    )
    parser.add_argument(
        "--preset",
        default=preset,
        choices=("small", "paper"),
        help=f"model size (default {preset})",
    )


def _add_execution_options(parser):
    """Add how a run executes: devices, optimiser, seed, backups, validation, compilation."""
    parser.add_argument("--strategy", default="default", choices=STRATEGIES)
    parser.add_argument(
        "--logical-cpus",
        type=int,
        default=None,
        help="split the CPU into this many devices (to try 'mirrored' on CPU)",
    )
    parser.add_argument("--learning-rate", type=float, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--backup-every", type=int, default=None, help="steps between resumable backups"
    )
    parser.add_argument("--validation-steps", type=int, default=None)
    parser.add_argument("--jit-compile", default="auto", choices=("auto", "on", "off"))
    parser.add_argument("--mixed-precision", default="auto", choices=("auto", "on", "off"))
    parser.add_argument(
        "--verbose",
        type=int,
        default=None,
        choices=(0, 1, 2),
        help="progress: 0 none, 1 bar, 2 a line per epoch (default: bar on a terminal)",
    )


def _add_au_stage_options(parser):
    """Add the talker's AU classifier options: a trained one, or the stage that trains it."""
    parser.add_argument(
        "--au-classifier",
        help="a trained AU classifier (.keras); default: train one first into OUT/au_classifier",
    )
    parser.add_argument(
        "--au-epochs", type=int, default=5, help="epochs of the AU classifier stage"
    )
    parser.add_argument("--au-steps-per-epoch", type=int, default=200)
    parser.add_argument(
        "--no-au-loss",
        action="store_true",
        help="ablation: train without the AU-classifier loss",
    )


def _add_ablation_options(parser):
    """Add the talker's model variants, starting weights and loss weights."""
    parser.add_argument(
        "--fusion",
        choices=("tcsa", "conv"),
        default=None,
        help="ablation: fusion without attention ('conv')",
    )
    parser.add_argument(
        "--drive",
        choices=("audio+au", "audio", "au"),
        default=None,
        help="ablation: what drives the fusion",
    )
    parser.add_argument(
        "--decoder",
        choices=("frames", "flow"),
        default=None,
        help="the frame decoder: 'frames' redraws the crop (default), "
        "'flow' moves the photo's pixels and draws the mouth's inside",
    )
    parser.add_argument(
        "--audio-augment",
        action="store_true",
        help="augment the training speech: noise, reverb, EQ, phone band, "
        "clipping, gain and speed (keras_autalk.datasets.audio_augment)",
    )
    parser.add_argument(
        "--audio-normalization",
        choices=("none", "utterance"),
        default=None,
        help="normalise the audio features per utterance (the model "
        "keeps this setting; default none)",
    )
    parser.add_argument(
        "--init-weights",
        default=None,
        metavar="FILE",
        help="start from these weights (*.weights.h5 of the same model, "
        "e.g. another run's checkpoints/epoch-NNN.weights.h5, or a "
        "pretrained model's name or folder: its generator)",
    )
    parser.add_argument(
        "--loss-weight",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="change one loss weight, e.g. mouth_l1=30 (repeatable; names: "
        "l1, mouth_l1, adversarial, au_classifier, audio2au)",
    )


def verbosity(args):
    """The `model.fit` verbosity of parsed recipe options (`--verbose`)."""
    if args.verbose is not None:
        return args.verbose
    return "auto" if sys.stdout.isatty() else 2


def run_au_classifier_recipe(args, log=print):
    """Run the AU-classifier stage from parsed recipe options."""
    if args.strategy == "multi-worker":
        raise AutalkError(AU_CLASSIFIER_MULTI_WORKER)
    strategy = make_strategy(args.strategy, args.logical_cpus)
    return train_au_classifier(
        args.prepared,
        args.out,
        epochs=args.epochs,
        steps_per_epoch=args.steps_per_epoch,
        preset=args.preset,
        strategy=strategy,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate or 1e-3,
        dropout=args.dropout,
        seed=args.seed,
        backup_every=args.backup_every or 100,
        validation_steps=20 if args.validation_steps is None else args.validation_steps,
        jit_compile=args.jit_compile,
        mixed_precision=args.mixed_precision,
        verbose=verbosity(args),
        log=log,
    )


def parse_loss_weights(pairs):
    """`["mouth_l1=30", ...]` -> `{"mouth_l1": 30.0}`; bad pairs raise `AutalkError`.

    Example:
    >>> parse_loss_weights(["mouth_l1=30", "adversarial=0.1"])
    {'mouth_l1': 30.0, 'adversarial': 0.1}
    """
    from keras_autalk.models.talker import DEFAULT_LOSS_WEIGHTS

    weights = {}
    for pair in pairs:
        name, _, value = pair.partition("=")
        if name not in DEFAULT_LOSS_WEIGHTS:
            raise AutalkError(
                f"Unknown loss '{name}' in --loss-weight {pair}; the losses are "
                f"{', '.join(DEFAULT_LOSS_WEIGHTS)}."
            )
        try:
            weights[name] = float(value)
        except ValueError:
            raise AutalkError(f"--loss-weight {pair} needs a number after '='.") from None
        if weights[name] < 0:
            raise AutalkError(f"--loss-weight {pair}: a loss weight cannot be negative.")
    return weights


def run_talker_recipe(args, log=print, model_overrides=None):
    """Run a talker recipe: the AU classifier stage if needed, then the GAN."""
    loss_weights = parse_loss_weights(getattr(args, "loss_weight", []))
    stage_file = pathlib.Path(args.out) / "au_classifier" / AU_CLASSIFIER_FILE
    if (
        args.strategy == "multi-worker"
        and not args.no_au_loss
        and args.au_classifier is None
        and not stage_file.is_file()
    ):
        raise AutalkError(AU_CLASSIFIER_MULTI_WORKER)
    strategy = make_strategy(args.strategy, args.logical_cpus)
    classifier = None
    if not args.no_au_loss:
        classifier = args.au_classifier
        if classifier is None:
            stage_dir = pathlib.Path(args.out) / "au_classifier"
            classifier = stage_dir / AU_CLASSIFIER_FILE
            if not classifier.is_file():
                log("Stage 1: the AU classifier (no --au-classifier given).")
                train_au_classifier(
                    args.prepared,
                    stage_dir,
                    epochs=args.au_epochs,
                    steps_per_epoch=args.au_steps_per_epoch,
                    preset=args.preset,
                    strategy=strategy,
                    seed=args.seed,
                    jit_compile=args.jit_compile,
                    mixed_precision=args.mixed_precision,
                    verbose=verbosity(args),
                    log=log,
                )
            log("Stage 2: the talker.")
    overrides = dict(model_overrides or {})
    if args.fusion:
        overrides["fusion"] = args.fusion
    if args.drive:
        overrides["drive"] = args.drive
    if args.decoder:
        overrides["decoder"] = args.decoder
    if args.audio_normalization:
        overrides["audio_normalization"] = args.audio_normalization
    augmentation = None
    if args.audio_augment:
        from keras_autalk.datasets.audio_augment import AudioAugmentation

        augmentation = AudioAugmentation()
    return train_talker(
        args.prepared,
        args.out,
        epochs=args.epochs,
        steps_per_epoch=args.steps_per_epoch,
        preset=args.preset,
        strategy=strategy,
        au_classifier=classifier,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate or 2e-4,
        seed=args.seed,
        loss_weights=loss_weights or None,
        initial_weights=args.init_weights,
        backup_every=args.backup_every or 50,
        validation_steps=4 if args.validation_steps is None else args.validation_steps,
        jit_compile=args.jit_compile,
        mixed_precision=args.mixed_precision,
        verbose=verbosity(args),
        model_overrides=overrides,
        audio_augmentation=augmentation,
        log=log,
    )


def find_recipe(name):
    """The path of the recipe called `name` (or a recipe file's path).

    Looks for `recipes/<name>.py` beside the package (a source checkout or
    an editable install); dashes and underscores are the same.

    Raises:
        AutalkError: no such recipe (the message lists the known ones).

    Example:
    ```python
    find_recipe("talker-demo")  # .../recipes/talker_demo.py
    ```
    """
    candidate = pathlib.Path(name)
    if candidate.suffix == ".py":
        if candidate.is_file():
            return candidate
        raise AutalkError(f"The recipe file '{name}' does not exist.")
    folder = recipes_dir()
    path = folder / f"{name.replace('-', '_')}.py"
    if path.is_file():
        return path
    known = sorted(p.stem for p in folder.glob("*.py")) if folder.is_dir() else []
    if not known:
        raise AutalkError(
            f"No recipe '{name}': the recipes/ folder was not found beside the "
            "package; give the path of a recipe file."
        )
    raise AutalkError(f"No recipe '{name}'; the recipes are: {', '.join(known)}.")


def recipes_dir():
    """The `recipes/` folder of the source tree the package runs from."""
    return pathlib.Path(__file__).resolve().parents[2] / "recipes"


def recipe_main(run, argv=None):
    """Run a recipe's `run(argv)`; bad input ends it with one sentence, status 1.

    `autalk train` reports errors itself; this is for running a recipe file
    directly with `python recipes/NAME.py`.
    """
    try:
        return run(argv)
    except AutalkError as error:
        print(f"recipe: error: {error}", file=sys.stderr)
        return 1
