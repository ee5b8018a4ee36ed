"""benchmarks/gpu_check.py, checked here without a GPU: ``--cpu-smoke`` runs every section (proxies, a short
distillation, the evaluation measures, our and the plain KD step with FLOPs and MFU) at width scale 0.125, 64 px,
on the CPU, and its wall-clock guard stops a run in time and keeps what it measured."""

import json
import math
import os
import subprocess
import sys

import pytest

from tests.conftest import PROJECT_ROOT

SCRIPT = PROJECT_ROOT / "benchmarks" / "gpu_check.py"
# The numbers each section must report (others may come along).
EXPECTED = {
    "environment": [],
    "matmul_ceiling": ["tflops"],
    "build": ["build_s", "load_s", "place_s", "unet_params"],
    "proxies": ["cache_build_s", "evaluator_setup_s"],
    "distill": ["peak_memory_gb"],
    "evaluation": ["psnr_student_vs_teacher_db", "attention_alignment_with_teacher"],
    "kd_ours": ["median_step_s", "samples_per_s", "flops_per_step", "achieved_tflops", "peak_memory_gb",
                "mfu_vs_measured_matmul"],
    "kd_plain": ["median_step_s", "samples_per_s", "flops_per_step", "achieved_tflops", "peak_memory_gb",
                 "mfu_vs_measured_matmul"],
}


def _numbers(value):
    """Every number inside a JSON value (booleans are not numbers here)."""
    if isinstance(value, bool):
        return
    if isinstance(value, (int, float)):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _numbers(item)
    elif isinstance(value, list):
        for item in value:
            yield from _numbers(item)


def _run(tmp_path, *arguments):
    out = tmp_path / "out"
    run = subprocess.run([sys.executable, str(SCRIPT), "--cpu-smoke", "--work-dir", str(tmp_path), *arguments],
                         env={**os.environ, "OUT": str(out)}, capture_output=True, text=True, timeout=600)
    return run, json.loads((out / "gpu_check.json").read_text())


@pytest.mark.slow  # about 95 s on this project's 2-core machine
def test_cpu_smoke_measures_every_section_with_finite_numbers(tmp_path):
    pytest.importorskip("hpsv2", reason="the CLIP tokenizer is converted from hpsv2x's BPE file")
    run, results = _run(tmp_path)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert results["mode"] == "cpu-smoke" and results["complete"]
    assert list(results["sections"]) == list(EXPECTED)
    for name, keys in EXPECTED.items():
        section = results["sections"][name]
        assert not {"error", "not_run"} & set(section), (name, section)
        assert set(keys) <= set(section), (name, sorted(section))
        numbers = list(_numbers(section))
        assert numbers and all(math.isfinite(x) for x in numbers), (name, section)
    sections = results["sections"]
    assert sections["environment"]["hps_available"]
    for preset in ("bk-sdm-small", "bk-sdm-tiny"):
        assert -1.0 <= sections["proxies"][preset]["phi"] <= 1.0
        assert {"theta", "eps_mse"} <= set(sections["proxies"][preset])
    assert sections["distill"]["teacher_unchanged"] and len(sections["distill"]["losses"]) == 2
    for loop in ("kd_ours", "kd_plain"):
        assert sections[loop]["timed_steps"] == 2 and sections[loop]["flops_per_step"] > 0
    assert "mfu_vs_h200_datasheet" not in sections["kd_ours"]  # no H200 here: not computed, not invented
    assert not results["kedro_or_mlflow_imported"]


def test_the_wall_clock_guard_stops_the_run_and_keeps_what_it_measured(tmp_path):
    run, results = _run(tmp_path, "--budget-s", "8")
    assert run.returncode == 1
    assert not results["complete"] and list(results["sections"]) == list(EXPECTED)
    assert results["wall_s"] < 8 + 5  # the guard fired inside a section; the rest were not started
    stopped = [name for name, section in results["sections"].items() if "not_run" in section]
    assert stopped and "wall-clock guard" in results["sections"][stopped[0]]["not_run"]
