#!/usr/bin/env bash
# The speech-robustness rows of docs/results.md (issue 8): talkers trained with the recipe and
# budget of the ablation's "full" run (tools/ablation.sh), plus per-utterance feature
# normalisation and/or speech augmentation; then the held-out scores and the real-speech benchmark.
#
#   bash tools/speech_ablation.sh PREPARED CORPUS_ROOT AU_CLASSIFIER SYNC_EXPERT FULL_RUN OUT \
#       [EPOCHS] [STEPS]
#
# PREPARED / CORPUS_ROOT: `autalk prepare --corpus demo --root CORPUS_ROOT --out PREPARED`;
# FULL_RUN: tools/ablation.sh's OUT/full (the row without either measure). The three runs go in
# parallel (each resumes if killed).
set -euo pipefail
prepared=$1 corpus=$2 au=$3 sync=$4 full=$5 out=$6 epochs=${7:-12} steps=${8:-50}
common=(--prepared "$prepared" --au-classifier "$au" --epochs "$epochs" --steps-per-epoch "$steps"
        --batch-size 4 --validation-steps 4 --verbose 2)
mkdir -p "$out"
autalk train talker_demo --out "$out/both" --audio-augment --audio-normalization utterance \
    "${common[@]}" > "$out/both.log" 2>&1 &
autalk train talker_demo --out "$out/norm_only" --audio-normalization utterance \
    "${common[@]}" > "$out/norm_only.log" 2>&1 &
autalk train talker_demo --out "$out/augment_only" --audio-augment \
    "${common[@]}" > "$out/augment_only.log" 2>&1 &
wait
autalk evaluate --prepared "$prepared" --au-classifier "$au" --sync-expert "$sync" \
    --model "without either=$full/talker.keras" \
    --model "augmentation + normalisation=$out/both/talker.keras" \
    --model "normalisation only=$out/norm_only/talker.keras" \
    --model "augmentation only=$out/augment_only/talker.keras" \
    --every 3 -o "$out/evaluation"
autalk evaluate --real-speech --model "without either=$full/talker.keras" \
    --model "augmentation + normalisation=$out/both/talker.keras" \
    --model "normalisation only=$out/norm_only/talker.keras" \
    --model "augmentation only=$out/augment_only/talker.keras" \
    --photo grace_hopper --language en --language en_GB --tracks 2 \
    --condition clean --condition phone --condition noisy --condition reverb \
    --reference-corpus "$corpus" -o "$out/real_speech"
