"""How saved_models/demo was made: a trained talker (+ its scorers) into the bundled format.

    python tools/bundle_demo_model.py --talker runs/full/talker.keras \\
        --au-classifier runs/au/au_classifier.keras --sync-expert runs/sync/sync_expert.keras \\
        --card card.json --out saved_models/demo

The talker's generator is stored with `keras_autalk.save_pretrained` (float16
weights, no discriminator); the AU classifier and the sync expert, which
`autalk evaluate` uses by default, are re-saved without optimiser state.
`--card` is a JSON file of model-card facts (data, preset, steps, training
time, hardware, metrics) stored in model.json.
"""

import argparse
import json
import pathlib
import shutil
import sys
import tempfile


def resave_without_optimizer(source, target):
    """Load a `.keras` model uncompiled and save it again (weights and config only)."""
    import keras

    model = keras.saving.load_model(str(source), compile=False)
    model.save(str(target))
    return pathlib.Path(target).stat().st_size


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--talker", required=True, help="a training run's talker.keras")
    parser.add_argument("--au-classifier", required=True)
    parser.add_argument("--sync-expert", required=True)
    parser.add_argument("--card", help="JSON file of model-card facts")
    parser.add_argument("--out", default="saved_models/demo")
    args = parser.parse_args(argv)

    from keras_autalk.evaluation.evaluate import (AU_CLASSIFIER_FILE, SYNC_EXPERT_FILE,
                                                  load_talker)
    from keras_autalk.pretrained import save_pretrained

    card = json.loads(pathlib.Path(args.card).read_text()) if args.card else {}
    talker = load_talker(args.talker)
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = pathlib.Path(tempfile.mkdtemp(prefix=".bundle-", dir=out.parent))
    try:
        save_pretrained(talker, staging / "model", card=card)
        resave_without_optimizer(args.au_classifier, staging / "model" / AU_CLASSIFIER_FILE)
        resave_without_optimizer(args.sync_expert, staging / "model" / SYNC_EXPERT_FILE)
        if out.exists():
            shutil.rmtree(out)
        (staging / "model").rename(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    for path in sorted(out.iterdir()):
        print(f"{path.name:28s} {path.stat().st_size / 2**20:6.2f} MiB")
    total = sum(path.stat().st_size for path in out.iterdir())
    print(f"{'total':28s} {total / 2**20:6.2f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
