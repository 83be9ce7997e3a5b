"""`autalk train RECIPE`: run a training recipe (`recipes/NAME.py`) with its own options."""

import argparse

from keras_autalk.commands.common import EXIT_OK
from keras_autalk.errors import AutalkError

# What `autalk train` leaves when a stop signal ends it (see cli.main).
STOPPED_NOTE = "run the same command again to resume from the last saved state"


def add_parser(subparsers):
    """Add `autalk train` and its options to `subparsers`."""
    parser = subparsers.add_parser(
        "train",
        help="run a training recipe (recipes/NAME.py), e.g. talker_demo",
        description="Run a training recipe; the options after RECIPE are the recipe's own "
        "(--out, --epochs, --strategy mirrored|multi-worker|default, ...; see RECIPE --help).",
    )
    parser.add_argument(
        "recipe",
        help="au_classifier_demo, talker_demo, talker_grid, "
        "talker_tcd_timit, sync_expert_demo, or the path of a recipe file",
    )
    parser.add_argument("recipe_args", nargs=argparse.REMAINDER, help="the recipe's options")
    parser.set_defaults(handler=run)


def run(args):
    """Run `autalk train` with its parsed options; return the exit status."""
    import runpy

    from keras_autalk.training.recipes import find_recipe

    path = find_recipe(args.recipe)
    recipe = runpy.run_path(str(path), run_name="autalk_recipe")
    if "main" not in recipe:
        raise AutalkError(f"The recipe '{path}' has no main(argv) function.")
    return recipe["main"](args.recipe_args) or EXIT_OK
