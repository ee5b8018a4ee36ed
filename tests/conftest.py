"""Shared fixtures: tiny SD-family U-Net configs (built here, never downloaded) and the shipped SD v1.4 config."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "1")

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SD_V1_4_CONFIG = PROJECT_ROOT / "data" / "01_raw" / "sd_v1_4_unet_config.json"

# Runtime parameters that shrink a whole `kedro run` (data, search, distillation, evaluation) to about a minute.
MICRO = {
    "data_prep": {"training_images": {"n_images": 64}, "prompt_sets": {"n_train_prompts": 8, "n_eval_prompts": 8}},
    "architecture_search": {"search": {
        "probe": {"n_prompts": 4, "timesteps": [500]},
        "theta": {"n_prompts": 4, "steps": 3},
        "surrogate_data": {"n_candidates": 6, "distillation": {"steps": 2, "batch_size": 8, "log_every": 1}},
        "surrogate": {"n_estimators": 20},
        "evolution": {"population": 6, "max_generations": 2, "patience": 2, "real_evaluations_per_generation": 2},
    }},
    # The baseline trains like the stages (the run refuses a path and baseline trained unalike); its steps are
    # the path's total, written by write_two_stage_path.
    "distill_stage": {"stage": {"distillation": {"steps": 2, "batch_size": 8, "log_every": 1, "checkpoint_every": 2},
                                "validation_prompts": 2, "validation_steps": 2},
                      "baseline": {"distillation": {"batch_size": 8, "log_every": 1, "checkpoint_every": 2},
                                   "validation_prompts": 2, "validation_steps": 2}},
    "evaluate": {"n_prompts": 4, "steps": 3, "latency_repeats": 2, "probe_prompts": 4, "probe_timesteps": [500],
                 "grid_prompts": 3},
}


def project_config(key: str, env: str | None = None) -> dict:
    """One of the project's configurations ("parameters", "catalog"), ``env`` merged over base."""
    from delta_diff.project_config import load_project_config

    return load_project_config(PROJECT_ROOT / "conf", key, env)


def project_parameters(env: str | None = None) -> dict:
    return project_config("parameters", env)


def project_file_paths(env: str | None = None) -> dict[str, str]:
    """Every file-backed catalog entry's path in ``env`` (base alone for None)."""
    catalog = project_config("catalog", env)
    return {name: entry["filepath"] for name, entry in catalog.items() if "filepath" in entry}


def write_two_stage_path(project: Path) -> None:
    """A two-stage path in the project's local env, with the baseline's total steps written out (Kedro resolves
    base's derived total with base's n_stages)."""
    stage_steps = MICRO["distill_stage"]["stage"]["distillation"]["steps"]
    (project / "conf" / "local" / "parameters_path.yml").write_text(
        f"path:\n  n_stages: 2\ndistill_stage:\n  baseline:\n    distillation:\n      steps: {2 * stage_steps}\n"
        f"      snapshot_every: {stage_steps}\n")


def latest(path):
    """The newest version of a versioned dataset's file or folder."""
    return sorted(path.iterdir())[-1] / path.name


def tiny_unet_config(**overrides) -> dict:
    """SD v1's block structure (CrossAttnDown x3 + Down, mid, Up + CrossAttnUp x3, 2 layers) at toy width."""
    config = dict(
        sample_size=8,
        in_channels=4,
        out_channels=4,
        block_out_channels=[16, 32, 32, 32],
        layers_per_block=2,
        down_block_types=["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"],
        up_block_types=["UpBlock2D"] + ["CrossAttnUpBlock2D"] * 3,
        cross_attention_dim=16,
        attention_head_dim=4,
        norm_num_groups=8,
    )
    config.update(overrides)
    return config


@pytest.fixture
def tiny_config() -> dict:
    return tiny_unet_config()


@pytest.fixture
def tiny_unet():
    import torch
    from diffusers import UNet2DConditionModel

    torch.manual_seed(0)
    return UNet2DConditionModel(**tiny_unet_config()).eval()


@pytest.fixture
def unet_inputs():
    import torch

    generator = torch.Generator().manual_seed(1)
    sample = torch.randn(2, 4, 8, 8, generator=generator)
    text = torch.randn(2, 5, 16, generator=generator)
    return sample, torch.tensor([10, 700]), text


@pytest.fixture(scope="session")
def sd_v1_4_config() -> dict:
    return json.loads(SD_V1_4_CONFIG.read_text())


@pytest.fixture(scope="session")
def sd_v2_config(sd_v1_4_config) -> dict:
    """SD v2.x's U-Net differs from v1's in config only: per-block head dims, 1024-d text, linear projections."""
    config = dict(sd_v1_4_config)
    config.update(
        attention_head_dim=[5, 10, 20, 20],
        cross_attention_dim=1024,
        use_linear_projection=True,
        upcast_attention=False,
        sample_size=96,
    )
    return config


@pytest.fixture
def kedro_project(tmp_path, monkeypatch) -> Path:
    """A throw-away copy of the project's config and shipped inputs (models linked read-only), so test runs
    never write into the work tree."""
    from kedro.framework.startup import bootstrap_project

    from delta_diff.experiments.run_folder import make_run_folder

    root = make_run_folder(PROJECT_ROOT, tmp_path / "project")
    monkeypatch.chdir(root)
    bootstrap_project(root)
    return root


@pytest.fixture(autouse=True)
def _no_mlflow_run_leaks_between_tests():
    """kedro-mlflow keeps a run open when a session fails before its pipeline starts; in one test process that
    run would swallow the next session's logging (a CLI run is a process of its own, so users never see it)."""
    yield
    import mlflow

    while mlflow.active_run() is not None:
        mlflow.end_run()


SD_SHAPED_DIR = PROJECT_ROOT / "data" / "01_raw" / ".sd_shaped"  # data/** is git-ignored


@pytest.fixture(scope="session")
def sd_shaped_pipeline_dir() -> Path:
    """A stock StableDiffusionPipeline folder at SD v1.4's block structure, width scale 0.125 (random seeded
    weights, the real CLIP tokenizer): 64-px sampling and a KD step take seconds on a CPU. Built once and then
    reused across sessions (the build's stamp), so only the first session pays its ~10 s."""
    pytest.importorskip("hpsv2", reason="the CLIP tokenizer is converted from hpsv2x's BPE file")
    from delta_diff.sd_shaped import build_sd_shaped

    return build_sd_shaped("sd-v1-4", SD_SHAPED_DIR / "sd-v1-4-w0.125-seed0", width_scale=0.125, seed=0,
                           report=lambda line: None)
