"""Tables (mean, spread, n per variant x student x method; paired differences per protocol; the baseline's curve)
and figures from the finished runs.

Two protocols are read off each run, whose baseline is one long run kept every S steps (S: the path's steps per
hop): *equal compute* compares the path's student with the baseline at N x S steps (method ``baseline``), the
*one-hop* protocol (TAKD's, most likely the paper's: every hop and the baseline trained the same schedule) with the
baseline at S steps (method ``baseline_1hop``)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from .runner import DONE  # noqa: E402

METRICS = ("world_score", "psnr_vs_teacher_db", "attention_alignment_with_teacher", "hps_v2")
RATIO_TO_TEACHER = ("world_score", "attention_alignment_with_teacher", "hps_v2")  # PSNR has no teacher value


def results_table_folder(folder: Path) -> Path:
    """The run's versioned ``results_table`` dataset: ``data/08_reporting/results.csv`` in base, under the world's
    folder in a world env (``data/08_reporting/world_v5/results.csv``, conf/<env>/globals.yml). Found on disk, not
    through the run's catalog: a finished run kept in git is only its DONE.json and this table, without its conf."""
    found = sorted(p for p in (folder / "data" / "08_reporting").glob("**/results.csv") if p.is_dir())
    if len(found) != 1:
        raise FileNotFoundError(f"run {folder}: expected one versioned results.csv under data/08_reporting, found "
                                f"{[str(p.relative_to(folder)) for p in found] or 'none'}")
    return found[0]


def newest_results(folder: Path) -> pd.DataFrame:
    versions = sorted(results_table_folder(folder).iterdir())
    return pd.read_csv(versions[-1] / "results.csv")


PROTOCOLS = {"baseline": "equal compute (baseline N x S steps)",
             "baseline_1hop": "one hop (baseline S steps, as each hop: TAKD / paper)"}


def stage_steps(spec: dict) -> int | None:
    """S, the run's steps per hop (written into every run by the runner), or None for runs from before."""
    try:
        return int(spec["params"]["distill_stage"]["stage"]["distillation"]["steps"])
    except (KeyError, TypeError):
        return None


def _model_rows(folder: Path) -> tuple[dict, pd.DataFrame, dict[str, pd.Series]]:
    """(run spec, results table, the models each method compares: path student, baseline, baseline at S)."""
    spec = json.loads((folder / DONE).read_text())
    table = newest_results(folder)
    models = {"path": table[table["role"] == "student"].iloc[0], "baseline": table[table["role"] == "baseline"].iloc[0]}
    steps = stage_steps(spec)
    if spec.get("n_stages") == 1:
        models["baseline_1hop"] = models["baseline"]  # one stage: the baseline trains exactly one hop's steps
    elif "curve_step" in table and steps is not None:
        at_hop = table[(table["role"] == "baseline_curve") & (table["curve_step"] == steps)]
        if len(at_hop):
            models["baseline_1hop"] = at_hop.iloc[0]
    return spec, table, models


def run_rows(folder: Path) -> list[dict]:
    """Per finished run: the path's student and the baseline under both protocols, each metric also as a share of
    the teacher's."""
    spec, table, models = _model_rows(folder)
    teacher = table[table["role"] == "teacher"].iloc[0]
    rows = []
    for method, model in models.items():
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
    return per_run, mean_std_over_seeds(per_run, ["variant", "student", "method"], values)


def mean_std_over_seeds(table: pd.DataFrame, keys: list[str], values: list[str]) -> pd.DataFrame:
    """``<value>_mean`` and ``<value>_std`` per group of ``keys`` (groups in order of appearance), and n_seeds."""
    grouped = table.groupby(keys, sort=False)[values]
    summary = grouped.agg(["mean", "std"])
    summary.columns = [f"{metric}_{stat}" for metric, stat in summary.columns]
    summary["n_seeds"] = grouped.size()
    return summary.reset_index()


