#!/bin/sh
# Carry a training that outlasts a work session into the next one: stage, for commit, the newest checkpoint of
# each given checkpoint folder, and unstage the older ones of that folder. Run from the project root:
#   sh benchmarks/park_checkpoints.sh data/06_models/teacher_v7_checkpoints/vae \
#       data/06_models/teacher_v7_checkpoints/scorer data/06_models/teacher_v7_checkpoints/unet
#   git commit -m "Park world v7's teacher training at step N"
# then, in a fresh checkout, the same `kedro run ... --pipelines teacher` resumes from the parked step.
#
# Why: a checkout starts from what was committed; data/** is git-ignored, so checkpoints written there are gone
# with the machine (world v7's teacher lost 16,000 U-Net steps that way between two sessions). A parked
# checkpoint is a whole `step-*` folder (TrainingCheckpoints publishes them by one rename; its meta.json lists
# every file's size, so a damaged one is skipped on resume, not loaded). Each park adds one checkpoint to the
# history (world v7's U-Net: ~140 MB with its optimizer and EMA), so park at the end of a session, not often.
set -e
[ $# -gt 0 ] || { echo "usage: sh benchmarks/park_checkpoints.sh <checkpoint folder>..." >&2; exit 2; }
newest() { ls -d "$1"/step-* 2>/dev/null | sort | tail -n 1; }
for folder in "$@"; do  # every folder checked before any is staged: a bad one leaves the index as it was
    [ -n "$(newest "$folder")" ] || { echo "error: $folder holds no step-* checkpoint: nothing to park" >&2; exit 2; }
    [ -f "$(newest "$folder")/meta.json" ] || {
        echo "error: $(newest "$folder") has no meta.json: not a whole checkpoint" >&2; exit 2; }
done
for folder in "$@"; do
    newest=$(newest "$folder")
    git rm -r -q --cached --ignore-unmatch "$folder"   # the older parked steps (pruned from disk by the training)
    git add -f "$newest"
    echo "parked $newest ($(du -sh "$newest" | cut -f1))"
done
