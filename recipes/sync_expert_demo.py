"""Recipe: train the audio-visual lip-sync expert on the demo corpus (real frames only).

A SyncNet-style expert (`keras_autalk.models.SyncExpert`) learns to tell a
mouth-crop window's own audio from the same utterance's audio shifted by at
least `--min-shift` frames and from other utterances' audio. It never sees a
generated frame. `autalk evaluate` reads lip sync (LSE-D, LSE-C, offset) with
it. Writes `OUT/sync_expert.keras`, `OUT/training_log.csv` and
`OUT/sync_expert_eval.json` (on the held-out test split: how often the best
offset is 0 for the recorded audio and +`--eval-shift` for delayed audio).

    autalk prepare --corpus demo --out prepared/demo
    autalk train sync_expert_demo --out runs/sync_demo [--epochs 8] [--batch-size 16]
    python recipes/sync_expert_demo.py --out runs/sync_demo     # the same

A killed run resumes at its last backup when started again with the same
options.
"""

import sys

from keras_autalk.evaluation import sync
from keras_autalk.training import recipes


def main(argv=None):
    parser = sync.sync_expert_parser(
        __doc__.splitlines()[0],
        prepared="prepared/demo",
        epochs=8,
        steps_per_epoch=100,
        batch_size=16,
    )
    args = parser.parse_args(argv)
    sync.run_sync_expert_recipe(args)
    return 0


if __name__ == "__main__":
    sys.exit(recipes.recipe_main(main))
