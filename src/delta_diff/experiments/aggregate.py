"""One table (mean, spread, n per variant x student x method) and one figure from the finished runs."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from .runner import DONE  # noqa: E402

METRICS = ("world_score", "psnr_vs_teacher_db", "attention_alignment_with_teacher", "hps_v2")
RATIO_TO_TEACHER = ("world_score", "attention_alignment_with_teacher", "hps_v2")  # PSNR has no teacher value


def newest_results(folder: Path) -> pd.DataFrame:
    versions = sorted((folder / "data" / "08_reporting" / "results.csv").iterdir())
    return pd.read_csv(versions[-1] / "results.csv")


def run_rows(folder: Path) -> list[dict]:
    """Per finished run: the path's student and the baseline, each metric also as a share of the teacher's."""
    spec = json.loads((folder / DONE).read_text())
    table = newest_results(folder)
    teacher = table[table["role"] == "teacher"].iloc[0]
    rows = []
    for method, role in (("path", "student"), ("baseline", "baseline")):
        model = table[table["role"] == role].iloc[0]
        row = {"variant": spec["variant"], "student": spec["student"], "seed": spec["seed"], "method": method,
               "unet_params": int(model["unet_params"])}
        for metric in METRICS:
            if metric in model:
                row[metric] = float(model[metric])
                if metric in RATIO_TO_TEACHER:
                    row[f"{metric}_of_teacher"] = float(model[metric]) / float(teacher[metric])
        rows.append(row)
    return rows


def aggregate_results(folders: list[Path]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per-run rows, summary with mean / std / n per variant x student x method)."""
    per_run = pd.DataFrame([row for folder in folders for row in run_rows(folder)])
    if per_run.empty:
        return per_run, per_run
    values = [c for c in per_run.columns if c not in ("variant", "student", "seed", "method")]
    grouped = per_run.groupby(["variant", "student", "method"], sort=False)[values]
    summary = grouped.agg(["mean", "std"])
    summary.columns = [f"{metric}_{stat}" for metric, stat in summary.columns]
    summary["n_seeds"] = grouped.size()
    return per_run, summary.reset_index()


def results_figure(per_run: pd.DataFrame, metrics=("world_score_of_teacher", "psnr_vs_teacher_db",
                                                     "attention_alignment_with_teacher")):
    """Each metric per variant x student: path and baseline side by side, every seed a dot, the mean a bar."""
    labels = list(dict.fromkeys(zip(per_run["variant"], per_run["student"])))
    figure, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 0.5 * len(labels) + 2.5), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        for offset, (method, colour) in enumerate((("path", "tab:blue"), ("baseline", "tab:red"))):
            for i, (variant, student) in enumerate(labels):
                values = per_run[(per_run["variant"] == variant) & (per_run["student"] == student)
                                 & (per_run["method"] == method)][metric].dropna()
                if values.empty:
                    continue
                y = i + (offset - 0.5) * 0.35
                ax.barh(y, values.mean(), height=0.33, color=colour, alpha=0.35,
                        label=method if i == 0 else None)
                ax.plot(values, [y] * len(values), "o", color=colour, markersize=3)
        ax.set_yticks(range(len(labels)), [f"{v}\n{s}" for v, s in labels], fontsize=7)
        ax.set_title(metric, fontsize=9)
        lows = per_run[metric].dropna()
        if not lows.empty:
            ax.set_xlim(lows.min() - 0.05 * abs(lows.min()), lows.max() + 0.02 * abs(lows.max()))
    axes[0][0].legend(fontsize=8)
    figure.tight_layout()
    return figure
