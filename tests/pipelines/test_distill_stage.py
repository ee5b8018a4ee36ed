"""``distill_stage`` through a real KedroSession on a micro configuration: trains, saves, exports, resumes."""

import pytest
from diffusers import StableDiffusionPipeline, UNet2DConditionModel
from kedro.framework.session import KedroSession

from delta_diff.sd import generate_images


def micro(steps):
    return {
        "data_prep": {"training_images": {"n_images": 48}, "prompt_sets": {"n_train_prompts": 8, "n_eval_prompts": 4}},
        "distill_stage": {"stage": {"distillation": {"steps": steps, "batch_size": 8, "checkpoint_every": 2,
                                                     "log_every": 1},
                                    "validation_prompts": 2, "validation_steps": 2}},
    }


def latest(path):
    return sorted(path.iterdir())[-1] / path.name


@pytest.mark.slow
def test_distill_stage_trains_exports_and_resumes(kedro_project):
    import mlflow

    with KedroSession.create(project_path=kedro_project, runtime_params=micro(2)) as session:
        session.run(pipeline_names=["data_prep", "distill_stage"])
    while mlflow.active_run() is not None:
        mlflow.end_run()
    models = kedro_project / "data" / "06_models"
    unet = UNet2DConditionModel.from_pretrained(latest(models / "bk_sdm_small" / "distilled_unet"))
    assert unet.mid_block is None and unet.config.layers_per_block == 1  # BK-SDM-Small
    pipeline = StableDiffusionPipeline.from_pretrained(latest(models / "bk_sdm_small" / "student_pipeline"),
                                                       local_files_only=True)
    assert generate_images(pipeline, ["a red circle"], [0], steps=2, show_progress=False)[0].size == (32, 32)

    with KedroSession.create(project_path=kedro_project, runtime_params=micro(4)) as session:
        session.run(pipeline_names=["distill_stage"])
    history = latest(kedro_project / "data" / "08_reporting" / "bk_sdm_small" / "distill_history.csv").read_text()
    steps = [line.split(",")[0] for line in history.splitlines()[1:]]
    assert steps == ["1", "2", "3", "4"]  # steps 1-2 come from the resumed checkpoint's history
