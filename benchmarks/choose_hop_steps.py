"""Choose S, the steps per hop of the claim experiment, from the single-step baseline's measured curve, by a rule
fixed before the curve is seen: the fewest steps at which the baseline's mean score on the *search* prompts (never
evaluate's) is within ``--within`` of its best point on the curve (near its plateau). Prints the curve; with
``--design`` writes S into the experiment design's ``distill_stage.stage.distillation.steps``.

It refuses (exit 3, nothing written) a world with no knowledge gap to test: the baseline at S must score at most
``--max-share`` of the teacher on the search prompts, with the spread over seeds smaller than the gap (issue 15's
bar); otherwise every student would match the teacher and 18 hour-long runs could not show the claim either way.

It warns (stderr; S is still written) when S is the curve's last point: the rule then found no plateau within the
measured steps, and the baseline may well still be rising at S (world v7: S = 1,800 was the curve's end, and the
claim runs' baselines went on from 0.93 to 0.97 of the teacher by 3S). Measure a longer curve first if the claim
needs S at the plateau.

    .venv/bin/python benchmarks/choose_hop_steps.py data/08_reporting/world_v2/gap_curve.json \
        --within 0.02 --design conf/world_v2/experiment_claim.yml
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

KEY = "distill_stage.stage.distillation.steps"


def choose(summary: dict[str, dict], within: float) -> int:
    curve = {int(steps): row["search_score_over_teacher_mean"] for steps, row in summary.items()}
    best = max(curve.values())
    return min(steps for steps, score in curve.items() if score >= best - within)


def plateau_warning(summary: dict[str, dict], steps: int) -> str | None:
    """Why S may not be near the baseline's plateau (it is the curve's last point), or None."""
    points = sorted(int(s) for s in summary)
    if steps != points[-1] or len(points) < 2:
        return None
    rise = (summary[str(steps)]["search_score_over_teacher_mean"]
            - summary[str(points[-2])]["search_score_over_teacher_mean"])
    return (f"S = {steps} is the curve's last point (the last interval still changed the search score by "
            f"{rise:+.3f} of the teacher's): no plateau within the measured steps, the baseline may still be "
            "rising at S. Measure a longer curve (gap_curve.py --steps) if the claim needs S at the plateau")


def no_gap_problem(row: dict, max_share: float) -> str | None:
    """Why the baseline's point at S shows no gap to test (issue 15's bar), or None."""
    if max_share >= 1:
        return None
    share, spread = row["search_score_over_teacher_mean"], row.get("search_score_over_teacher_std")
    if share > max_share:
        return f"the baseline scores {share:.3f} of the teacher (bar: at most {max_share})"
    if spread is None:
        return f"the curve gives no spread over seeds ({row['n_seeds']} seed(s)): the spread over seeds is unknown"
    if spread >= 1 - share:
        return f"the spread over seeds ({spread:.3f}) is not smaller than the gap ({1 - share:.3f})"
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("curve", type=Path, help="gap_curve.py's JSON report (with --snapshot-every)")
    parser.add_argument("--within", type=float, default=0.02, help="of the teacher's score (a share)")
    parser.add_argument("--design", type=Path, default=None)
    parser.add_argument("--max-share", type=float, default=0.95,
                        help="the baseline at S may score at most this share of the teacher (1: no check)")
    args = parser.parse_args()
    report = json.loads(args.curve.read_text())
    if "summary" not in report:
        print(f"error: {args.curve} has no summary: gap_curve.py has not finished all its seeds (run it again "
              "with the same settings; it keeps the seeds already finished)", file=sys.stderr)
        raise SystemExit(2)
    summary = report["summary"]
    print(f"{'steps':>6} {'search / teacher':>16} {'eval / teacher':>14} {'eval std':>8} {'seeds':>5}")
    for steps, row in sorted(summary.items(), key=lambda item: int(item[0])):
        std = row["eval_score_over_teacher_std"]
        print(f"{int(steps):>6} {row['search_score_over_teacher_mean']:>16.3f} "
              f"{row['eval_score_over_teacher_mean']:>14.3f} {'-' if std is None else f'{std:.3f}':>8} "
              f"{row['n_seeds']:>5}")
    steps = choose(summary, args.within)
    print(f"S = {steps} (fewest steps within {args.within} of the curve's best on the search prompts)")
    warning = plateau_warning(summary, steps)
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
    problem = no_gap_problem(summary[str(steps)], args.max_share)
    if problem:
        print(f"error: no knowledge gap to test at S = {steps}: {problem}. Make the world harder (README, World v5), "
              "or pass --max-share 1 to run the claim anyway", file=sys.stderr)
        raise SystemExit(3)
    if args.design:
        text = args.design.read_text()
        updated, count = re.subn(rf"({re.escape(KEY)}: )\d+", rf"\g<1>{steps}", text)
        if count != 1:
            raise SystemExit(f"{args.design}: expected one '{KEY}: <steps>' line, found {count}")
        args.design.write_text(updated)
        print(f"wrote {KEY}: {steps} into {args.design}")


if __name__ == "__main__":
    main()
