"""Every world's knowledge-gap curve in one figure: the single-step BK-SDM-Tiny analogue's world score over its
teacher's on evaluate's held-out prompts, against its distillation steps, one line per world (mean over seeds, a
band of one std where there are several), with issue 15's bar (at most 0.95 of the teacher) drawn in.

Reads the curves ``benchmarks/gap_curve.py`` wrote (``data/08_reporting/world_v*/gap_curve*.json``) and prints the
plateau of each (the mean of its last three snapshots), so the README's "what each world gave" reads off one
picture. Usage, from the project root:

    .venv/bin/python benchmarks/gap_curves_figure.py --out data/08_reporting/gap_curves.png
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # a file, no display
import matplotlib.pyplot as plt  # noqa: E402

GAP_BAR = 0.95  # issue 15, Must 1: the Tiny baseline at most 0.95 of the teacher's score
PLATEAU_SNAPSHOTS = 3


def world_curve(record: dict) -> dict[int, list[float]]:
    """Steps -> each seed's eval score over the teacher's eval score (the teacher is one model: one value)."""
    teacher = record["teacher_score"]["eval"]["score"]
    curve: dict[int, list[float]] = {}
    for student in record["students"]:
        curve.setdefault(int(student["steps"]), []).append(student["eval_score"] / teacher)
    return dict(sorted(curve.items()))


def world_name(path: Path) -> str:
    match = re.search(r"world_v\d+", str(path))
    if match is None:
        raise ValueError(f"{path}: cannot tell the world from the path (expected .../world_vN/gap_curve*.json)")
    return match.group(0)


def plateau(curve: dict[int, list[float]]) -> float:
    last = list(curve.values())[-PLATEAU_SNAPSHOTS:]
    return statistics.fmean(statistics.fmean(seeds) for seeds in last)


def gap_curves_figure(curves: dict[str, tuple[dict, dict[int, list[float]]]]):
    """One line per world (label: world, params of teacher and student, number of seeds)."""
    figure, ax = plt.subplots(figsize=(7.5, 4.2))
    for name, (record, curve) in curves.items():
        steps = list(curve)
        means = [statistics.fmean(v) for v in curve.values()]
        spreads = [statistics.stdev(v) if len(v) > 1 else 0.0 for v in curve.values()]
        n_seeds = max(len(v) for v in curve.values())
        params = record["params"]
        line, = ax.plot(steps, means, "o-", markersize=3,
                        label=f"{name}: teacher {params['teacher'] / 1e6:.1f} M, Tiny {params['student'] / 1e6:.2f} M, "
                              f"{n_seeds} seed{'s' if n_seeds > 1 else ''}")
        if n_seeds > 1:
            ax.fill_between(steps, [m - s for m, s in zip(means, spreads)], [m + s for m, s in zip(means, spreads)],
                            color=line.get_color(), alpha=0.15)
    ax.axhline(GAP_BAR, color="black", linestyle="--", linewidth=1, label=f"issue 15's bar ({GAP_BAR} of the teacher)")
    ax.set_xlabel("single-step BK-SDM-Tiny analogue: distillation steps")
    ax.set_ylabel("world score / teacher's (held-out prompts)")
    ax.set_title("The knowledge gap each world leaves (below the bar: a gap to test the claim on)", fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    figure.tight_layout()
    return figure


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("curves", nargs="*", type=Path,
                        help="gap_curve.py's JSON files (default: data/08_reporting/world_v*/gap_curve*.json)")
    parser.add_argument("--out", type=Path, required=True, help="the figure to write (.png)")
    args = parser.parse_args(argv)
    paths = args.curves or sorted(Path("data/08_reporting").glob("world_v*/gap_curve*.json"))
    if not paths:
        parser.error("no gap curves found: pass their files, or run from the project root")
    curves = {}
    for path in sorted(paths, key=lambda p: int(world_name(p)[len("world_v"):])):
        try:
            record = json.loads(path.read_text())
            curves[world_name(path)] = (record, world_curve(record))
        except (OSError, json.JSONDecodeError, KeyError, TypeError, ZeroDivisionError) as error:
            print(f"error: {path} is not a gap_curve.py result ({type(error).__name__}: {error}); rerun "
                  "benchmarks/gap_curve.py for that world", file=sys.stderr)
            return 2
    for name, (_, curve) in curves.items():
        print(f"{name}: plateau (last {PLATEAU_SNAPSHOTS} snapshots) {plateau(curve):.3f} of the teacher; "
              f"at {min(curve)} steps {statistics.fmean(curve[min(curve)]):.3f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    partial = args.out.with_name(args.out.stem + ".partial" + args.out.suffix)
    gap_curves_figure(curves).savefig(partial, dpi=110)
    partial.replace(args.out)  # never a half-written figure under the real name
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
