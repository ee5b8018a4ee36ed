import json

import pandas as pd
import pytest
import yaml
from pydantic import ValidationError

from delta_diff.experiments import ExperimentDesign, aggregate_results, expand_runs, results_figure
from delta_diff.experiments.aggregate import mean_spread_markdown, paired_differences, paired_figure, stage_table
from delta_diff.experiments.design import BASELINE_STEPS, STAGE_STEPS, nest
from delta_diff.experiments.run_folder import make_run_folder
from delta_diff.experiments.runner import DONE, base_stage_steps

from tests.conftest import MICRO, PROJECT_ROOT


def test_the_shipped_claim_design_expands_to_every_variant_student_and_seed():
    design = ExperimentDesign(**yaml.safe_load((PROJECT_ROOT / "conf/base/experiment_claim.yml").read_text())["experiment"])
    runs = expand_runs(design, base_stage_steps(PROJECT_ROOT))
    assert len(runs) == (2 + 1 + 1 + 1 + 1) * 3 and len({r.name for r in runs}) == len(runs)
    tiny_n4 = next(r for r in runs if r.variant == "path_n4" and r.seed == 2)
    assert tiny_n4.params["path"] == {"n_stages": 4, "student": {"preset": "bk-sdm-tiny"}}
    assert tiny_n4.params["distill_stage"]["baseline"]["distillation"]["seed"] == 2


def test_each_run_writes_out_its_baselines_total_steps():
    """Kedro resolves base's derived total before a run's overrides merge, so the runner writes it out."""
    design = ExperimentDesign(name="x", output="o", seeds=[0], seed_params=[], variants=[
        {"name": "n2", "students": ["bk-sdm-tiny"], "n_stages": 2},
        {"name": "n4", "students": ["bk-sdm-tiny"], "n_stages": 4, "params": {STAGE_STEPS: 50}},
        {"name": "fixed", "students": ["bk-sdm-tiny"], "n_stages": 3, "params": {BASELINE_STEPS: 7}}])
    steps = {run.variant: run.params["distill_stage"]["baseline"]["distillation"]["steps"]
             for run in expand_runs(design, base_stage_steps=300)}
    assert steps == {"n2": 600, "n4": 200, "fixed": 7}


def test_bad_designs_are_named():
    with pytest.raises(ValidationError, match="unknown students"):
        ExperimentDesign(name="x", output="o", seeds=[0], seed_params=[],
                         variants=[{"name": "a", "students": ["bk-sdm-huge"], "n_stages": 2}])
    with pytest.raises(ValueError, match="would replace a whole group"):
        nest({"a.b": 1, "a": 2})


def test_a_run_folder_gets_its_own_conf_data_and_mlflow(tmp_path):
    folder = make_run_folder(PROJECT_ROOT, tmp_path / "run", {"path": {"n_stages": 2}})
    assert yaml.safe_load((folder / "conf/local/parameters.yml").read_text()) == {"path": {"n_stages": 2}}
    assert f"sqlite:///{folder.resolve()}/mlflow.db" in (folder / "conf/base/mlflow.yml").read_text()
    assert (folder / "data/06_models/embedded_teacher").is_symlink()
    make_run_folder(PROJECT_ROOT, folder, {"path": {"n_stages": 3}})  # again: refreshed, not duplicated
    assert yaml.safe_load((folder / "conf/local/parameters.yml").read_text()) == {"path": {"n_stages": 3}}


def fake_run(root, name, variant, seed, student_score, baseline_score):
    folder = root / name
    results = folder / "data/08_reporting/results.csv/2026-01-01T00.00.00.000Z"
    results.mkdir(parents=True)
    pd.DataFrame([
        {"model": "teacher", "role": "teacher", "unet_params": 10, "world_score": 0.8,
         "psnr_vs_teacher_db": float("nan"), "attention_alignment_with_teacher": 1.0},
        {"model": "stage_2", "role": "student", "unet_params": 5, "world_score": student_score,
         "psnr_vs_teacher_db": 20.0, "attention_alignment_with_teacher": 0.7},
        {"model": "baseline", "role": "baseline", "unet_params": 5, "world_score": baseline_score,
         "psnr_vs_teacher_db": 22.0, "attention_alignment_with_teacher": 0.6},
    ]).to_csv(results / "results.csv", index=False)
    (folder / DONE).write_text(json.dumps({"variant": variant, "student": "bk-sdm-tiny", "seed": seed}))
    return folder


