"""A claim experiment's results as the README's Markdown tables, read from the aggregates that
``python -m delta_diff.experiments <design> --aggregate-only`` writes, so the README's numbers come from the files
and not from hand copying.

Tables (mean ± std over seeds):
- **paired**: path minus baseline within each run, one-hop protocol (baseline at S, as every hop) then equal compute
  (baseline at N x S), with in brackets the runs where the path is ahead (``results_paired.csv``);
- **curve**: the single-step baseline at S, 2S, ... and each variant's path student, as score over the teacher,
  PSNR to the teacher and attention alignment (``results_curve.csv``): where each protocol sits on the baseline's
  curve. A baseline point that several variants trained (one job per student and seed: an N = 3 run resumes the
  N = 2 run's baseline) is read from the variant with the fewest stages that has it;
- **stages**: every model along each path and the baseline at S and at N x S, as "score / teacher, dB, alignment"
  (``results_stages.csv``);
- **attributes** (``--attributes``): each prompt attribute's accuracy, per student: the teacher, the baseline at
  each point of its curve and every variant's path student -- which part of the prompt the students miss;
- **against** (``--against OTHER_FOLDER``): the runs both experiments hold (same variant, student and seed), one row
  per run and experiment, so the same design at two S (steps per hop) is read side by side, run by run
  (``results_per_run.csv`` and ``results_curve.csv`` of each).

Usage, from the project root:

    .venv/bin/python benchmarks/claim_tables.py data/09_experiments/claim_v7 --attributes
    .venv/bin/python benchmarks/claim_tables.py data/09_experiments/claim_v7_s3600 --against data/09_experiments/claim_v7
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import pandas as pd

from delta_diff.experiments.aggregate import (
    baseline_curve_per_student, n_stages_per_variant, variants_by_preference)

STUDENT_NAMES = {"bk-sdm-base": "Base", "bk-sdm-small": "Small", "bk-sdm-tiny": "Tiny"}
PAIRED_METRICS = (("world_score", 3), ("psnr_vs_teacher_db", 2), ("attention_alignment_with_teacher", 3))
CURVE_METRICS = (("world_score_of_teacher", 3), ("psnr_vs_teacher_db", 2), ("attention_alignment_with_teacher", 3))


def _student(name: str) -> str:
    return STUDENT_NAMES.get(name, name)


def _cell(mean: float, std: float, digits: int, sign: bool = False) -> str:
    """"mean ± std"; the mean alone for one seed (no spread)."""
    text = f"{mean:+.{digits}f}" if sign else f"{mean:.{digits}f}"
    return text if pd.isna(std) else f"{text} ± {std:.{digits}f}"


def _variant_label(variant: str, n_stages: dict[str, int]) -> str:
    return variant if variant.startswith("path_n") or variant not in n_stages else f"{variant} (N{n_stages[variant]})"


def paired_table(paired: pd.DataFrame, curve: pd.DataFrame) -> str:
    """One-hop rows first (the paper's protocol), then equal compute; the first row of each names S."""
    hop = _hop_steps(curve)
    n_stages = n_stages_per_variant(curve)
    lines = ["| protocol | variant | student | seeds | world score | PSNR vs teacher dB | attn alignment |",
             "|---|---|---|---:|---:|---:|---:|"]
    for prefix, first_label, label in (("one hop", f"one hop (baseline S = {hop:,})", "one hop"),
                                       ("equal compute", f"equal compute (baseline N x {hop:,})", "equal compute")):
        rows = paired[paired["protocol"].str.startswith(prefix)]
        for index, row in enumerate(rows.to_dict("records")):
            cells = [first_label if index == 0 else label, _variant_label(row["variant"], n_stages),
                     _student(row["student"]), str(row["n_seeds"])]
            cells += [_cell(row[f"{m}_diff_mean"], row[f"{m}_diff_std"], digits, sign=True)
                      + f" ({row[f'{m}_path_ahead']})" for m, digits in PAIRED_METRICS]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def curve_table(curve: pd.DataFrame, design_order: list[str]) -> str:
    n_stages = n_stages_per_variant(curve)
    hop = _hop_steps(curve)
    baseline = baseline_curve_per_student(curve, design_order)
    lines = ["| student | model | seeds | world score / teacher | PSNR vs teacher dB | attn alignment |",
             "|---|---|---:|---:|---:|---:|"]
    for student, group in curve.groupby("student", sort=False):
        for row in baseline[baseline["student"] == student].to_dict("records"):
            steps = int(row["baseline_steps"])
            cells = [_student(student), f"baseline, {steps:,} steps ({_multiple_of_hop(steps, hop)})",
                     str(int(row["n_seeds"]))]
            cells += [_cell(row[f"{m}_mean"], row[f"{m}_std"], digits) for m, digits in CURVE_METRICS]
            lines.append("| " + " | ".join(cells) + " |")
        for variant in variants_by_preference(group["variant"].unique(), n_stages, design_order):
            row = group[group["variant"] == variant].iloc[0]
            cells = [_student(student), f"{variant} student ({n_stages[variant]} hops x S)", str(int(row["n_seeds"]))]
            cells += [_cell(row[f"path_{m}_mean"], row[f"path_{m}_std"], digits) for m, digits in CURVE_METRICS]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _model_cell(row: pd.Series, suffix: str = "_mean") -> str:
    """"score / teacher's / dB / alignment" of one model: its means over seeds (``_mean``) or one run's (``""``)."""
    return (f"{row['world_score_of_teacher' + suffix]:.3f} / {row['psnr_vs_teacher_db' + suffix]:.1f} / "
            f"{row['attention_alignment_with_teacher' + suffix]:.3f}")


def _hop_steps(curve: pd.DataFrame) -> int:
    """S, the steps per hop, of the experiment whose ``results_curve.csv`` this is."""
    return int(curve["hop_steps"].iloc[0])


def _multiple_of_hop(steps: int, hop: int) -> str:
    """"S", "2S", ...: a baseline point as a multiple of the steps per hop."""
    return "S" if steps == hop else f"{steps // hop}S"


def stage_table(stages: pd.DataFrame) -> str:
    """Per variant x student: each stage and the baseline at S and at N x S, "score / teacher / dB / alignment"
    (means over seeds), the assistants with their parameter count (a mean over seeds: each seed's search picks
    its own)."""
    stage_numbers = sorted({int(m.split("_")[1]) for m in stages["model"] if re.fullmatch(r"stage_\d+", m)})
    header = [f"stage_{n}" for n in stage_numbers]
    lines = ["| variant | student | " + " | ".join(header) + " | baseline at S | baseline at N x S |",
             "|---|---|" + "---|" * (len(header) + 2)]
    for (variant, student), group in stages.groupby(["variant", "student"], sort=False):
        models = group.set_index("model")
        last = max(int(m.split("_")[1]) for m in models.index if re.fullmatch(r"stage_\d+", m))
        cells = [variant, _student(student)]
        for n in stage_numbers:
            if f"stage_{n}" not in models.index:  # a shorter path than the longest
                cells.append("")
                continue
            row = models.loc[f"stage_{n}"]
            cells.append(f"{_model_cell(row)} ({'student' if n == last else format(row['unet_params_mean'], ',.0f')})")
        at_hop = [m for m in models.index if m.startswith("baseline_at_")]
        first = min(at_hop, key=lambda m: int(m.removeprefix("baseline_at_"))) if at_hop else None
        cells += [_model_cell(models.loc[m]) if m in models.index else "" for m in (first, "baseline")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def attribute_tables(stages: pd.DataFrame, curve: pd.DataFrame, design_order: list[str]) -> str:
    """Per student, one row per attribute: the teacher's accuracy, the baseline's at each of its points, every
    variant's path student's."""
    n_stages = n_stages_per_variant(curve)
    hop = _hop_steps(curve)
    attributes = [c.removesuffix("_accuracy_mean") for c in stages.columns if c.endswith("_accuracy_mean")]
    tables = []
    for student, group in stages.groupby("student", sort=False):
        order = variants_by_preference(group["variant"].unique(), n_stages, design_order)
        columns = {"teacher": group[group["model"] == "teacher"].iloc[0]}
        points = {}
        for variant in order:
            models = group[group["variant"] == variant].set_index("model")
            for model, row in models.iterrows():
                steps = n_stages[variant] * hop if model == "baseline" else \
                    int(model.removeprefix("baseline_at_")) if model.startswith("baseline_at_") else None
                if steps is not None and steps not in points:
                    points[steps] = row
        for steps in sorted(points):
            columns[f"baseline {_multiple_of_hop(steps, hop)}"] = points[steps]
        for variant in order:
            models = group[group["variant"] == variant].set_index("model")
            columns[f"{variant} student"] = models.loc[f"stage_{n_stages[variant]}"]
        lines = [f"| {_student(student)}: attribute | " + " | ".join(columns) + " |",
                 "|---|" + "---:|" * len(columns)]
        for attribute in attributes:
            lines.append(f"| {attribute} | " + " | ".join(f"{row[f'{attribute}_accuracy_mean']:.3f}"
                                                          for row in columns.values()) + " |")
        tables.append("\n".join(lines))
    return "\n\n".join(tables)


def _difference_cell(path: pd.Series, baseline: pd.Series) -> str:
    return " / ".join(f"{path[m] - baseline[m]:+.{digits}f}" for m, digits in PAIRED_METRICS)


def against_table(experiments: list[tuple[pd.DataFrame, int]]) -> str:
    """``experiments``: (results_per_run, S) of each experiment; the runs all of them hold, run by run, each
    experiment's row under the other's."""
    keys = ["variant", "student", "seed"]
    shared = set.intersection(*(set(map(tuple, per_run[keys].drop_duplicates().values)) for per_run, _ in experiments))
    if not shared:
        raise ValueError("the experiments hold no run in common (same variant, student and seed)")
    lines = ["| variant | student | seed | S | path student | baseline at S | baseline at N x S | one hop: path - "
             "baseline | equal compute: path - baseline |", "|---|---|---:|---:|---|---|---|---|---|"]
    first = experiments[0][0]
    order = [run for run in map(tuple, first[keys].drop_duplicates().values) if run in shared]
    for variant, student, seed in order:
        for per_run, hop in experiments:
            run = per_run[(per_run["variant"] == variant) & (per_run["student"] == student) & (per_run["seed"] == seed)]
            method = run.set_index("method")
            path, at_hop, at_total = (method.loc[m] for m in ("path", "baseline_1hop", "baseline"))
            cells = [variant, _student(student), str(seed), f"{hop:,}",
                     *(_model_cell(model, "") for model in (path, at_hop, at_total)),
                     _difference_cell(path, at_hop), _difference_cell(path, at_total)]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="an experiment's output folder (e.g. data/09_experiments/claim_v7)")
    parser.add_argument("--attributes", action="store_true", help="also print the per-attribute tables")
    parser.add_argument("--against", type=Path, metavar="OTHER_FOLDER",
                        help="also print the runs both experiments hold side by side (e.g. the same design at "
                             "another S)")
    args = parser.parse_args(argv)
    try:
        paired, curve, stages = (pd.read_csv(args.folder / f"results_{name}.csv")
                                 for name in ("paired", "curve", "stages"))
        design_order = list(dict.fromkeys(paired["variant"]))  # the aggregates keep the design's order here
        tables = [paired_table(paired, curve), curve_table(curve, design_order), stage_table(stages)]
        if args.attributes:
            tables.append(attribute_tables(stages, curve, design_order))
        if args.against:
            experiments = [(pd.read_csv(args.folder / "results_per_run.csv"), _hop_steps(curve)),
                           (pd.read_csv(args.against / "results_per_run.csv"),
                            _hop_steps(pd.read_csv(args.against / "results_curve.csv")))]
            tables.append(against_table(experiments))
    except (OSError, ValueError, KeyError, IndexError, StopIteration) as error:
        folders = f"{args.folder}{' or ' + str(args.against) if args.against else ''}"
        print(f"error: {folders} holds no complete claim aggregates ({error!r}); write them with "
              "`python -m delta_diff.experiments <design> --aggregate-only`", file=sys.stderr)
        return 2
    print("\n\n".join(tables))
    return 0


if __name__ == "__main__":
    sys.exit(main())
