"""The experiment's figures, drawn from ``aggregate``'s tables: each run's metrics side by side (``results.png``),
the paired path-minus-baseline differences per protocol (``results_paired.png``) and, per student, the baseline
along its one long run against every variant's path student (``results_curve.png``)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # files only: the experiment runs headless
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from .aggregate import (  # noqa: E402
    PROTOCOLS, baseline_curve_per_student, n_stages_per_variant, path_minus_baseline, variants_by_preference)


def results_figure(per_run: pd.DataFrame, metrics=("world_score_of_teacher", "psnr_vs_teacher_db",
                                                     "attention_alignment_with_teacher")):
    """Each metric per variant x student: path and baseline side by side, every seed a dot, the mean a bar."""
    labels = list(dict.fromkeys(zip(per_run["variant"], per_run["student"])))
    figure, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 0.5 * len(labels) + 2.5), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        methods = [m for m in (("path", "tab:blue"), ("baseline_1hop", "tab:orange"), ("baseline", "tab:red"))
                   if m[0] in set(per_run["method"])]
        for offset, (method, colour) in enumerate(methods):
            for i, (variant, student) in enumerate(labels):
                values = per_run[(per_run["variant"] == variant) & (per_run["student"] == student)
                                 & (per_run["method"] == method)][metric].dropna()
                if values.empty:
                    continue
                y = i + (offset - (len(methods) - 1) / 2) * 0.7 / len(methods)
                ax.barh(y, values.mean(), height=0.66 / len(methods), color=colour, alpha=0.35,
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


def paired_figure(per_run: pd.DataFrame, metrics=("world_score", "psnr_vs_teacher_db",
                                                  "attention_alignment_with_teacher")):
    """Path minus baseline per run, one row per variant x student, one colour per protocol: right of the zero
    line, the path is ahead."""
    protocols = [(b, colour) for b, colour in (("baseline", "tab:purple"), ("baseline_1hop", "tab:orange"))
                 if b in set(per_run["method"])]
    differences = {b: path_minus_baseline(per_run, metrics, b) for b, _ in protocols}
    labels = list(dict.fromkeys(zip(differences["baseline"]["variant"], differences["baseline"]["student"])))
    figure, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 0.45 * len(labels) + 2.2), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        for offset, (baseline, colour) in enumerate(protocols):
            difference = differences[baseline]
            for i, (variant, student) in enumerate(labels):
                values = difference[(difference["variant"] == variant) & (difference["student"] == student)][metric]
                values = values.dropna()
                if values.empty:
                    continue
                y = i + 0.2 * offset
                ax.plot(values, [y] * len(values), "o", color=colour, alpha=0.6, markersize=4,
                        label=PROTOCOLS[baseline] if i == 0 else None)
                ax.plot([values.mean()], [y], "|", color="black", markersize=14, markeredgewidth=2)
        ax.axvline(0.0, color="grey", linewidth=1)
        ax.set_yticks(range(len(labels)), [f"{v}\n{s}" for v, s in labels], fontsize=7)
        ax.set_title(f"{metric}: path - baseline", fontsize=9)
    axes[0][0].legend(fontsize=7)
    figure.suptitle("Each dot one seed (same data); bar: mean. Right of zero: the path is ahead.", fontsize=9)
    figure.tight_layout()
    return figure


MARKERS = ("s", "D", "^", "v", "P", "X")  # one marker and colour per variant; red is the baseline's
COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:purple", "tab:brown", "tab:olive")
CURVE_TITLES = {"world_score_of_teacher": "world score / teacher's", "psnr_vs_teacher_db": "PSNR to the teacher (dB)",
                "attention_alignment_with_teacher": "attention alignment with the teacher"}


def curve_figure(curve: pd.DataFrame, design_order: list[str] | None = None,
                 metrics=("world_score_of_teacher", "psnr_vs_teacher_db", "attention_alignment_with_teacher")):
    """Per student (rows) and metric (columns): the single-step baseline against its steps (mean over seeds, a band
    of one std; one curve per student, ``baseline_curve_per_student``), and each variant's path student at its
    total steps N x S (mean, error bar one std). The path student against the curve's first point is the one-hop
    protocol; against the curve straight below it, equal compute."""
    n_stages = n_stages_per_variant(curve)
    baseline = baseline_curve_per_student(curve, design_order or [])
    students = list(dict.fromkeys(curve["student"]))
    hop = int(curve["hop_steps"].iloc[0])
    figure, axes = plt.subplots(len(students), len(metrics), figsize=(4.6 * len(metrics) + 1.8, 3.4 * len(students)),
                                squeeze=False)
    for i, student in enumerate(students):
        points = baseline[baseline["student"] == student]
        variants = variants_by_preference(curve[curve["student"] == student]["variant"].unique(), n_stages,
                                          design_order or [])
        for ax, metric in zip(axes[i], metrics):
            x, mean = points["baseline_steps"], points[f"{metric}_mean"]
            std = points[f"{metric}_std"].fillna(0.0)
            ax.plot(x, mean, "o-", color="tab:red", label="single-step baseline")
            ax.fill_between(x, mean - std, mean + std, color="tab:red", alpha=0.15)
            ax.axhline(mean.iloc[0], color="tab:red", linewidth=0.8, linestyle="--",
                       label="baseline at S (the one-hop protocol)")
            for k, variant in enumerate(variants):
                row = curve[(curve["student"] == student) & (curve["variant"] == variant)].iloc[0]
                # side by side around N x S, so students of the same N do not hide each other
                at = n_stages[variant] * hop + (k - (len(variants) - 1) / 2) * 0.04 * hop
                ax.errorbar([at], [row[f"path_{metric}_mean"]], yerr=[0.0 if pd.isna(row[f"path_{metric}_std"])
                                                                     else row[f"path_{metric}_std"]],
                            fmt=MARKERS[k % len(MARKERS)], color=COLOURS[k % len(COLOURS)], capsize=3,
                            label=f"{variant} student")
            ax.axvline(hop, color="grey", linewidth=0.8, linestyle=":")
            ax.set_title(f"{student}: {CURVE_TITLES.get(metric, metric)}", fontsize=9)
            ax.set_xlabel(f"distillation steps (S = {hop:,} per hop; a path student at N x S)", fontsize=7)
        # right of the row, not inside a panel: inside, it covered the path students' points
        axes[i][-1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.03, 1.0))
    figure.suptitle(f"The baseline along its run and each path's student (mean ± std over seeds, at most "
                    f"{int(curve['n_seeds'].max())}): "
                    "one hop = the curve's first point, equal compute = the curve below the student", fontsize=9)
    figure.tight_layout()
    return figure
