"""The whole path: its shape, its parameter checks, and a micro end-to-end run through a real KedroSession."""

import json

import pytest
from diffusers import UNet2DConditionModel
from kedro.framework.session import KedroSession

from delta_diff.architecture import count_params
from delta_diff.pipelines.path.pipeline import path_pipeline

from tests.conftest import MICRO, PROJECT_ROOT, latest, write_two_stage_path


def test_path_shape_chains_stages_and_keeps_the_baseline_apart():
    pipeline = path_pipeline(3)
    names = {node.name for node in pipeline.nodes}
    for stage in ("stage_1", "stage_2"):
        assert {f"{stage}.search_architecture", f"{stage}.distill"} <= names
    assert "stage_3.distill" in names and "stage_3.search_architecture" not in names
    assert "baseline.distill" in names
    stage_2_search = next(n for n in pipeline.nodes if n.name == "stage_2.prepare_search")
    assert "stage_1.student_pipeline" in stage_2_search.inputs  # the chain teacher -> TA1 -> TA2
    baseline = next(n for n in pipeline.nodes if n.name == "baseline.distill")
    assert "embedded_teacher" in baseline.inputs


@pytest.mark.parametrize(
    "bad,message",
    [({"path": {"budgets": [0.8]}}, "path.budgets has 1 entries"),
     ({"path": {"budgets": [0.6, 0.8]}}, "strictly decreasing"),
     ({"path": {"student": {"preset": None}}}, "exactly one of preset and genome"),
     ({"path": {"n_stages": 0}}, "n_stages"),
     ({"path": {"n_stages": 2}}, "built with 3 stages"),
     ({"distill_stage": {"baseline": {"distillation": {"steps": 5}}}}, "the baseline must get the path's total"),
     ({"distill_stage": {"baseline": {"distillation": {"snapshot_every": 100}}}},
      "baseline.distillation.snapshot_every is 100 but the path's stages train 300"),
     ({"distill_stage": {"baseline": {"distillation": {"learning_rate": 1e-3}}}},
      r"baseline.distillation.learning_rate is 0.001 but distill_stage.stage.distillation.learning_rate is 0.0005"),
     ({"distill_stage": {"stage": {"distillation": {"seed": 3}}}}, "must train alike"),
     ({"path": {"student": {"preset": None, "genome": "111"}}}, "path.student.genome is '111', which the teacher")],
)
def test_bad_path_parameters_fail_before_any_node(kedro_project, bad, message):
    with KedroSession.create(project_path=kedro_project, runtime_params=bad) as session:
        with pytest.raises(Exception, match=message):
            session.run(pipeline_names=["__default__"])
    assert not (kedro_project / "data" / "05_model_input").exists()


