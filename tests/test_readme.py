"""Every command README.md gives is exercised by a test (issue 16, Must 6).

``EXERCISED_BY`` names, for each command the README shows (in a code block or inline), the test that runs it or
runs what it runs at a micro size; the first test fails when the README gains a command no test covers, or names a
test that no longer exists. The commands no other test runs are run here, each as its own process."""

from __future__ import annotations

import ast
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT, SD_V1_4_CONFIG

HERE = "tests/test_readme.py"
CLI = "tests/test_cli.py::test_after_a_full_run_every_pipeline_and_every_stage_runs_alone_through_the_cli"
EXERCISED_BY = {
    'python3 -m venv .venv && .venv/bin/pip install -e ".[hps]" && .venv/bin/pip install --no-deps hpsv2x==1.2.0 '
    "&& KEDRO_DISABLE_TELEMETRY=1 .venv/bin/kedro run": CLI,  # its install is the test command's, less [test]
    'python3 -m venv .venv && .venv/bin/pip install -e ".[test,hps]" && .venv/bin/pip install --no-deps '
    "hpsv2x==1.2.0 && KEDRO_DISABLE_TELEMETRY=1 .venv/bin/python -m pytest":
        "tests/test_ci.py::test_ci_runs_the_readme_test_command",
    ".venv/bin/python -m delta_diff.architecture --unet-config data/01_raw/sd_v1_4_unet_config.json --preset "
    "bk-sdm-tiny": "tests/architecture/test_cli.py::test_preset_prints_bk_sdm_tiny_numbers",
    ".venv/bin/python -m delta_diff.architecture --unet-config path/to/sd-pipeline --genome mid,pair:0.1 "
    "--list-units": f"{HERE}::test_the_architecture_cli_reads_a_pipeline_folder_and_lists_its_units",
    ".venv/bin/python -m delta_diff.architecture --unet-config config.json --preset bk-sdm-small --output-config "
    "small.json": f"{HERE}::test_the_architecture_cli_writes_a_presets_unet_config",
    ".venv/bin/python -m delta_diff.experiments conf/base/experiment_claim.yml --dry-run":
        f"{HERE}::test_the_claim_experiment_dry_run_lists_its_runs",
    "nohup .venv/bin/python -m delta_diff.experiments conf/base/experiment_claim.yml > claim.log 2>&1 &":
        "tests/experiments/test_experiments.py::test_a_micro_experiment_runs_resumes_and_aggregates",
    "nohup .venv/bin/python -m delta_diff.experiments conf/world_v7/experiment_claim_s3600.yml --only "
    "'path_n?__bk-sdm-tiny__seed*' > claim_v7_s3600.log 2>&1 &":
        "tests/experiments/test_experiments.py::test_only_runs_the_selected_runs_but_aggregates_every_finished_one",
    "nohup .venv/bin/python -m delta_diff.experiments conf/world_v7/experiment_claim_s3600.yml > claim_v7_s3600.log "
    "2>&1 &": "tests/experiments/test_experiments.py::test_a_micro_experiment_runs_resumes_and_aggregates",
    ".venv/bin/python benchmarks/claim_tables.py data/09_experiments/claim_v7_s3600 --against "
    "data/09_experiments/claim_v7": "tests/benchmarks/test_claim_tables.py::"
                                    "test_the_readmes_s3600_tables_are_what_the_script_prints_from_the_committed_aggregates",
    ".venv/bin/python -m delta_diff.experiments conf/world_v7/experiment_claim.yml --aggregate-only":
        "tests/experiments/test_experiments.py::test_a_micro_experiment_runs_resumes_and_aggregates",
    ".venv/bin/python -m delta_diff.sd_shaped --variant sd-v1-4 --out data/01_raw/sd-v1-4-shaped":
        "tests/sd_shaped/test_build.py::test_full_size_pipeline_builds_reloads_and_samples",
    ".venv/bin/python -m delta_diff.sd_shaped --variant sd-v2-1-base --prediction-type v_prediction --out DIR":
        "tests/sd_shaped/test_build.py::test_reduced_sd_2_1_base_with_v_prediction",
    ".venv/bin/python -m delta_diff.sd_shaped --variant sd-v1-4 --width-scale 0.125 --out DIR":
        "tests/sd_shaped/test_cli.py::test_cached_build_and_random_hps_checkpoint",
    ".venv/bin/python -m delta_diff.sd_shaped.smoke data/01_raw/sd_smoke":
        "tests/pipelines/test_sd_smoke.py::test_kedro_run_env_sd_smoke_runs_the_whole_path_at_sd_structure",
    "KEDRO_DISABLE_TELEMETRY=1 .venv/bin/kedro run --env sd_smoke":
        "tests/pipelines/test_sd_smoke.py::test_kedro_run_env_sd_smoke_runs_the_whole_path_at_sd_structure",
    "kedro mlflow ui": f"{HERE}::test_the_mlflow_and_viz_servers_start_and_answer",
    ".venv/bin/mlflow ui --backend-store-uri sqlite:///mlflow.db":
        f"{HERE}::test_the_mlflow_and_viz_servers_start_and_answer",
    ".venv/bin/kedro viz run": f"{HERE}::test_the_mlflow_and_viz_servers_start_and_answer",
    "kedro viz build": "tests/pipelines/test_viz.py::test_viz_build_holds_every_stage_and_the_baseline",
    "kedro run": CLI,
    "kedro run --pipelines data_prep": CLI,
    "kedro run --pipelines architecture_search": CLI,
    "kedro run --namespaces stage_2": CLI,
    "kedro run --env sd_v1_4":
        "tests/pipelines/test_project_run.py::test_the_sd_v1_4_environment_stops_at_once_naming_what_is_missing",
    "kedro run --env sd_smoke":
        "tests/pipelines/test_sd_smoke.py::test_kedro_run_env_sd_smoke_runs_the_whole_path_at_sd_structure",
    "kedro run --env world_v2 --pipelines data_prep": f"{HERE}::test_world_v2_data_prep_writes_under_its_own_paths",
    "kedro run --load-versions <dataset>:<version>":
        "tests/pipelines/test_parameters.py::test_a_pinned_version_that_does_not_exist_is_refused_listing_the_saved_ones",
    'kedro run --params "architecture_search.space_report.presets=[bogus]"':
        f"{HERE}::test_a_bogus_preset_on_the_command_line_fails_at_once_naming_the_key",
    "kedro run --verbose-errors": f"{HERE}::test_verbose_errors_shows_the_traceback",
    "KEDRO_DISABLE_TELEMETRY=1 .venv/bin/kedro run --pipelines teacher":
        "tests/pipelines/test_teacher_pipeline.py::test_teacher_pipeline_trains_saves_and_resumes",
    ".venv/bin/python benchmarks/gap_curve_table.py data/08_reporting/world_v6/gap_curve.json --attributes":
        "tests/benchmarks/test_gap_curve_table.py::"
        "test_the_readmes_world_v6_table_is_what_the_script_prints_from_the_committed_record",
    ".venv/bin/python benchmarks/gap_curve_table.py data/08_reporting/world_v7/pilot_unet6000/gap_curve.json "
    "--attributes": "tests/benchmarks/test_gap_curve_table.py::"
                    "test_the_readmes_world_v7_pilot_tables_are_what_the_script_prints_from_one_seeds_record",
    ".venv/bin/python benchmarks/gap_curve_table.py data/08_reporting/world_v7/gap_curve.json --attributes":
        "tests/benchmarks/test_gap_curve_table.py::"
        "test_the_readmes_world_v7_tables_are_what_the_script_prints_from_the_committed_record",
    ".venv/bin/python benchmarks/gap_curve_table.py data/08_reporting/world_v7/plateau_probe/gap_curve.json "
    "--attributes": "tests/benchmarks/test_gap_curve_table.py::"
                    "test_the_readmes_world_v7_plateau_probe_tables_are_what_the_script_prints_from_its_record",
    ".venv/bin/python benchmarks/gap_curves_figure.py --out data/08_reporting/gap_curves.png":
        "tests/benchmarks/test_gap_curves_figure.py::test_the_figure_is_written_with_one_line_per_world_and_the_bar",
    # world v6's chain: its teacher (the pipeline at micro size on v6's configuration), then claim.sh, whose
    # refusal of a teacher that did not pass competence is what stands between the two
    "KEDRO_DISABLE_TELEMETRY=1 OMP_NUM_THREADS=2 nice -n 5 .venv/bin/kedro run --env world_v6 --pipelines teacher":
        "tests/pipelines/test_teacher_pipeline.py::test_a_four_object_world_teacher_trains_through_the_pipeline",
    "nohup sh benchmarks/claim.sh world_v6 > claim_v6.log 2>&1 &":
        "tests/benchmarks/test_claim_script.py::test_a_world_whose_teacher_failed_its_competence_check_is_refused",
    # world v7's chain, the same two steps
    "KEDRO_DISABLE_TELEMETRY=1 OMP_NUM_THREADS=2 nice -n 5 .venv/bin/kedro run --env world_v7 --pipelines teacher":
        "tests/pipelines/test_teacher_pipeline.py::test_a_counting_world_teacher_trains_through_the_pipeline",
    ".venv/bin/python benchmarks/claim_tables.py data/09_experiments/claim_v7 --attributes":
        "tests/benchmarks/test_claim_tables.py::test_the_readmes_world_v7_tables_are_what_the_script_prints_from_the_committed_aggregates",
    ".venv/bin/python benchmarks/claim_tables.py data/09_experiments/claim_v5 --attributes":
        "tests/benchmarks/test_claim_tables.py::test_the_curve_gives_the_baseline_at_each_multiple_of_s_then_each_variants_student",
    # the world record of a shipped teacher: the node runs in every teacher pipeline test (v7's checks the file)
    "kedro run --env world_vN --pipelines teacher --nodes record_teacher_world":
        "tests/pipelines/test_teacher_pipeline.py::test_a_counting_world_teacher_trains_through_the_pipeline",
    # a benchmark chain of hours (benchmarks are not tests): its own step, writing S into the design, is tested;
    # the other two are gap_curve.py and the experiments CLI above
    "nohup sh benchmarks/claim.sh world_v7 > claim_v7.log 2>&1 &":  # its teacher passed: the chain runs on
        "tests/benchmarks/test_choose_hop_steps.py::test_the_choice_is_written_into_the_design",
    ".venv/bin/python benchmarks/teacher_at_step.py --env world_v7 --out data/08_reporting/world_v7/at_step":
        "tests/pipelines/test_teacher_pipeline.py::test_a_counting_world_teacher_trains_through_the_pipeline",
    "pip check": f"{HERE}::test_pip_check_names_only_the_hpsv2x_requirements_the_set_up_skips",
    "pip install jupyterlab": None,  # an optional install for opening the notebook; the test suite runs it headless
}