def stage_table(folders: list[Path]) -> pd.DataFrame:
    """Every model of every run (teacher, each assistant, student, baseline), averaged over seeds per variant x
    student x model: where along the path fidelity to the teacher is lost."""
    rows = []
    for folder in folders:
        spec = json.loads((folder / DONE).read_text())
        for model in newest_results(folder).to_dict("records"):
            rows.append({"variant": spec["variant"], "student": spec["student"], "model": model["model"],
                         "unet_params": model["unet_params"], "psnr_vs_teacher_db": model["psnr_vs_teacher_db"],
                         "attention_alignment_with_teacher": model["attention_alignment_with_teacher"]})
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    return mean_std_over_seeds(table, ["variant", "student", "model"],
                               ["unet_params", "psnr_vs_teacher_db", "attention_alignment_with_teacher"])


def path_minus_baseline(per_run: pd.DataFrame, metrics, baseline: str = "baseline") -> pd.DataFrame:
    """One row per run (variant, student, seed): each metric of the path's student minus the ``baseline``
    method's (``baseline``: equal compute; ``baseline_1hop``: the one-hop protocol)."""
    keys = ["variant", "student", "seed"]
    path = per_run[per_run["method"] == "path"].set_index(keys)[list(metrics)]
    other = per_run[per_run["method"] == baseline].set_index(keys)[list(metrics)]
    return (path - other).dropna(how="all").reset_index()


def paired_differences(per_run: pd.DataFrame) -> pd.DataFrame:
    """Path minus baseline within each run (same seed and data), per protocol x variant x student: mean and
    spread of the difference and in how many seeds the path is ahead -- the comparison the claim is about."""
    metrics = [m for m in ("world_score", "psnr_vs_teacher_db", "attention_alignment_with_teacher", "hps_v2")
               if m in per_run and per_run[m].notna().any()]
    rows = []
    for baseline, protocol in PROTOCOLS.items():
        if baseline not in set(per_run["method"]):
            continue
        rows += _paired_rows(path_minus_baseline(per_run, metrics, baseline).dropna(how="all", subset=metrics),
                             metrics, protocol)
    return pd.DataFrame(rows)


def _paired_rows(difference: pd.DataFrame, metrics: list[str], protocol: str) -> list[dict]:
    rows = []
    for (variant, student), group in difference.groupby(["variant", "student"], sort=False):
        row = {"protocol": protocol, "variant": variant, "student": student, "n_seeds": len(group)}
        for metric in metrics:
            row[f"{metric}_diff_mean"] = group[metric].mean()
            row[f"{metric}_diff_std"] = group[metric].std()
            row[f"{metric}_path_ahead"] = f"{int((group[metric] > 0).sum())}/{int(group[metric].notna().sum())}"
        rows.append(row)
    return rows


CURVE_METRICS = ("world_score", "psnr_vs_teacher_db", "attention_alignment_with_teacher")


def curve_table(folders: list[Path]) -> pd.DataFrame:
    """The baseline along its one run (every S steps up to N x S) next to the path's student, per variant x student x
    baseline steps, mean and std over seeds: where each protocol sits on the baseline's curve. A point a run lacks
    is taken from another run that trained the same baseline job (``_fill_from_same_jobs``)."""
    runs = []
    for folder in folders:
        spec, table, models = _model_rows(folder)
        steps = stage_steps(spec)
        if steps is None:
            continue
        teacher = table[table["role"] == "teacher"].iloc[0]
        points = {int(r["curve_step"]): r for _, r in table[table["role"] == "baseline_curve"].iterrows()}
        points[steps * int(spec["n_stages"])] = models["baseline"]
        runs.append({"spec": spec, "hop_steps": steps, "teacher": teacher, "path": models["path"],
                     "points": {step: {m: float(row[m]) for m in CURVE_METRICS} for step, row in points.items()}})
    _fill_from_same_jobs(runs)
    rows = []
    for run in runs:
        spec, teacher, path = run["spec"], run["teacher"], run["path"]
        base = {"variant": spec["variant"], "student": spec["student"], "seed": spec["seed"]}
        for step, point in sorted(run["points"].items()):
            rows.append({**base, "baseline_steps": step, **point,
                         "world_score_of_teacher": point["world_score"] / float(teacher["world_score"]),
                         "path_world_score_of_teacher": float(path["world_score"]) / float(teacher["world_score"]),
                         **{f"path_{m}": float(path[m]) for m in CURVE_METRICS}, "hop_steps": run["hop_steps"]})
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    values = [c for c in table.columns if c not in ("variant", "student", "seed", "baseline_steps", "hop_steps")]
    summary = mean_std_over_seeds(table, ["variant", "student", "baseline_steps", "hop_steps"], values)
    return summary.sort_values(["variant", "student", "baseline_steps"], kind="stable").reset_index(drop=True)


