"""Calibrate the geometric AU estimator on a prepared demo corpus.

The demo corpus has ground-truth AU curves; dlib's landmarks fitted on its
rendered frames (stored in the TFRecords by `autalk prepare`) are what the
estimator reads. It is fitted on the train split and judged on the held-out
split (a voice and sentences never seen in training), and written to
keras_autalk/assets/geometric_au_estimator.json, which `autalk prepare` uses
for videos without an OpenFace CSV.

Run:
    autalk prepare --corpus demo --root demo_corpus --out prepared/demo
    python tools/calibrate_au_estimator.py --prepared prepared/demo
"""

import argparse
import json

import numpy as np
import tensorflow as tf

from keras_autalk.datasets import pipeline, tfrecords
from keras_autalk.media import au_labels


def read_split(prepared, split):
    """Landmarks, AU targets and masks of every utterance of one split."""
    landmarks, targets, masks, speakers = [], [], [], []
    files = pipeline.list_shards(prepared, split)
    for record in tf.data.TFRecordDataset(files):
        example = tfrecords.parse_example(record, decode_frames=False)
        landmarks.append(example["landmarks"].numpy())
        targets.append(example["au_intensity"].numpy())
        masks.append((example["au_mask"] * example["face_mask"]).numpy())
        speakers.append(example["speaker"].numpy().decode())
        action_units = tuple(int(unit) for unit in example["action_units"].numpy())
    return landmarks, targets, masks, speakers, action_units


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prepared", required=True, help="a prepared demo corpus folder")
    parser.add_argument("--out", default=str(au_labels.DEFAULT_ESTIMATOR_PATH))
    parser.add_argument("--ridge", type=float, default=1.0)
    args = parser.parse_args()

    landmarks, targets, masks, _, action_units = read_split(args.prepared, "train")
    estimator = au_labels.calibrate(landmarks, targets, action_units, masks=masks, ridge=args.ridge)
    test_landmarks, test_targets, test_masks, test_speakers, _ = read_split(args.prepared, "test")
    predicted = np.concatenate([estimator.predict(clip) for clip in test_landmarks])
    held_out = au_labels.per_au_correlation(
        predicted, np.concatenate(test_targets), action_units, mask=np.concatenate(test_masks)
    )
    manifest = json.loads(open(f"{args.prepared}/manifest.json").read())
    held_out_speakers = [
        name
        for name, info in manifest.get("demo_corpus", {}).get("speakers", {}).items()
        if info.get("held_out")
    ]
    voice_only = np.concatenate(
        [
            [speaker in held_out_speakers] * len(clip)
            for speaker, clip in zip(test_speakers, test_landmarks)
        ]
    )
    held_out_voice = au_labels.per_au_correlation(
        predicted,
        np.concatenate(test_targets),
        action_units,
        mask=np.concatenate(test_masks) * voice_only,
    )
    estimator.calibration["held_out_correlation"] = held_out
    estimator.calibration["held_out_voice_correlation"] = held_out_voice
    estimator.calibration["prepared"] = str(args.prepared)
    estimator.save(args.out)

    print(
        f"train: {estimator.calibration['num_clips']} utterances, "
        f"{estimator.calibration['num_frames']} frames; held out: {len(test_landmarks)} "
        f"utterances, {len(predicted)} frames"
    )
    print()
    print("| AU | train r | held-out split r | held-out voice only r |")
    print("| --- | ---: | ---: | ---: |")
    for unit in action_units:
        name = f"AU{unit:02d}"
        print(
            f"| {name} | {estimator.calibration['correlation'][name]:.3f} | "
            f"{held_out[name]:.3f} | {held_out_voice[name]:.3f} |"
        )
    print()
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
