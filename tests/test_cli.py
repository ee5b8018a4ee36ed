"""`kedro run` refused for bad input ends with one line naming it; other errors keep their traceback."""

import os
import shutil
import subprocess
import sys

import pytest
import yaml

from delta_diff.cli import is_bad_input


def test_a_bad_setting_ends_the_run_with_one_line_and_the_traceback_in_the_log(kedro_project):
    run = subprocess.run([sys.executable, "-m", "kedro", "run", "--pipelines", "distill_stage", "--params",
                          "distill_stage.stage.distillation.steps=0"], cwd=kedro_project, capture_output=True,
                         text=True, env={**os.environ, "KEDRO_DISABLE_TELEMETRY": "1"})
    assert run.returncode == 1
    lines = run.stderr.strip().splitlines()[-2:]  # (MLflow may log its database set-up before)
    assert lines[0].startswith("error: ") and "distillation.steps" in lines[0], run.stderr[-2000:]
    assert "greater than or equal to 1" in lines[0] and "Traceback" not in run.stderr + run.stdout
    assert "Traceback" in (kedro_project / "logs" / "last_failure.log").read_text()
    assert not (kedro_project / "data" / "06_models" / "bk_sdm_small").exists()


def test_only_input_errors_raised_by_the_project_count_as_bad_input():
    from delta_diff.distill import DistillConfig

    try:
        DistillConfig(steps=0)
    except ValueError as error:
        assert is_bad_input(error)  # pydantic validating the project's model
    try:
        int("x")
    except ValueError as error:
        assert not is_bad_input(error)  # raised outside the project's code
    try:
        raise TypeError("a bug")
    except TypeError as error:
        assert not is_bad_input(error)


@pytest.mark.slow
def test_after_a_full_run_every_pipeline_and_every_stage_runs_alone_through_the_cli(kedro_project):
    """As a user would: `kedro run`, then `kedro run --pipelines NAME` for every registered pipeline and
    `kedro run --namespaces NS` for every stage of the path and the baseline, each its own process (Kedro loads a
    named pipeline lazily, and a node then sees only what that pipeline gives it: issue 16, defect 7)."""
    from delta_diff.experiments.run_folder import deep_merge
    from delta_diff.pipeline_registry import register_pipelines
    from tests.conftest import MICRO
    from tests.pipelines.test_teacher_pipeline import micro as micro_teacher

    stage_steps = MICRO["distill_stage"]["stage"]["distillation"]["steps"]
    two_stages = {"path": {"n_stages": 2}, "distill_stage": {"baseline": {"distillation": {
        "steps": 2 * stage_steps, "snapshot_every": stage_steps}}}}
    parameters = deep_merge(deep_merge(MICRO, two_stages), micro_teacher(kedro_project / "ckpt", 2))
    (kedro_project / "conf" / "local" / "parameters.yml").write_text(yaml.safe_dump(parameters))
    for name in ("embedded_teacher", "world_scorer"):  # the teacher pipeline must not write through the links
        link = kedro_project / "data" / "06_models" / name
        shipped = link.resolve()
        link.unlink()
        shutil.copytree(shipped, link)
    data = kedro_project / "data"

    def files():
        return {p.relative_to(data) for p in data.rglob("*") if p.is_file()}

    def kedro_run(*args) -> set:
        before = files()
        run = subprocess.run([sys.executable, "-m", "kedro", "run", *args], cwd=kedro_project, capture_output=True,
                             text=True, env={**os.environ, "KEDRO_DISABLE_TELEMETRY": "1"})
        assert run.returncode == 0, f"kedro run {' '.join(args)} failed:\n{run.stderr[-3000:]}"
        written = files() - before
        assert written, f"kedro run {' '.join(args)} wrote nothing"
        return written

    kedro_run()
    names = sorted(set(register_pipelines()) - {"__default__", "teacher"}) + ["teacher"]  # teacher replaces it
    assert set(names) >= {"data_prep", "architecture_search", "distill_stage", "evaluate"}
    for namespace in ("stage_1", "stage_2", "baseline"):
        written = kedro_run("--namespaces", namespace)
        assert all(namespace in path.parts for path in written), (namespace, sorted(map(str, written)))
    for name in names:
        kedro_run("--pipelines", name)
    results = sorted((data / "08_reporting" / "results.csv").iterdir())
    assert len(results) == 2  # the full run's and `--pipelines evaluate`'s (evaluate is in no stage namespace)
