"""Recipe: pre-train the AU classifier on the demo corpus.

The classifier reads AU intensities off single aligned face crops; the talker
recipes freeze it and pull its reading of generated frames toward the target
AUs. Writes `OUT/au_classifier.keras` and `OUT/au_classifier_eval.json`
(per-AU Pearson correlation with the labels of the held-out test split).

    autalk prepare --corpus demo --out prepared/demo
    autalk train au_classifier_demo --out runs/au_demo [--epochs 10] [--strategy mirrored]
    python recipes/au_classifier_demo.py --out runs/au_demo     # the same

A killed run resumes at its last backup when started again with the same
options.
"""

import sys

from keras_autalk.training import recipes


def main(argv=None):
    parser = recipes.recipe_parser(
        __doc__.splitlines()[0],
        prepared="prepared/demo",
        epochs=10,
        steps_per_epoch=200,
        batch_size=64,
        talker=False,
    )
    args = parser.parse_args(argv)
    recipes.run_au_classifier_recipe(args)
    return 0


if __name__ == "__main__":
    sys.exit(recipes.recipe_main(main))
