"""Recipe: train the talking-head GAN on GRID (paper-sized model, GPUs).

GRID's AU labels come from OpenFace CSVs when `autalk prepare` found them
(`sNN/au/<id>.csv`), else from the calibrated geometric estimator. Stage 1
trains the AU classifier on those labels (unless `--au-classifier PATH`),
stage 2 the talker. The paper holds out speakers s1, s2, s20 and s22.

    autalk prepare --corpus grid --root GRID --out prepared/grid --test-speakers s1,s2,s20,s22
    autalk train talker_grid --out runs/grid --strategy mirrored          # all local GPUs
    TF_CONFIG='{"cluster": {"worker": ["host1:12345", "host2:12345"]},
                "task": {"type": "worker", "index": 0}}' \\
        autalk train talker_grid --out /shared/runs/grid --strategy multi-worker

For multi-worker runs `--out` must be a folder every worker can read (the
chief writes it; the backup there is what every worker resumes from).
"""

import sys

from keras_autalk.training import recipes


def main(argv=None):
    parser = recipes.recipe_parser(
        __doc__.splitlines()[0],
        prepared="prepared/grid",
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