COMMAND_START = re.compile(r"^(python3 |\.venv/bin/|kedro |nohup |KEDRO_DISABLE_TELEMETRY=1 |mlflow |pip )")


def readme_commands() -> set[str]:
    """Shell lines of the README's code blocks and inline code that start like a command, comments dropped."""
    text = (PROJECT_ROOT / "README.md").read_text()
    commands = set()
    for block in re.findall(r"^```[^\n]*\n(.*?)^```", text, flags=re.S | re.M):
        for line in block.splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip()
            if COMMAND_START.match(line):
                commands.add(line)
    for span in re.findall(r"`([^`\n]+)`", re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)):
        if COMMAND_START.match(span):
            commands.add(span.strip())
    return commands


def test_every_readme_command_is_exercised_by_a_test_that_exists():
    commands = readme_commands()
    assert commands - set(EXERCISED_BY) == set(), "README commands no test exercises (add them to EXERCISED_BY)"
    assert set(EXERCISED_BY) - commands == set(), "EXERCISED_BY lists commands the README no longer gives"
    for command, test in EXERCISED_BY.items():
        if test is None:
            continue
        path, name = test.split("::")
        tree = ast.parse((PROJECT_ROOT / path).read_text())
        names = {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}
        assert name in names, f"{command!r}: {test} does not exist"