def test_aggregation_gives_mean_spread_and_ratio_to_the_teacher(tmp_path):
    folders = [fake_run(tmp_path, f"r{s}", "path_n2", s, 0.6 + 0.1 * s, 0.4) for s in range(3)]
    per_run, summary = aggregate_results(folders)
    assert len(per_run) == 6
    path = summary[summary["method"] == "path"].iloc[0]
    assert path["world_score_mean"] == pytest.approx(0.7) and path["world_score_std"] == pytest.approx(0.1)
    assert path["world_score_of_teacher_mean"] == pytest.approx(0.7 / 0.8) and path["n_seeds"] == 3
    results_figure(per_run).savefig(tmp_path / "results.png")
    assert (tmp_path / "results.png").stat().st_size > 0


def test_paired_differences_compare_path_and_baseline_within_each_seed(tmp_path):
    # path 0.6/0.7/0.8 against baselines 0.65/0.65/0.65: ahead in 2 of 3 seeds, mean +0.05
    folders = [fake_run(tmp_path, f"r{s}", "path_n2", s, 0.6 + 0.1 * s, 0.65) for s in range(3)]
    per_run, summary = aggregate_results(folders)
    (row,) = paired_differences(per_run).to_dict("records")
    assert row["world_score_diff_mean"] == pytest.approx(0.05) and row["world_score_diff_std"] == pytest.approx(0.1)
    assert row["world_score_path_ahead"] == "2/3" and row["psnr_vs_teacher_db_path_ahead"] == "0/3"
    markdown = mean_spread_markdown(summary, paired_differences(per_run))
    assert "| path_n2 | bk-sdm-tiny | path | 3 | 5 | 0.700 ± 0.100 | 0.875 ± 0.125 |" in markdown
    assert "+0.0500 ± 0.1000 (2/3)" in markdown
    stages = stage_table(folders)
    assert list(stages["model"]) == ["teacher", "stage_2", "baseline"] and (stages["n_seeds"] == 3).all()
    paired_figure(per_run).savefig(tmp_path / "paired.png")
    assert (tmp_path / "paired.png").stat().st_size > 0


@pytest.mark.slow
def test_a_micro_experiment_runs_resumes_and_aggregates(tmp_path, monkeypatch):
    """One real `kedro run` in its own folder; started again, the finished run is skipped."""
    from delta_diff.experiments.__main__ import main

    project = make_run_folder(PROJECT_ROOT, tmp_path / "project")
    micro = {f"{top}.{key}": value for top, group in MICRO.items() for key, value in _flatten(group).items()}
    design = {"experiment": {"name": "micro", "output": "data/09_experiments/micro", "seeds": [0],
                             "seed_params": ["distill_stage.stage.distillation.seed"], "params": micro,
                             "variants": [{"name": "path_n2", "students": ["bk-sdm-tiny"], "n_stages": 2}]}}
    (project / "micro.yml").write_text(yaml.safe_dump(design))
    monkeypatch.chdir(project)
    assert main(["micro.yml"]) == 0
    output = project / "data/09_experiments/micro"
    summary = pd.read_csv(output / "results_summary.csv")
    assert set(summary["method"]) == {"path", "baseline"} and (summary["n_seeds"] == 1).all()
    assert (output / "results.png").is_file() and (output / "results_summary.md").is_file()
    assert len(pd.read_csv(output / "results_paired.csv")) == 1
    (run,) = (output / "runs").iterdir()
    stamp = (run / DONE).stat().st_mtime
    assert main(["micro.yml"]) == 0
    assert (run / DONE).stat().st_mtime == stamp  # skipped, not rerun


def _flatten(group, prefix=""):
    flat = {}
    for key, value in group.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat
