"""Train the text-conditional U-Net on cached VAE latents and text embeddings (epsilon prediction, SD v1's
noise schedule), with caption dropout so that classifier-free guidance works, and an EMA of the weights."""

from __future__ import annotations

import torch
from diffusers import UNet2DConditionModel
from diffusers.training_utils import EMAModel
from pydantic import BaseModel, ConfigDict

from delta_diff.training import BatchSampler, TrainingCheckpoints, TrainingRun, cosine_with_warmup, train
from delta_diff.training.loop import MetricsLogger

from .components import UNetConfig, build_unet, sd_v1_noise_scheduler


class UNetTrainingConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    steps: int = 2000
    batch_size: int = 64
    learning_rate: float = 1e-3
    warmup_steps: int = 100
    caption_dropout: float = 0.1  # share of captions replaced by "" (the unconditional branch of CFG)
    ema_decay: float = 0.999
    seed: int = 0


def train_text_conditional_unet(
    latent_mean: torch.Tensor,
    latent_std: torch.Tensor,
    text_embeddings: torch.Tensor,
    empty_embedding: torch.Tensor,
    model_config: UNetConfig,
    config: UNetTrainingConfig,
    checkpoint_dir: str | None = None,
    log_metrics: MetricsLogger | None = None,
) -> tuple[UNet2DConditionModel, list[dict]]:
    """``latent_*``: N x C x h x w, already multiplied by the VAE's scaling factor; ``text_embeddings``:
    N x tokens x dim. Returns the EMA weights."""
    torch.manual_seed(config.seed)
    unet = build_unet(model_config, cross_attention_dim=text_embeddings.shape[-1],
                      latent_channels=latent_mean.shape[1], sample_size=latent_mean.shape[-1])
    noise_scheduler = sd_v1_noise_scheduler()
    optimizer = torch.optim.AdamW(unet.parameters(), lr=config.learning_rate, weight_decay=1e-2)
    ema = EMAModel(unet.parameters(), decay=config.ema_decay, use_ema_warmup=True)
    generator = torch.Generator().manual_seed(config.seed + 1)
    n_timesteps = noise_scheduler.config.num_train_timesteps

    def loss_fn(batch):
        latents = latent_mean[batch] + latent_std[batch] * torch.randn(latent_mean[batch].shape, generator=generator)
        noise = torch.randn(latents.shape, generator=generator)
        timesteps = torch.randint(0, n_timesteps, (len(batch),), generator=generator)
        noisy = noise_scheduler.add_noise(latents, noise, timesteps)
        text = text_embeddings[batch]
        drop = torch.rand(len(batch), generator=generator) < config.caption_dropout
        text = torch.where(drop[:, None, None], empty_embedding.expand_as(text), text)
        prediction = unet(noisy, timesteps, encoder_hidden_states=text).sample
        return torch.nn.functional.mse_loss(prediction, noise), {}

    run = TrainingRun(
        name="unet", models={"unet": unet}, optimizer=optimizer,
        sampler=BatchSampler(len(latent_mean), config.batch_size, config.seed), loss_fn=loss_fn,
        total_steps=config.steps, lr_lambda=lambda s: cosine_with_warmup(s, config.steps, config.warmup_steps),
        ema=ema,
    )
    checkpoints = TrainingCheckpoints(checkpoint_dir) if checkpoint_dir else None
    history = train(run, checkpoints, checkpoint_every=200, log_metrics=log_metrics)
    ema.copy_to(unet.parameters())
    return unet.eval(), history