def test_pip_check_names_only_the_hpsv2x_requirements_the_set_up_skips():
    """The README says `pip check` complains about hpsv2x (installed --no-deps) and that this is expected: it must
    complain about nothing else."""
    result = _run([sys.executable, "-m", "pip", "check"], PROJECT_ROOT)
    lines = result.stdout.strip().splitlines()
    assert lines and all(line.startswith("hpsv2x 1.2.0 ") for line in lines), result.stdout
    assert any("pytest==7.2.0" in line for line in lines)  # the pin that would downgrade the test tools


def _run(args, cwd, **kwargs):
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "KEDRO_DISABLE_TELEMETRY": "1"}, **kwargs)


def test_the_architecture_cli_reads_a_pipeline_folder_and_lists_its_units(sd_shaped_pipeline_dir):
    result = _run([sys.executable, "-m", "delta_diff.architecture", "--unet-config", str(sd_shaped_pipeline_dir),
                   "--genome", "mid,pair:0.1", "--list-units"], PROJECT_ROOT)
    assert result.returncode == 0, result.stderr
    assert "mid" in result.stdout and "pair:0.1" in result.stdout


def test_the_architecture_cli_writes_a_presets_unet_config(tmp_path):
    config = tmp_path / "config.json"
    config.write_text(SD_V1_4_CONFIG.read_text())
    result = _run([sys.executable, "-m", "delta_diff.architecture", "--unet-config", "config.json", "--preset",
                   "bk-sdm-small", "--output-config", "small.json"], tmp_path)
    assert result.returncode == 0, result.stderr
    from delta_diff.architecture import count_params

    report = json.loads(result.stdout)
    small = json.loads((tmp_path / "small.json").read_text())
    assert small["mid_block_type"] is None  # BK-SDM-Small drops the mid block
    assert count_params(small) == report["params"] == 482_346_884  # BK-SDM-Small's U-Net (the paper: 482 M)


