"""Choose S, the steps per hop of the claim experiment, from the single-step baseline's measured curve, by a rule
fixed before the curve is seen: the fewest steps at which the baseline's mean score on the *search* prompts (never
evaluate's) is within ``--within`` of its best point on the curve (near its plateau). Prints the curve; with
``--design`` writes S into the experiment design's ``distill_stage.stage.distillation.steps``.

    .venv/bin/python benchmarks/choose_hop_steps.py data/08_reporting/world_v2/gap_curve.json \
        --within 0.02 --design conf/world_v2/experiment_claim.yml
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

KEY = "distill_stage.stage.distillation.steps"


def choose(summary: dict[str, dict], within: float) -> int:
    curve = {int(steps): row["search_score_over_teacher_mean"] for steps, row in summary.items()}
    best = max(curve.values())
    return min(steps for steps, score in curve.items() if score >= best - within)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("curve", type=Path, help="world_v2_gap.py's JSON report (with --snapshot-every)")
    parser.add_argument("--within", type=float, default=0.02, help="of the teacher's score (a share)")
    parser.add_argument("--design", type=Path, default=None)
    args = parser.parse_args()
    summary = json.loads(args.curve.read_text())["summary"]
    print(f"{'steps':>6} {'search / teacher':>16} {'eval / teacher':>14} {'eval std':>8} {'seeds':>5}")
    for steps, row in sorted(summary.items(), key=lambda item: int(item[0])):
        std = row["eval_score_over_teacher_std"]
        print(f"{int(steps):>6} {row['search_score_over_teacher_mean']:>16.3f} "
              f"{row['eval_score_over_teacher_mean']:>14.3f} {'-' if std is None else f'{std:.3f}':>8} "
              f"{row['n_seeds']:>5}")
    steps = choose(summary, args.within)
    print(f"S = {steps} (fewest steps within {args.within} of the curve's best on the search prompts)")
    if args.design:
        text = args.design.read_text()
        updated, count = re.subn(rf"({re.escape(KEY)}: )\d+", rf"\g<1>{steps}", text)
        if count != 1:
            raise SystemExit(f"{args.design}: expected one '{KEY}: <steps>' line, found {count}")
        args.design.write_text(updated)
        print(f"wrote {KEY}: {steps} into {args.design}")


if __name__ == "__main__":
    main()
