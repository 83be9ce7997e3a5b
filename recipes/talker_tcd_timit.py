"""Recipe: train the talking-head GAN on TCD-TIMIT (paper-sized model, GPUs).

TCD-TIMIT's 29.97 fps videos are resampled to 25 fps by `autalk prepare`;
its sentences are longer and phonetically richer than GRID's. Stage 1 trains
the AU classifier (unless `--au-classifier PATH`), stage 2 the talker.

    autalk prepare --corpus tcd-timit --root TCD-TIMIT --out prepared/tcd \\
        --test-speakers volunteers/01M,volunteers/02M
    autalk train talker_tcd_timit --out runs/tcd --strategy mirrored
"""

import sys

from keras_autalk.training import recipes


def main(argv=None):
    parser = recipes.recipe_parser(
        __doc__.splitlines()[0],
        prepared="prepared/tcd",
        epochs=50,
        steps_per_epoch=1000,
        batch_size=16,
        preset="paper",
    )
    args = parser.parse_args(argv)
    recipes.run_talker_recipe(args)
    return 0


if __name__ == "__main__":
    sys.exit(recipes.recipe_main(main))
