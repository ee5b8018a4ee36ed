"""Train the text-conditional U-Net on cached VAE latents and text embeddings (epsilon prediction, SD v1's
noise schedule), with caption dropout so that classifier-free guidance works, and an EMA of the weights; on the
project's one training loop (``delta_diff.training.train``), so an interrupted run resumes bit-exactly."""

from __future__ import annotations

import torch
from diffusers import UNet2DConditionModel
from pydantic import BaseModel, ConfigDict

from delta_diff.config_types import Count, Fraction, LearningRate, NonNegativeCount, OpenFraction
from delta_diff.sd import DevicePolicy
from delta_diff.training import (
    MetricsLogger, StepContext, TrainingCheckpoints, TrainingRun, cosine_with_warmup, job_fingerprint, train,
)

from .components import UNetConfig, build_unet, sd_v1_noise_scheduler

# Settings that may change between a run and its resumption: more steps continue a finished run (the cosine
# schedule then follows the new total), and how often to checkpoint, log and keep.
RESUMABLE_FIELDS = {"steps", "checkpoint_every", "keep_checkpoints", "log_every"}


class UNetTrainingConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    steps: Count = 2000
    batch_size: Count = 64
    learning_rate: LearningRate = 1e-3
    warmup_steps: NonNegativeCount = 100
    caption_dropout: Fraction = 0.1  # share of captions replaced by "" (the unconditional branch of CFG)
    ema_decay: OpenFraction = 0.999
    seed: int = 0
    checkpoint_every: Count = 200
    keep_checkpoints: Count = 2
    log_every: Count = 25


def train_text_conditional_unet(
    latent_mean: torch.Tensor,
    latent_std: torch.Tensor,
    text_embeddings: torch.Tensor,
    empty_embedding: torch.Tensor,
    model_config: UNetConfig,
    config: UNetTrainingConfig,
    checkpoint_dir: str | None = None,
    log_metrics: MetricsLogger | None = None,
    policy: DevicePolicy | None = None,
    made_from: tuple[dict, tuple[torch.Tensor, ...]] | None = None,
) -> tuple[UNet2DConditionModel, list[dict]]:
    """``latent_*``: N x C x h x w, already multiplied by the VAE's scaling factor; ``text_embeddings``:
    N x tokens x dim (all on the CPU; each batch is moved to the device). Returns the EMA weights. ``policy``
    defaults to the CPU in fp32, where the shipped teacher was trained (its numbers are reproducible there).
    ``made_from``: what the latents and embeddings were computed from, as (JSON-able settings, exact tensors), to
    name the checkpointed job by; without it the job is named by the latents and embeddings themselves, whose last
    bits depend on the machine's kernels, so its checkpoints resume only on the machine that wrote them."""
    policy = policy or DevicePolicy(device="cpu")
    torch.manual_seed(config.seed)
    unet = build_unet(model_config, cross_attention_dim=text_embeddings.shape[-1],
                      latent_channels=latent_mean.shape[1], sample_size=latent_mean.shape[-1])
    unet.to(policy.torch_device)
    noise_scheduler = sd_v1_noise_scheduler()
    n_timesteps = noise_scheduler.config.num_train_timesteps
    empty = empty_embedding.to(policy.torch_device)

    def loss_fn(step: StepContext, batch: torch.Tensor):
        generator, device = step.generator, step.device
        mean, std = latent_mean[batch].to(device), latent_std[batch].to(device)
        latents = mean + std * torch.randn(mean.shape, generator=generator, device=device)
        noise = torch.randn(latents.shape, generator=generator, device=device)
        timesteps = torch.randint(0, n_timesteps, (len(batch),), generator=generator, device=device)
        noisy = noise_scheduler.add_noise(latents, noise, timesteps)
        text = text_embeddings[batch].to(device)
        drop = torch.rand(len(batch), generator=generator, device=device) < config.caption_dropout
        text = torch.where(drop[:, None, None], empty.expand_as(text), text)
        with step.autocast():
            prediction = step.model(noisy, timesteps, encoder_hidden_states=text).sample
        return torch.nn.functional.mse_loss(prediction.float(), noise), {}

    run = TrainingRun(
        name="unet", model=unet, optimizer=torch.optim.AdamW(unet.parameters(), lr=config.learning_rate,
                                                             weight_decay=1e-2),
        loss_fn=loss_fn, n_items=len(latent_mean), batch_size=config.batch_size, total_steps=config.steps,
        seed=config.seed, noise_seed=config.seed + 1,
        lr_lambda=lambda s: cosine_with_warmup(s, config.steps, config.warmup_steps),
        ema_decay=config.ema_decay, ema_warmup=True, policy=policy,
    )
    checkpoints = None
    if checkpoint_dir:
        settings = {"trainer": "unet", "model": model_config.model_dump(),
                    "training": config.model_dump(exclude=RESUMABLE_FIELDS), "mixed_precision": policy.mixed_precision}
        if made_from is None:
            stamp = job_fingerprint(settings, latent_mean, latent_std, text_embeddings, empty_embedding)
        else:
            sources, source_tensors = made_from
            stamp = job_fingerprint({**settings, "made_from": sources}, *source_tensors)
        checkpoints = TrainingCheckpoints(checkpoint_dir, keep=config.keep_checkpoints, fingerprint=stamp)
    history = train(run, checkpoints, checkpoint_every=config.checkpoint_every, log_every=config.log_every,
                    log_metrics=log_metrics)
    return unet, history
