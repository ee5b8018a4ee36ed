import json
import os
import shutil

import pandas as pd
import pytest
import yaml
from pydantic import ValidationError

from delta_diff.experiments import ExperimentDesign, aggregate_results, expand_runs, results_figure
from delta_diff.experiments.aggregate import (
    baseline_curve_per_student, curve_table, mean_spread_markdown, n_stages_per_variant, paired_differences,
    stage_table, variants_by_preference)
from delta_diff.experiments.figures import curve_figure, paired_figure
from delta_diff.experiments.design import BASELINE_STEPS, STAGE_STEPS, nest
from delta_diff.experiments.run_folder import make_run_folder
from delta_diff.experiments.runner import (DONE, THREADS_UNSET, UnknownRunPattern, base_stage_steps,
                                           run_experiment)
from delta_diff.project_config import load_project_config
from delta_diff.world import WorldSpec

from tests.conftest import MICRO, PROJECT_ROOT, project_config


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
    runs = expand_runs(design, base_stage_steps=300)
    steps = {run.variant: run.params["distill_stage"]["baseline"]["distillation"]["steps"] for run in runs}
    assert steps == {"n2": 600, "n4": 200, "fixed": 7}
    # and keeps its student every stage's steps: the one-hop protocol's baseline, from the same run
    kept = {run.variant: run.params["distill_stage"]["baseline"]["distillation"]["snapshot_every"] for run in runs}
    assert kept == {"n2": 300, "n4": 50, "fixed": 300}


def test_bad_designs_are_named():
    with pytest.raises(ValidationError, match="unknown students"):
        ExperimentDesign(name="x", output="o", seeds=[0], seed_params=[],
                         variants=[{"name": "a", "students": ["bk-sdm-huge"], "n_stages": 2}])
    with pytest.raises(ValueError, match="would replace a whole group"):
        nest({"a.b": 1, "a": 2})
    # a path and a baseline trained unalike are not a comparison
    unfair = [({"seed_params": ["distill_stage.stage.distillation.seed"]},
               "has distill_stage.stage.distillation.seed but not distill_stage.baseline.distillation.seed"),
              ({"params": {"distill_stage.baseline.distillation.learning_rate": 1e-3}},
               "baseline.distillation.learning_rate is 0.001 but distill_stage.stage.distillation.learning_rate is "
               "left at the base value")]
    for change, message in unfair:
        design = {"name": "x", "output": "o", "seeds": [0], "seed_params": [],
                  "variants": [{"name": "a", "students": ["bk-sdm-tiny"], "n_stages": 2}], **change}
        with pytest.raises(ValidationError, match=message):
            ExperimentDesign(**design)


def test_a_run_folder_gets_its_own_conf_data_and_mlflow(tmp_path):
    folder = make_run_folder(PROJECT_ROOT, tmp_path / "run", {"path": {"n_stages": 2}})
    assert yaml.safe_load((folder / "conf/local/parameters.yml").read_text()) == {"path": {"n_stages": 2}}
    assert f"sqlite:///{folder.resolve()}/mlflow.db" in (folder / "conf/base/mlflow.yml").read_text()
    assert (folder / "data/06_models/embedded_teacher").is_symlink()
    # every world's shipped teacher and scorer, whatever its name, and nothing else of the project's data
    shipped = sorted(p.name for p in (PROJECT_ROOT / "data/06_models").iterdir()
                     if p.name.startswith(("embedded_teacher", "world_scorer")))
    assert {"embedded_teacher_v7", "world_scorer_v7"} <= set(shipped)
    linked = sorted(p.name for p in (folder / "data/06_models").iterdir() if p.is_symlink())
    assert linked == shipped
    assert (folder / "data/01_raw/sd_v1_4_unet_config.json").is_symlink()
    make_run_folder(PROJECT_ROOT, folder, {"path": {"n_stages": 3}})  # again: refreshed, not duplicated
    assert yaml.safe_load((folder / "conf/local/parameters.yml").read_text()) == {"path": {"n_stages": 3}}


def test_a_run_folder_keeps_its_worlds_vocabulary_in_the_order_the_teacher_was_trained_with(tmp_path):
    """A world's vocabulary order is meaning (world v7: the first group is the one whose colour comes first); a run
    folder once wrote its parameters with sorted keys, and world v7's claim runs drew their prompts and training
    images in another order than its teacher's."""
    folder = make_run_folder(PROJECT_ROOT, tmp_path / "run", {"evaluate": {"n_prompts": 8}}, env="world_v7")
    in_run = load_project_config(folder / "conf", "parameters", "local")["world"]
    in_env = load_project_config(PROJECT_ROOT / "conf", "parameters", "world_v7")["world"]
    assert list(in_run["colours"]) == list(in_env["colours"])
    assert WorldSpec(**in_run).model_dump_json() == WorldSpec(**in_env).model_dump_json()


def fake_run(root, name, variant, seed, student_score, baseline_score, curve=None, world_folder="", n_stages=None):
    """A finished run's results; ``curve``: {step: world score} of the baseline along its run (S = the first; N is
    one more than its points unless ``n_stages`` says);
    ``world_folder``: the reports' subfolder a world env puts them in (globals world.folder, e.g. "world_v5/")."""
    folder = root / name
    results = folder / f"data/08_reporting/{world_folder}results.csv/2026-01-01T00.00.00.000Z"
    results.mkdir(parents=True)
    curve_rows = [{"model": f"baseline_at_{step}", "role": "baseline_curve", "curve_step": step, "unet_params": 5,
                   "world_score": score, "psnr_vs_teacher_db": 18.0, "attention_alignment_with_teacher": 0.5}
                  for step, score in (curve or {}).items()]
    pd.DataFrame([
        {"model": "teacher", "role": "teacher", "unet_params": 10, "world_score": 0.8,
         "psnr_vs_teacher_db": float("nan"), "attention_alignment_with_teacher": 1.0},
        {"model": "stage_2", "role": "student", "unet_params": 5, "world_score": student_score,
         "psnr_vs_teacher_db": 20.0, "attention_alignment_with_teacher": 0.7},
        {"model": "baseline", "role": "baseline", "unet_params": 5, "world_score": baseline_score,
         "psnr_vs_teacher_db": 22.0, "attention_alignment_with_teacher": 0.6},
        *curve_rows,
    ]).to_csv(results / "results.csv", index=False)
    spec = {"variant": variant, "student": "bk-sdm-tiny", "seed": seed}
    if curve:
        spec.update(n_stages=n_stages or len(curve) + 1,
                    params={"distill_stage": {"stage": {"distillation": {"steps": min(curve)}}}})
    (folder / DONE).write_text(json.dumps(spec))
    return folder


def test_a_world_envs_runs_are_read_from_its_reports_subfolder(tmp_path):
    # conf/world_v5/globals.yml puts every report under data/08_reporting/world_v5/; the first claim_v5 run
    # found the aggregation reading only base's path
    folders = [fake_run(tmp_path, f"r{s}", "path_n2", s, 0.6, 0.4, world_folder="world_v5/") for s in range(2)]
    per_run, _ = aggregate_results(folders)
    assert sorted(per_run["seed"].unique()) == [0, 1]


def test_a_run_without_its_results_table_is_named(tmp_path):
    folder = fake_run(tmp_path, "r0", "path_n2", 0, 0.6, 0.4)
    shutil.rmtree(folder / "data/08_reporting/results.csv")
    with pytest.raises(FileNotFoundError, match="r0.*found none"):
        aggregate_results([folder])


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
    student = stages[stages["model"] == "stage_2"].iloc[0]  # world scores 0.6 / 0.7 / 0.8, the teacher's 0.8
    assert student["world_score_mean"] == pytest.approx(0.7) and student["world_score_of_teacher_mean"] == \
        pytest.approx(0.875)
    paired_figure(per_run).savefig(tmp_path / "paired.png")
    assert (tmp_path / "paired.png").stat().st_size > 0


def test_both_protocols_are_read_off_the_baselines_one_run(tmp_path):
    # the path 0.6/0.7/0.8; the baseline 0.5 at S = 100 steps (one hop), 0.6 at 200, 0.65 at N x S = 300
    folders = [fake_run(tmp_path, f"r{s}", "path_n3", s, 0.6 + 0.1 * s, 0.65, curve={100: 0.5, 200: 0.6})
               for s in range(3)]
    per_run, summary = aggregate_results(folders)
    assert set(per_run["method"]) == {"path", "baseline", "baseline_1hop"}
    paired = paired_differences(per_run).set_index("protocol")
    assert paired.loc["one hop (baseline S steps, as each hop: TAKD / paper)", "world_score_diff_mean"] == pytest.approx(0.2)
    assert paired.loc["one hop (baseline S steps, as each hop: TAKD / paper)", "world_score_path_ahead"] == "3/3"
    assert paired.loc["equal compute (baseline N x S steps)", "world_score_diff_mean"] == pytest.approx(0.05)
    curve = curve_table(folders)
    assert list(curve["baseline_steps"]) == [100, 200, 300] and (curve["n_seeds"] == 3).all()
    assert list(curve["world_score_mean"]) == pytest.approx([0.5, 0.6, 0.65])
    assert curve["path_world_score_mean"].iloc[0] == pytest.approx(0.7)
    assert "one hop (baseline S steps" in mean_spread_markdown(summary, paired_differences(per_run))
    curve_figure(curve).savefig(tmp_path / "curve.png")
    paired_figure(per_run).savefig(tmp_path / "paired.png")
    results_figure(per_run).savefig(tmp_path / "results.png")
    assert all((tmp_path / f).stat().st_size > 0 for f in ("curve.png", "paired.png", "results.png"))


