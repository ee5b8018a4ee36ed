#!/bin/sh
# The world-v2 claim end to end (issue 15), resumable at every step; run from the project root:
#   nohup sh benchmarks/claim_v2.sh > claim_v2.log 2>&1 &
# 1. the single-step Tiny baseline's curve (3 seeds, kept every 150 steps up to 1,800) and its gap to the teacher;
# 2. S, the steps per hop, by the pre-registered rule (fewest steps within 0.02 of the curve's best, search
#    prompts), written into the experiment design;
# 3. the experiment (18 kedro runs, finished ones skipped).
set -e
export KEDRO_DISABLE_TELEMETRY=1 OMP_NUM_THREADS=1
python=${PYTHON:-.venv/bin/python}
$python benchmarks/world_v2_gap.py --seeds 0 1 2 --steps 1800 --snapshot-every 150 \
    --out data/08_reporting/world_v2/gap_curve.json
$python benchmarks/choose_hop_steps.py data/08_reporting/world_v2/gap_curve.json --within 0.02 \
    --design conf/world_v2/experiment_claim.yml
$python -m delta_diff.experiments conf/world_v2/experiment_claim.yml
