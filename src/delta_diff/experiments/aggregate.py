"""Tables (mean, spread, n per variant x student x method; paired differences per protocol; the baseline's curve)
from the finished runs (their figures: ``figures``).

Two protocols are read off each run, whose baseline is one long run kept every S steps (S: the path's steps per
hop): *equal compute* compares the path's student with the baseline at N x S steps (method ``baseline``), the
*one-hop* protocol (TAKD's, most likely the paper's: every hop and the baseline trained the same schedule) with the
baseline at S steps (method ``baseline_1hop``)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from .runner import DONE

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
    student x model: where along the path fidelity to the teacher is lost, and -- on a world with a scorer -- its
    world score (also over the run's teacher's) and each attribute's accuracy: which part of the prompt is lost
    (world v7's gap is in the counts)."""
    rows = []
    for folder in folders:
        spec = json.loads((folder / DONE).read_text())
        table = newest_results(folder)
        teacher_score = float(table.loc[table["role"] == "teacher", "world_score"].iloc[0]) \
            if "world_score" in table else float("nan")
        accuracies = [c for c in table.columns if c.endswith("_accuracy")]
        for model in table.to_dict("records"):
            row = {"variant": spec["variant"], "student": spec["student"], "model": model["model"],
                   "unet_params": model["unet_params"], "psnr_vs_teacher_db": model["psnr_vs_teacher_db"],
                   "attention_alignment_with_teacher": model["attention_alignment_with_teacher"]}
            if "world_score" in model:
                row["world_score"] = model["world_score"]
                row["world_score_of_teacher"] = model["world_score"] / teacher_score
            rows.append(row | {c: model[c] for c in accuracies})
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    values = [c for c in table.columns if c not in ("variant", "student", "model")]
    return mean_std_over_seeds(table, ["variant", "student", "model"], values)


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


def n_stages_per_variant(curve: pd.DataFrame) -> dict[str, int]:
    """N per variant of a ``curve_table``: its baseline's last point over its steps per hop."""
    return {variant: int(group["baseline_steps"].max() // group["hop_steps"].iloc[0])
            for variant, group in curve.groupby("variant", sort=False)}


def variants_by_preference(variants, n_stages: dict[str, int], design_order: list[str]) -> list[str]:
    """Fewest stages first; among equals the plain paths (``path_nN``) before the ablations, then the design's
    order: the variant a shared baseline point is read from (it has the most seeds soonest)."""
    rank = {v: i for i, v in enumerate(design_order)}
    return sorted(variants, key=lambda v: (n_stages.get(v, 99), not v.startswith("path_n"), rank.get(v, len(rank))))


def baseline_curve_per_student(curve: pd.DataFrame, design_order: list[str]) -> pd.DataFrame:
    """One baseline curve per student from a ``curve_table``: the runs of one student and seed train one baseline
    job (an N = 3 run resumes N = 2's), so each point is read from the preferred variant that has it
    (``variants_by_preference``), rather than repeated once per variant. Columns as ``curve_table``'s, plus
    ``source_variant``."""
    n_stages = n_stages_per_variant(curve)
    rows = []
    for student, group in curve.groupby("student", sort=False):
        order = variants_by_preference(group["variant"].unique(), n_stages, design_order)
        for steps in sorted(group["baseline_steps"].unique()):
            at = group[group["baseline_steps"] == steps]
            source = next(v for v in order if v in set(at["variant"]))
            rows.append({**at[at["variant"] == source].iloc[0].to_dict(), "source_variant": source})
    return pd.DataFrame(rows)


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