def test_a_curve_point_a_run_lacks_comes_from_the_run_that_trained_the_same_baseline_job(tmp_path):
    # world v5's N = 3 baselines resumed N = 2's finished jobs at 2 x S, so they lacked the 2 x S point: it is the
    # N = 2 run's final baseline (same student, seed, S; the same measurement at S shows it is the same job)
    n2 = fake_run(tmp_path, "n2", "path_n2", 0, 0.6, 0.6, curve={100: 0.5})            # baseline 0.6 at 200 steps
    n3 = fake_run(tmp_path, "n3", "path_n3", 0, 0.6, 0.65, curve={100: 0.5}, n_stages=3)  # 200 missing
    other_job = fake_run(tmp_path, "other", "path_n2", 1, 0.6, 0.9, curve={100: 0.55})  # another seed: not used
    curve = curve_table([n2, n3, other_job]).set_index(["variant", "baseline_steps"])
    n3_curve = curve.loc["path_n3"]
    assert list(n3_curve.index) == [100, 200, 300]
    assert n3_curve.loc[200, "world_score_mean"] == pytest.approx(0.6)
    assert n3_curve.loc[300, "world_score_mean"] == pytest.approx(0.65)  # its own final baseline, not overwritten
    # a run whose shared points disagree is another job: nothing is taken from it
    lone = fake_run(tmp_path, "lone", "path_n3", 0, 0.6, 0.65, curve={100: 0.45}, n_stages=3)
    assert list(curve_table([n2, lone]).query("variant == 'path_n3'")["baseline_steps"]) == [100, 300]


def test_each_student_has_one_baseline_curve_and_the_figure_puts_every_variants_student_beside_it(tmp_path):
    # two seeds of N = 2, one of N = 3 (an experiment stopped in its second seed): the 100- and 200-step points are
    # read from path_n2 (fewest stages, more seeds), the 300-step one from path_n3, the only variant that has it
    n2 = [fake_run(tmp_path, f"n2_{s}", "path_n2", s, 0.6, 0.6 + 0.1 * s, curve={100: 0.5}) for s in range(2)]
    n3 = fake_run(tmp_path, "n3_0", "path_n3", 0, 0.7, 0.65, curve={100: 0.5}, n_stages=3)
    curve = curve_table([*n2, n3])
    assert n_stages_per_variant(curve) == {"path_n2": 2, "path_n3": 3}
    baseline = baseline_curve_per_student(curve, ["path_n3", "path_n2"])
    assert list(baseline["baseline_steps"]) == [100, 200, 300]
    assert list(baseline["source_variant"]) == ["path_n2", "path_n2", "path_n3"]
    assert list(baseline["n_seeds"]) == [2, 2, 1]
    assert baseline["world_score_mean"].iloc[1] == pytest.approx(0.65)  # the N = 2 runs' finals, 0.6 and 0.7
    assert variants_by_preference(["target_teacher", "path_n3", "path_n2"], {"target_teacher": 3, "path_n3": 3,
                                  "path_n2": 2}, ["target_teacher", "path_n2", "path_n3"]) == \
        ["path_n2", "path_n3", "target_teacher"]
    figure = curve_figure(curve, ["path_n2", "path_n3"])
    axes = figure.axes
    assert len(axes) == 3  # one student x three metrics: one row, not one per variant
    assert [len(ax.containers) for ax in axes] == [2, 2, 2]  # each variant's student, with its error bar
    student_x = sorted(c.lines[0].get_xdata()[0] for c in axes[0].containers)
    assert student_x[0] == pytest.approx(200, abs=10) and student_x[1] == pytest.approx(300, abs=10)  # at N x S


