"""The noise schedule is the teacher's: prediction type, betas and timesteps from the teacher pipeline's own
scheduler config; a v-prediction teacher trains its students on velocity."""

import pytest
import torch
from diffusers import DDIMScheduler, UNet2DConditionModel

from delta_diff.architecture import ArchitectureSpace, preset_genome, prune
from delta_diff.distill import DistillConfig, distill_student
from delta_diff.sd import training_noise_scheduler, training_target

from tests.conftest import tiny_unet_config
from tests.distill.test_trainer import tiny_cache


class _Pipeline:  # only the scheduler is read
    def __init__(self, **config):
        self.scheduler = DDIMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, **config)


def test_the_training_schedule_comes_from_the_teacher_scheduler_config():
    noise = training_noise_scheduler(_Pipeline(prediction_type="v_prediction", num_train_timesteps=500))
    assert noise.config.prediction_type == "v_prediction" and noise.config.num_train_timesteps == 500
    assert noise.config.beta_schedule == "scaled_linear" and noise.config.beta_end == 0.012


def test_a_prediction_type_distillation_cannot_train_is_refused():
    with pytest.raises(ValueError, match="predicts 'sample'; distillation supports epsilon, v_prediction"):
        training_noise_scheduler(_Pipeline(prediction_type="sample"))


def test_a_v_prediction_teacher_trains_its_student_on_velocity(monkeypatch):
    """The trainer's task target, for a v-prediction schedule, is exactly the scheduler's velocity."""
    import delta_diff.distill.trainer as trainer

    seen = []

    def spy(noise_scheduler, latents, noise, timesteps):
        target = training_target(noise_scheduler, latents, noise, timesteps)
        seen.append((noise_scheduler.config.prediction_type,
                     torch.allclose(target, noise_scheduler.get_velocity(latents, noise, timesteps)),
                     torch.equal(target, noise)))
        return target

    monkeypatch.setattr(trainer, "training_target", spy)
    torch.manual_seed(0)
    parent = UNet2DConditionModel(**tiny_unet_config()).eval().requires_grad_(False)
    space = ArchitectureSpace(dict(parent.config))
    student = prune(parent, preset_genome(space, "bk-sdm-small"), space)
    scheduler = training_noise_scheduler(_Pipeline(prediction_type="v_prediction"))
    distill_student(parent, student, tiny_cache(), scheduler, DistillConfig(batch_size=4, steps=2),
                    show_progress=False)
    assert seen and all(kind == "v_prediction" and is_velocity and not is_noise for kind, is_velocity, is_noise in seen)