@pytest.mark.slow
def test_two_stage_path_runs_end_to_end_with_nested_architectures(kedro_project):
    write_two_stage_path(kedro_project)
    with KedroSession.create(project_path=kedro_project, runtime_params=MICRO) as session:
        session.run(pipeline_names=["__default__"])
    data = kedro_project / "data"
    plan = json.loads(latest(data / "07_model_output" / "path_plan.json").read_text())
    chosen = json.loads(latest(data / "07_model_output" / "stage_1" / "chosen_architecture.json").read_text())
    assert plan["student_params"] < chosen["params"] <= plan["budgets"][0] < plan["teacher_params"]
    # nested: the assistant removes only units the student also removes
    assert all(not c or s == "1" for c, s in zip(map(int, chosen["genome"]), plan["student"]))
    student = UNet2DConditionModel.from_pretrained(latest(data / "06_models" / "stage_2" / "distilled_unet"))
    baseline = UNet2DConditionModel.from_pretrained(latest(data / "06_models" / "baseline" / "distilled_unet"))
    assert count_params(dict(student.config)) == count_params(dict(baseline.config)) == plan["student_params"]
    results = latest(data / "08_reporting" / "results.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in results[1:]] == ["teacher", "stage_1", "stage_2", "baseline", "baseline_at_2"]
    # the baseline's one run, kept at one hop's steps too (the paper's protocol), measured like every model
    (curve,) = (latest(data / "06_models" / "baseline" / "curve_unets")).iterdir()
    assert curve.name == "step_000002" and (curve / "diffusion_pytorch_model.safetensors").is_file()
    markdown = latest(data / "08_reporting" / "results.md").read_text()
    assert "HPS v2: unavailable" in markdown
    for figure in ("comparison_grid.png", "attention_maps.png", "path_plot.png"):
        assert latest(data / "08_reporting" / figure).stat().st_size > 0

    # the finished run, read back from the project's MLflow backend
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{kedro_project}/mlflow.db")
    experiment = client.get_experiment_by_name("delta-diff")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED"
    assert "evaluate.stage_2.world_score" in run.data.metrics and "kedro.save_version" in run.data.tags
    assert run.data.metrics["profile.stage_2.distill"] > 0 and "profile.peak_rss_mb" in run.data.metrics
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "results")}
    assert {"results/results.md", "results/path_plot.png"} <= artifacts

    # the review notebook, executed headless against this finished run
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(PROJECT_ROOT / "notebooks" / "review_last_run.ipynb", as_version=4)
    NotebookClient(notebook, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(kedro_project)}}).execute()
    outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs]
    printed = "".join(o.get("text", "") or o.get("data", {}).get("text/plain", "") for o in outputs)
    assert sum("image/png" in o.get("data", {}) for o in outputs) == 3  # the three figures
    assert f"run {run.info.run_id} FINISHED" in printed
    assert "path_plot: version" in printed and "stage_2" in printed

    # a broken path resumes: as if the run died in stage_2's distillation (nothing of it or after it was written),
    # rerun with --only-missing-outputs; finished stages and the baseline are not retrained
    import shutil

    lost = ["06_models/stage_2/distilled_unet", "06_models/stage_2/student_pipeline",
            "08_reporting/stage_2/distill_history.csv", "08_reporting/stage_2/validation_samples.png",
            *(f"08_reporting/{name}" for name in ("results.csv", "results.md", "evaluation_notes.json",
                                                  "comparison_grid.png", "attention_maps.png", "path_plot.png"))]
    for path in lost:
        shutil.rmtree(data / path)
    with KedroSession.create(project_path=kedro_project, runtime_params=MICRO) as session:
        session.run(pipeline_names=["__default__"], only_missing_outputs=True)
    for finished in ("stage_1", "baseline"):
        assert len(list((data / "06_models" / finished / "distilled_unet").iterdir())) == 1, finished
    for path in lost:
        assert len(list((data / path).iterdir())) == 1, path

    # one stage alone, as `kedro run --namespaces stage_2`: it reads stage_1's saved model and redoes only itself
    with KedroSession.create(project_path=kedro_project, runtime_params=MICRO) as session:
        session.run(pipeline_names=["__default__"], namespaces=["stage_2"])
    assert len(list((data / "06_models" / "stage_2" / "distilled_unet").iterdir())) == 2
    assert len(list((data / "06_models" / "stage_1" / "distilled_unet").iterdir())) == 1
    assert len(list((data / "08_reporting" / "results.csv").iterdir())) == 1  # evaluate is not in stage_2


def test_a_stage_whose_parent_already_fits_its_budget_is_replanned_in_equal_steps():
    from delta_diff.pipelines.path.nodes import plan_stage

    plan = {"teacher_config": {}, "student": "s", "student_params": 1_500_000, "n_stages": 4,
            "budgets": [2_800_000, 2_400_000, 1_950_000]}
    kept = plan_stage(2, plan, {"genome": "g", "params": 2_600_000})
    assert kept["budget"] == kept["planned_budget"] == 2_400_000
    # stage_1 landed at 2.3M, under stage_2's 2.4M: the 0.8M left go in 3 equal steps
    replanned = plan_stage(2, plan, {"genome": "g", "params": 2_300_000})
    assert replanned["budget"] == 2_300_000 - 800_000 // 3 and replanned["planned_budget"] == 2_400_000