@pytest.mark.slow
def test_a_micro_experiment_runs_resumes_and_aggregates(tmp_path, monkeypatch):
    """One real `kedro run` in its own folder; started again, the finished run is skipped."""
    from delta_diff.experiments.__main__ import main

    project = make_run_folder(PROJECT_ROOT, tmp_path / "project")
    micro = {f"{top}.{key}": value for top, group in MICRO.items() for key, value in _flatten(group).items()}
    design = {"experiment": {"name": "micro", "output": "data/09_experiments/micro", "seeds": [0],
                             "seed_params": ["distill_stage.stage.distillation.seed",
                                             "distill_stage.baseline.distillation.seed"], "params": micro,
                             "variants": [{"name": "path_n2", "students": ["bk-sdm-tiny"], "n_stages": 2}]}}
    (project / "micro.yml").write_text(yaml.safe_dump(design))
    monkeypatch.chdir(project)
    assert main(["micro.yml"]) == 0
    output = project / "data/09_experiments/micro"
    summary = pd.read_csv(output / "results_summary.csv")
    assert set(summary["method"]) == {"path", "baseline", "baseline_1hop"} and (summary["n_seeds"] == 1).all()
    assert (output / "results.png").is_file() and (output / "results_summary.md").is_file()
    assert len(pd.read_csv(output / "results_paired.csv")) == 2  # both protocols
    assert list(pd.read_csv(output / "results_curve.csv")["baseline_steps"]) == [2, 4]
    assert (output / "results_curve.png").is_file()
    (run,) = (output / "runs").iterdir()
    record = json.loads((run / DONE).read_text())
    assert record["wall_seconds"] > 0 and record["omp_num_threads"] == os.environ.get("OMP_NUM_THREADS", THREADS_UNSET)
    stamp = (run / DONE).stat().st_mtime
    assert main(["micro.yml"]) == 0
    assert (run / DONE).stat().st_mtime == stamp  # skipped, not rerun
    (output / "results_paired.csv").unlink()
    assert main(["micro.yml", "--aggregate-only"]) == 0  # the aggregates again, from the finished runs alone
    assert len(pd.read_csv(output / "results_paired.csv")) == 2 and (run / DONE).stat().st_mtime == stamp


def test_only_runs_the_selected_runs_but_aggregates_every_finished_one(tmp_path, caplog, capsys, monkeypatch):
    """A first look (`--only`) before a long experiment: the rest wait, runs done earlier still count."""
    design = ExperimentDesign(name="x", output=str(tmp_path / "out"), seeds=[0, 1], seed_params=[], variants=[
        {"name": "path_n2", "students": ["bk-sdm-small", "bk-sdm-tiny"], "n_stages": 2}])
    done = tmp_path / "out/runs/path_n2__bk-sdm-small__seed1"
    done.mkdir(parents=True)
    (done / DONE).write_text("{}")
    with caplog.at_level("INFO"):
        finished = run_experiment(design, PROJECT_ROOT, dry_run=True, only=["path_n2__bk-sdm-tiny__seed*"])
    assert finished == [done]
    would_run = [line for line in caplog.messages if "would run" in line]
    assert [line.split(":")[0].split("] ")[1] for line in would_run] == ["path_n2__bk-sdm-tiny__seed0",
                                                                          "path_n2__bk-sdm-tiny__seed1"]
    assert sum("not selected by --only" in line for line in caplog.messages) == 1  # small seed 0
    # a pattern that names no run is a typo: refused before any work, naming the pattern
    with pytest.raises(UnknownRunPattern, match=r"--only path_n2_tiny\* names none"):
        run_experiment(design, PROJECT_ROOT, dry_run=True, only=["path_n2__bk-sdm-tiny__seed0", "path_n2_tiny*"])
    # and from the command line, exit 2 with the message
    from delta_diff.experiments.__main__ import main

    (tmp_path / "design.yml").write_text(yaml.safe_dump({"experiment": design.model_dump()}))
    monkeypatch.chdir(PROJECT_ROOT)
    assert main([str(tmp_path / "design.yml"), "--dry-run", "--only", "path_n2_tiny*"]) == 2
    assert "names none of the design's runs" in capsys.readouterr().err


def _flatten(group, prefix=""):
    flat = {}
    for key, value in group.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def test_a_run_folder_in_another_env_holds_that_env_merged_with_the_overrides(tmp_path):
    folder = make_run_folder(PROJECT_ROOT, tmp_path / "run", {"distill_stage": {"stage": {"distillation": {"seed": 2}}}},
                             env="world_v2")
    parameters = yaml.safe_load((folder / "conf/local/parameters.yml").read_text())
    assert parameters["world"]["layout"] == "pair"  # conf/world_v2/parameters_teacher.yml
    assert parameters["distill_stage"]["stage"] == {"distillation": {"seed": 2}}
    # What a plain `kedro run` in the folder sees is what `--env world_v2` sees, plus the override.
    in_folder = {key: load_project_config(folder / "conf", key, "local") for key in ("catalog", "parameters")}
    assert in_folder["catalog"] == project_config("catalog", "world_v2")
    expected = project_config("parameters", "world_v2")
    expected["distill_stage"]["stage"]["distillation"]["seed"] = 2
    assert in_folder["parameters"] == expected
    assert in_folder["catalog"]["embedded_teacher"]["filepath"] == "data/06_models/embedded_teacher_v2"
    assert base_stage_steps(PROJECT_ROOT, "world_v2") == base_stage_steps(PROJECT_ROOT)
    with pytest.raises(ValueError, match="no conf/nowhere environment"):
        make_run_folder(PROJECT_ROOT, tmp_path / "other", env="nowhere")
