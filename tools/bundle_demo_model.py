"""How saved_models/demo was made: a trained talker into the bundled format.

    python tools/bundle_demo_model.py --talker runs/bundle/talker.keras \\
        [--weights runs/bundle/checkpoints/epoch-NNN.weights.h5] --card card.json \\
        --out saved_models/demo

`--weights` takes one epoch's checkpoint of a run into the architecture of
`--talker` (a run stopped before it wrote its own talker.keras).

The talker's generator is stored with `keras_autalk.save_pretrained` (float16
weights; no discriminator and no AU classifier, which only training needs).
`--card` is a JSON file of model-card facts (data, preset, steps, training
time, hardware, metrics) stored in model.json.
"""

import argparse
import json
import pathlib
import sys


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--talker", required=True, help="a training run's talker.keras")
    parser.add_argument("--weights", help="an epoch checkpoint (*.weights.h5) to load into it")
    parser.add_argument("--card", help="JSON file of model-card facts")
    parser.add_argument("--out", default="saved_models/demo")
    args = parser.parse_args(argv)

    from keras_autalk.evaluation.evaluate import load_talker
    from keras_autalk.presets.pretrained import save_pretrained

    card = json.loads(pathlib.Path(args.card).read_text()) if args.card else {}
    talker = load_talker(args.talker)
    if args.weights:
        talker.load_weights(args.weights)
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_pretrained(talker, out, card=card)
    for path in sorted(out.iterdir()):
        print(f"{path.name:28s} {path.stat().st_size / 2**20:6.2f} MiB")
    total = sum(path.stat().st_size for path in out.iterdir())
    print(f"{'total':28s} {total / 2**20:6.2f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
