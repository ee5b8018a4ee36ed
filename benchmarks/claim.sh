#!/bin/sh
# A world's claim end to end (issue 15), resumable at every step; run from the project root with the world's conf
# environment (world_v2 .. world_v7):
#   nohup sh benchmarks/claim.sh world_v5 > claim_v5.log 2>&1 &
# 1. the single-step Tiny baseline's curve (3 seeds, kept every 150 steps up to 1,800) and its gap to the teacher;
# 2. S, the steps per hop, by the pre-registered rule (fewest steps within 0.02 of the curve's best, search
#    prompts), written into the experiment design conf/<env>/experiment_claim.yml -- or the chain stops here
#    (exit 3) if the baseline at S shows no knowledge gap (above 0.95 of the teacher, or a spread over seeds
#    as large as the gap): the claim cannot be tested on that world;
# 3. the experiment (18 kedro runs, finished ones skipped).
set -e
env=${1:?usage: sh benchmarks/claim.sh <world env, e.g. world_v5>}
world=${env#world_}
design=conf/$env/experiment_claim.yml
[ -f "$design" ] || { echo "error: $design is missing: write the world's experiment design (conf/world_v5/experiment_claim.yml is one)" >&2; exit 2; }
for needed in data/06_models/embedded_teacher_$world/model_index.json data/06_models/world_scorer_$world/config.json; do
    [ -f "$needed" ] || { echo "error: $needed is missing: train the world's teacher first (kedro run --env $env --pipelines teacher)" >&2; exit 2; }
done
report=data/08_reporting/teacher_${world}_competence.json
grep -q '"passed": true' "$report" 2>/dev/null || { echo "error: $report does not say the teacher passed its competence check: a teacher that fails it cannot test the claim (see the report's failures; train it longer or make the world easier)" >&2; exit 2; }
export KEDRO_DISABLE_TELEMETRY=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
python=${PYTHON:-.venv/bin/python}
$python benchmarks/gap_curve.py --env "$env" --teacher data/06_models/embedded_teacher_$world \
    --scorer data/06_models/world_scorer_$world --seeds 0 1 2 --steps 1800 --snapshot-every 150 \
    --out data/08_reporting/$env/gap_curve.json
$python benchmarks/choose_hop_steps.py data/08_reporting/$env/gap_curve.json --within 0.02 --design "$design"
$python -m delta_diff.experiments "$design"