def _fill_from_same_jobs(runs: list[dict]) -> None:
    """Runs of one student, seed and S train the same baseline job (the runner shares its checkpoints, so an N = 3
    run resumes N = 2's at 2 x S), but a run that resumed a finished shorter job has no measurement at that job's
    old last step (its snapshot was never taken; the trainer takes it on resume since, for later runs). Such a point
    is taken from a run that measured it -- only when the two agree on every point they both measured, i.e. they
    really are one job evaluated the same way -- and never past the run's own N x S."""
    for run in runs:
        key = (run["spec"]["student"], run["spec"]["seed"], run["hop_steps"])
        last = max(run["points"])
        for other in runs:
            if other is run or (other["spec"]["student"], other["spec"]["seed"], other["hop_steps"]) != key:
                continue
            shared = set(run["points"]) & set(other["points"])
            if shared and all(math.isclose(run["points"][s][m], other["points"][s][m], rel_tol=1e-9)
                              for s in shared for m in CURVE_METRICS):
                for step, point in other["points"].items():
                    if step < last and step not in run["points"]:
                        run["points"][step] = point


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


def mean_spread_markdown(summary: pd.DataFrame, paired: pd.DataFrame) -> str:
    """The summary in the paper's shape (one row per student x method, 'mean ± std' cells, ratios to the
    teacher), then the paired path-minus-baseline differences."""
    shown = [("unet_params", "params", 0), ("world_score", "world score", 3),
             ("world_score_of_teacher", "world / teacher", 3), ("psnr_vs_teacher_db", "PSNR vs teacher dB", 1),
             ("attention_alignment_with_teacher", "attn alignment", 3), ("hps_v2", "HPS v2", 4),
             ("hps_v2_of_teacher", "HPS v2 / teacher", 3)]
    shown = [(key, title, digits) for key, title, digits in shown if f"{key}_mean" in summary]
    header = ["variant", "student", "method", "seeds"] + [title for _, title, _ in shown]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in summary.itertuples(index=False):
        row = row._asdict()
        cells = [row["variant"], row["student"], row["method"], str(row["n_seeds"])]
        for key, _, digits in shown:
            mean, std = row[f"{key}_mean"], row[f"{key}_std"]
            cells.append("unavailable" if pd.isna(mean) else
                         f"{mean:,.{digits}f}" + ("" if pd.isna(std) or key == "unet_params" else f" ± {std:.{digits}f}"))
        lines.append("| " + " | ".join(cells) + " |")
    if not paired.empty:
        metrics = [c[: -len("_diff_mean")] for c in paired.columns if c.endswith("_diff_mean")]
        header = ["protocol", "variant", "student", "seeds"] + [f"{m}: path - baseline (path ahead)" for m in metrics]
        lines += ["", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for row in paired.to_dict("records"):
            cells = [row["protocol"], row["variant"], row["student"], str(row["n_seeds"])]
            cells += [f"{row[f'{m}_diff_mean']:+.4f}"
                      + ("" if pd.isna(row[f"{m}_diff_std"]) else f" ± {row[f'{m}_diff_std']:.4f}")
                      + f" ({row[f'{m}_path_ahead']})" for m in metrics]
            lines.append("| " + " | ".join(cells) + " |")
    if "hps_v2_mean" in summary and summary["hps_v2_mean"].isna().all():
        lines += ["", "HPS v2: unavailable in every run (no local checkpoint: set evaluate.hps_checkpoint; each run's "
                      "results.md gives the reason)."]
    return "\n".join(lines) + "\n"


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
