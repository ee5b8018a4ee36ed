"""The experiment's figures, drawn from ``aggregate``'s tables: each run's metrics side by side (``results.png``),
the paired path-minus-baseline differences per protocol (``results_paired.png``) and the baseline along its one
long run against the path's student (``results_curve.png``)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # files only: the experiment runs headless
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from .aggregate import PROTOCOLS, path_minus_baseline  # noqa: E402


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


def curve_figure(curve: pd.DataFrame, metrics=("world_score_of_teacher", "psnr_vs_teacher_db",
                                               "attention_alignment_with_teacher")):
    """Per variant x student (rows) and metric (columns): the baseline's mean over seeds against its steps, a band
    of one std, the path's student as a dashed line; the one-hop (S) and equal-compute (N x S) points marked."""
    labels = list(dict.fromkeys(zip(curve["variant"], curve["student"])))
    figure, axes = plt.subplots(len(labels), len(metrics), figsize=(4.2 * len(metrics), 2.8 * len(labels)),
                                squeeze=False)
    for i, (variant, student) in enumerate(labels):
        part = curve[(curve["variant"] == variant) & (curve["student"] == student)]
        x = part["baseline_steps"]
        for ax, metric in zip(axes[i], metrics):
            mean, std = part[f"{metric}_mean"], part[f"{metric}_std"].fillna(0.0)
            ax.plot(x, mean, "o-", color="tab:red", label="baseline (one run)")
            ax.fill_between(x, mean - std, mean + std, color="tab:red", alpha=0.15)
            path = part[f"path_{metric}_mean"].iloc[0]
            ax.axhline(path, color="tab:blue", linestyle="--", label="path's student")
            ax.axvline(part["hop_steps"].iloc[0], color="grey", linewidth=0.8, linestyle=":")
            ax.axvline(x.max(), color="grey", linewidth=0.8, linestyle=":")
            ax.set_title(f"{variant} / {student}: {metric}", fontsize=8)
            ax.set_xlabel("baseline steps (dotted: one hop S, equal compute N x S)", fontsize=7)
        axes[i][0].legend(fontsize=7)
    figure.tight_layout()
    return figure
