"""python -m delta_diff.experiments conf/base/experiment_claim.yml [--dry-run | --aggregate-only] [--only PATTERN ...]

Runs every `kedro run` of the experiment (skipping finished ones), then writes into <output>/:
results_per_run.csv, results_summary.{csv,md} (mean ± std per variant x student x method), results_paired.csv
(path minus baseline within each run, under both protocols), results_stages.csv (every model along the path),
results_curve.csv (the baseline every S steps of its run, next to the path's student), results.png,
results_paired.png and results_curve.png."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import yaml
from pydantic import ValidationError

from .aggregate import aggregate_results, curve_table, mean_spread_markdown, paired_differences, stage_table
from .design import ExperimentDesign
from .figures import curve_figure, paired_figure, results_figure
from .runner import UnknownRunPattern, run_experiment


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m delta_diff.experiments", description=__doc__.splitlines()[0])
    parser.add_argument("design", type=Path, help="experiment YAML (see conf/base/experiment_claim.yml)")
    parser.add_argument("--dry-run", action="store_true", help="list the runs and their overrides, run nothing")
    parser.add_argument("--aggregate-only", action="store_true",
                        help="run nothing; aggregate the runs finished so far (e.g. while the experiment goes on)")
    parser.add_argument("--only", nargs="+", metavar="PATTERN",
                        help="run only the runs whose names match one of these shell patterns (e.g. "
                             "'path_n?__bk-sdm-tiny__seed0'); finished runs still count in the aggregates")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    try:
        design = ExperimentDesign(**yaml.safe_load(args.design.read_text())["experiment"])
    except (OSError, KeyError, TypeError, ValidationError) as error:
        print(f"error: {args.design}: {error}", file=sys.stderr)
        return 2
    project = Path.cwd()
    if not (project / "conf" / "base").is_dir():
        print("error: run from the project root (no conf/base here)", file=sys.stderr)
        return 2
    try:
        finished = run_experiment(design, project, dry_run=args.dry_run or args.aggregate_only, only=args.only)
    except UnknownRunPattern as error:  # refused before any work
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.dry_run or not finished:
        return 0
    output = project / design.output
    per_run, summary = aggregate_results(finished)
    per_run.to_csv(output / "results_per_run.csv", index=False)
    summary.to_csv(output / "results_summary.csv", index=False)
    stage_table(finished).to_csv(output / "results_stages.csv", index=False)
    paired = paired_differences(per_run)
    paired.to_csv(output / "results_paired.csv", index=False)
    (output / "results_summary.md").write_text(mean_spread_markdown(summary, paired))
    results_figure(per_run).savefig(output / "results.png", dpi=110)
    paired_figure(per_run).savefig(output / "results_paired.png", dpi=110)
    curve = curve_table(finished)
    if not curve.empty:
        curve.to_csv(output / "results_curve.csv", index=False)
        curve_figure(curve, [v.name for v in design.variants]).savefig(output / "results_curve.png", dpi=110)
    print(summary.to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
