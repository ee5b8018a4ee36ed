"""The noise schedule is the teacher's: training noise, prediction type and timesteps come from the teacher
pipeline's own scheduler config (an SD 2.x v-prediction teacher trains its students on velocity)."""

from __future__ import annotations

import torch
from diffusers import DDPMScheduler

PREDICTION_TYPES = ("epsilon", "v_prediction")


def training_noise_scheduler(pipeline) -> DDPMScheduler:
    """A DDPM scheduler with the teacher's betas, timestep count and prediction type, for adding training noise
    (the sampling scheduler of the pipeline, e.g. PNDM or DDIM, shares these; only its stepping differs)."""
    config = dict(pipeline.scheduler.config)
    prediction = config.get("prediction_type", "epsilon")
    if prediction not in PREDICTION_TYPES:
        raise ValueError(f"the teacher's scheduler predicts {prediction!r}; distillation supports "
                         f"{', '.join(PREDICTION_TYPES)} (scheduler/scheduler_config.json prediction_type)")
    return DDPMScheduler.from_config(config)


def training_target(noise_scheduler, latents: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
    """What the U-Net learns to predict: the noise (epsilon) or the velocity (v-prediction)."""
    if noise_scheduler.config.prediction_type == "epsilon":
        return noise
    return noise_scheduler.get_velocity(latents, noise, timesteps)
