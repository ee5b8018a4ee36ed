"""The whole default ``kedro run`` at Stable Diffusion's structure, through the CLI as a user runs it:
``kedro run --env sd_smoke`` on the reduced-width SD v1.4-shaped pipeline, HPS v2 (a random open_clip model
through the real checkpoint path) as Theta and in evaluate."""

import json
import os
import subprocess
import sys

import pandas as pd
import pytest
from diffusers import UNet2DConditionModel

from tests.conftest import PROJECT_ROOT, latest


@pytest.mark.slow
def test_kedro_run_env_sd_smoke_runs_the_whole_path_at_sd_structure(tmp_path):
    from delta_diff.experiments.run_folder import make_run_folder

    project = make_run_folder(PROJECT_ROOT, tmp_path / "project")
    environment = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1"}
    subprocess.run([sys.executable, "-m", "delta_diff.sd_shaped.smoke", "data/01_raw/sd_smoke"], cwd=project,
                   check=True, env=environment, capture_output=True)
    run = subprocess.run([sys.executable, "-m", "kedro", "run", "--env", "sd_smoke"], cwd=project,
                         env=environment, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]

    data = project / "data"
    table = pd.read_csv(latest(data / "08_reporting" / "results.csv"))
    # the baseline's one run is also measured at one hop's steps (the paper's protocol), from its kept snapshot
    assert list(table["model"]) == ["teacher", "stage_1", "stage_2", "baseline", "baseline_at_2"]
    assert table["params_reduction"].iloc[-1] == pytest.approx(0.439, abs=0.005)  # BK-SDM-Small: -43.9 %
    hps = [c for c in table.columns if c.startswith("hps_v2.0")]
    assert len(hps) == 5 and table[hps].notna().all().all()  # four styles and their average, versioned names
    assert table["world_score"].isna().all()  # no embedded-world scorer on an SD teacher
    notes = json.loads(latest(data / "08_reporting" / "evaluation_notes.json").read_text())
    assert notes["hps_v2"]["available"] and notes["text_tokens"] == 77 and notes["resolution"] == 64

    student = UNet2DConditionModel.from_pretrained(latest(data / "06_models" / "stage_2" / "distilled_unet"))
    assert student.config.cross_attention_dim == 768 and student.config.down_block_types[0] == "CrossAttnDownBlock2D"
    history = pd.read_csv(latest(data / "08_reporting" / "baseline" / "distill_history.csv"))
    assert set(history["feature_pairing"]) == {"bk_sdm"}  # BK-SDM-Small from the teacher: BK-SDM's own pairs

    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    runs = client.search_runs(client.search_experiments()[0].experiment_id)
    assert len(runs) == 1
    assert "evaluate.stage_2.attention_alignment_with_teacher" in runs[0].data.metrics
    assert runs[0].data.tags["baseline.feature_pairing"] == "bk_sdm"
