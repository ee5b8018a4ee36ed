"""kedro-viz: the static build works offline and shows every stage and the baseline as a namespace."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
def test_viz_build_holds_every_stage_and_the_baseline(kedro_project):
    kedro = Path(sys.executable).with_name("kedro")
    result = subprocess.run([str(kedro), "viz", "build"], cwd=kedro_project, capture_output=True, text=True,
                            timeout=600, env={**os.environ, "KEDRO_DISABLE_TELEMETRY": "1"})
    assert result.returncode == 0, result.stderr[-2000:]
    graph = json.loads((kedro_project / "build" / "api" / "main").read_text())
    namespaces = {n["name"] for n in graph["nodes"] if n.get("type") == "modularPipeline"}
    assert {"stage_1", "stage_2", "stage_3", "baseline"} <= namespaces
    names = {n["name"] for n in graph["nodes"]}
    assert {"stage_1.student_pipeline", "stage_2.student_pipeline", "embedded_teacher"} <= names
