#!/usr/bin/env bash
# The ablation table of docs/results.md: four talkers trained with one recipe and equal
# budgets on the demo corpus, then scored together on its held-out split.
#
#   bash tools/ablation.sh PREPARED AU_CLASSIFIER SYNC_EXPERT OUT [EPOCHS] [STEPS]
#
# PREPARED: `autalk prepare --corpus demo` output; AU_CLASSIFIER: `autalk train
# au_classifier_demo` output; SYNC_EXPERT: `autalk train sync_expert_demo` output.
# The four runs go in parallel (each resumes if killed); docs/results.md says how long they took.
set -euo pipefail
prepared=$1 au=$2 sync=$3 out=$4 epochs=${5:-12} steps=${6:-50}
common=(--prepared "$prepared" --epochs "$epochs" --steps-per-epoch "$steps" --batch-size 4
        --validation-steps 4 --verbose 2)
mkdir -p "$out"
autalk train talker_demo --out "$out/full" --au-classifier "$au" "${common[@]}" \
    > "$out/full.log" 2>&1 &
autalk train talker_demo --out "$out/audio_only" --au-classifier "$au" --drive audio \
    "${common[@]}" > "$out/audio_only.log" 2>&1 &
autalk train talker_demo --out "$out/conv_fusion" --au-classifier "$au" --fusion conv \
    "${common[@]}" > "$out/conv_fusion.log" 2>&1 &
autalk train talker_demo --out "$out/no_au_loss" --no-au-loss "${common[@]}" \
    > "$out/no_au_loss.log" 2>&1 &
wait
autalk evaluate --prepared "$prepared" --au-classifier "$au" --sync-expert "$sync" \
    --model "full=$out/full/talker.keras" --model "audio only (no AUs)=$out/audio_only/talker.keras" \
    --model "conv fusion (no attention)=$out/conv_fusion/talker.keras" \
    --model "no AU-classifier loss=$out/no_au_loss/talker.keras" \
    --every 3 -o "$out/evaluation"