def _experiment_run_databases() -> set[Path]:
    return set(Path(PROJECT_ROOT, "data", "09_experiments").glob("*/runs/*/mlflow.db"))


def test_the_claim_experiment_dry_run_lists_its_runs():
    # compared before and after, not "none at all": a real claim experiment may be running in this checkout
    databases_before = _experiment_run_databases()
    result = _run([sys.executable, "-m", "delta_diff.experiments", "conf/base/experiment_claim.yml", "--dry-run"],
                  PROJECT_ROOT)
    assert result.returncode == 0, result.stderr
    listed = re.findall(r"\[(\d+)/(\d+)\] \S+: would run with", result.stderr)
    assert [int(i) for i, _ in listed] == list(range(1, 19)) and {n for _, n in listed} == {"18"}, result.stderr[-2000:]
    assert _experiment_run_databases() == databases_before  # nothing ran


def _kedro(*args, cwd):
    return _run([sys.executable, "-m", "kedro", *args], cwd)


def test_a_bogus_preset_on_the_command_line_fails_at_once_naming_the_key(kedro_project):
    start = time.perf_counter()
    result = _kedro("run", "--params", "architecture_search.space_report.presets=[bogus]", cwd=kedro_project)
    assert result.returncode == 1
    error, hint = result.stderr.strip().splitlines()[-2:]
    assert error.startswith("error: ") and "bogus" in error and "presets" in error, result.stderr[-2000:]
    assert "--verbose-errors" in hint and "Traceback" not in result.stderr + result.stdout
    assert time.perf_counter() - start < 120 and not (kedro_project / "data" / "05_model_input").exists()


def test_verbose_errors_shows_the_traceback(kedro_project):
    result = _kedro("run", "--verbose-errors", "--params", "architecture_search.space_report.presets=[bogus]",
                    cwd=kedro_project)
    assert result.returncode == 1 and "Traceback" in result.stderr + result.stdout


@pytest.mark.slow
def test_world_v2_data_prep_writes_under_its_own_paths(kedro_project):
    result = _kedro("run", "--env", "world_v2", "--pipelines", "data_prep", "--params",
                    "data_prep.training_images.n_images=16,data_prep.prompt_sets.n_train_prompts=4,"
                    "data_prep.prompt_sets.n_eval_prompts=4,data_prep.prompt_sets.n_search_prompts=4",
                    cwd=kedro_project)
    assert result.returncode == 0, result.stderr[-3000:]
    written = [p.relative_to(kedro_project / "data") for p in (kedro_project / "data").rglob("*") if p.is_file()]
    produced = [p for p in written if p.parts[0] not in ("01_raw", "06_models")]  # the shipped inputs' links
    assert produced and all("world_v2" in p.parts for p in produced), produced


def _free_port() -> int:
    """A free port below 49152: kedro-viz refuses the ephemeral range the OS hands out for port 0."""
    import random

    for port in random.sample(range(20000, 49000), 200):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 20000-49000")


def _answers(command, cwd, port, timeout=240) -> tuple[bool, str]:
    """Start a server as from an activated venv (its bin first on PATH), wait until it answers HTTP on ``port``,
    stop it."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    log = Path(cwd) / f"server-{port}.log"
    server = subprocess.Popen(command, cwd=cwd, stdout=log.open("w"), stderr=subprocess.STDOUT,
                              env={**os.environ, "KEDRO_DISABLE_TELEMETRY": "1", "PATH": path},
                              start_new_session=True)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and server.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
                    return response.status == 200, ""
            except OSError:
                time.sleep(1)
        return False, log.read_text()[-3000:]
    finally:
        if server.poll() is None:
            os.killpg(server.pid, 15)
            server.wait(timeout=30)


@pytest.mark.slow
def test_the_mlflow_and_viz_servers_start_and_answer(kedro_project):
    """`kedro mlflow ui`, `mlflow ui --backend-store-uri sqlite:///mlflow.db` and `kedro viz run` (each on a free
    port, viz without opening a browser) start in the project and serve their page. (`kedro mlflow ui` runs the
    `mlflow` on the PATH: from a venv that is not activated it fails, which the README says.)"""
    bin_dir = Path(sys.executable).parent
    port = _free_port()
    for command in (["kedro", "mlflow", "ui"], ["mlflow", "ui", "--backend-store-uri", "sqlite:///mlflow.db"],
                    ["kedro", "viz", "run", "--no-browser"]):
        port = _free_port()
        answered, log = _answers([str(bin_dir / command[0]), *command[1:], "--port", str(port)], kedro_project, port)
        assert answered, f"{' '.join(command)} did not answer on {port}:\n{log}"
