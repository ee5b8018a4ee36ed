"""Figures of one architecture search: surrogate fit, convergence, and the population in Phi-Theta space."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # figures are files, never windows (CI, servers)
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402


def surrogate_fit_figure(out_of_fold: pd.DataFrame, report: dict):
    figure, ax = plt.subplots(figsize=(4.6, 4.2))
    points = ax.scatter(out_of_fold["distilled_score"], out_of_fold["predicted"], c=out_of_fold["phi"], cmap="viridis")
    low = min(out_of_fold["distilled_score"].min(), out_of_fold["predicted"].min())
    high = max(out_of_fold["distilled_score"].max(), out_of_fold["predicted"].max())
    ax.plot([low, high], [low, high], "--", color="gray", lw=1)
    quality = report["surrogate"]
    ax.set_title(f"surrogate, {report['folds']}-fold out-of-fold\nKendall {quality['kendall_tau']:.2f}, "
                 f"Spearman {quality['spearman_rho']:.2f}, RMSE {quality['rmse']:.3f}", fontsize=9)
    ax.set_xlabel("measured score after short distillation")
    ax.set_ylabel("surrogate estimate")
    figure.colorbar(points, label="Phi (semantic similarity)")
    figure.tight_layout()
    return figure


def convergence_figure(history: pd.DataFrame):
    figure, ax = plt.subplots(figsize=(5, 3.4))
    ax.plot(history["generation"], history["best"], marker="o", label="best")
    ax.plot(history["generation"], history["mean"], marker=".", label="mean of this round's real evaluations")
    ax.set_xlabel("generation (surrogate-assisted: round of real evaluations)")
    ax.set_ylabel("estimated distilled score")
    ax.legend()
    evaluations = int(history["real_evaluations"].iloc[-1]) if "real_evaluations" in history and len(history) else None
    ax.set_title("search convergence" + (f" ({evaluations} real proxy evaluations)" if evaluations else ""), fontsize=9)
    figure.tight_layout()
    return figure


def population_figure(evaluated: pd.DataFrame, chosen_genome: str):
    figure, ax = plt.subplots(figsize=(5, 4))
    points = ax.scatter(evaluated["phi"], evaluated["theta"], c=evaluated["estimate"], cmap="plasma", s=22)
    chosen = evaluated[evaluated["genome"] == chosen_genome]
    ax.scatter(chosen["phi"], chosen["theta"], marker="*", s=220, facecolor="none", edgecolor="black", label="chosen")
    ax.set_xlabel("Phi (semantic similarity to parent)")
    ax.set_ylabel("Theta (image metric, before distillation)")
    ax.legend(loc="lower right")
    figure.colorbar(points, label="surrogate estimate")
    ax.set_title("evaluated candidates", fontsize=9)
    figure.tight_layout()
    return figure


def exhaustive_figure(table: pd.DataFrame):
    """When every feasible architecture was distilled: measured score against Phi, no surrogate involved."""
    figure, ax = plt.subplots(figsize=(4.6, 3.6))
    ax.scatter(table["phi"], table["distilled_score"])
    for _, row in table.iterrows():
        ax.annotate(str(row.get("removed", "")), (row["phi"], row["distilled_score"]), fontsize=6)
    ax.set_xlabel("Phi (semantic similarity to parent)")
    ax.set_ylabel("measured score after short distillation")
    ax.set_title(f"all {len(table)} feasible architectures distilled (no surrogate needed)", fontsize=9)
    figure.tight_layout()
    return figure
