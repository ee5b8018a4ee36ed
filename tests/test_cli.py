"""`kedro run` refused for bad input ends with one line naming it; other errors keep their traceback."""

import os
import subprocess
import sys

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
