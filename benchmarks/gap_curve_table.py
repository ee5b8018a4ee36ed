"""A world's knowledge-gap curve as the README's Markdown tables, read from the record ``benchmarks/gap_curve.py``
wrote, so the README's numbers come from the file and not from hand copying.

Two tables: the Tiny baseline's world score over its teacher's at every snapshot (mean ± std over seeds, search and
eval prompts, as ``gap_curve.py``'s summary has them), and, with ``--attributes``, each attribute's accuracy on the
eval prompts at the first and the last snapshot next to the teacher's: which part of the prompt the student misses.
Usage, from the project root:

    .venv/bin/python benchmarks/gap_curve_table.py data/08_reporting/world_v7/gap_curve.json --attributes
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

SPLITS = (("search", "search prompts"), ("eval", "eval prompts"))


def curve_table(record: dict) -> str:
    """Steps across, one row per prompt split: "mean ± std" of the score over the teacher's."""
    summary = record["summary"]
    steps = sorted(summary, key=int)
    lines = ["| Tiny baseline steps | " + " | ".join(steps) + " |", "|---|" + "---:|" * len(steps)]
    for split, label in SPLITS:
        cells = [_mean_std(summary[s][f"{split}_score_over_teacher_mean"], summary[s][f"{split}_score_over_teacher_std"])
                 for s in steps]
        lines.append(f"| {label}, score / teacher | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _mean_std(mean: float, std: float | None) -> str:
    """"mean ± std"; the mean alone for one seed (gap_curve.py writes no std then)."""
    return f"{mean:.3f}" if std is None else f"{mean:.3f} ± {std:.3f}"


def attribute_table(record: dict) -> str:
    """One row per attribute: the teacher's eval accuracy and the student's (mean over seeds) at the first and the
    last snapshot."""
    teacher = record["teacher_score"]["eval"]
    steps = sorted({int(s["steps"]) for s in record["students"]})
    shown = [steps[0], steps[-1]] if len(steps) > 1 else steps
    attributes = sorted(k[: -len("_accuracy")] for k in teacher if k.endswith("_accuracy"))
    header = "| attribute (eval prompts) | teacher | " + " | ".join(f"Tiny, {s} steps" for s in shown) + " |"
    lines = [header, "|---|---:|" + "---:|" * len(shown)]
    for attribute in attributes:
        cells = []
        for s in shown:
            values = [row[f"eval_{attribute}_accuracy"] for row in record["students"] if int(row["steps"]) == s]
            cells.append(f"{statistics.fmean(values):.3f}")
        lines.append(f"| {attribute} | {teacher[f'{attribute}_accuracy']:.3f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("record", type=Path, help="a gap_curve.json written by benchmarks/gap_curve.py")
    parser.add_argument("--attributes", action="store_true", help="also print the per-attribute table")
    args = parser.parse_args(argv)
    try:
        record = json.loads(args.record.read_text())
        tables = [curve_table(record)] + ([attribute_table(record)] if args.attributes else [])
    except (OSError, ValueError, KeyError, TypeError, IndexError) as error:
        print(f"error: {args.record} is not a gap curve written by benchmarks/gap_curve.py ({error!r})", file=sys.stderr)
        return 2
    print("\n\n".join(tables))
    return 0


if __name__ == "__main__":
    sys.exit(main())
