"""Recipe: train the talking-head GAN on the demo corpus.

Stage 1 trains the AU classifier into `OUT/au_classifier/` unless
`--au-classifier PATH` names a trained one (or `--no-au-loss` turns its loss
off); stage 2 trains `AUTalker` and writes `OUT/talker.keras`, with
TensorBoard logs (sample strips of real | generated frames) in `OUT/logs`.

    autalk prepare --corpus demo --out prepared/demo
    autalk train talker_demo --out runs/talker_demo [--epochs 20] [--strategy mirrored]
    autalk train talker_demo --out runs/ablation_conv --fusion conv --au-classifier \\
        runs/talker_demo/au_classifier/au_classifier.keras

A killed run resumes at its last backup when started again with the same
options.
"""

import sys

from keras_autalk.training import recipes


def main(argv=None):
    parser = recipes.recipe_parser(
        __doc__.splitlines()[0],
        prepared="prepared/demo",
        epochs=20,
        steps_per_epoch=200,
        batch_size=4,
    )
    args = parser.parse_args(argv)
    recipes.run_talker_recipe(args)
    return 0


if __name__ == "__main__":
    sys.exit(recipes.recipe_main(main))
