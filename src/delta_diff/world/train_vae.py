"""Train the world's AutoencoderKL: reconstruction MSE plus a small KL term, then set its latent scaling factor."""

from __future__ import annotations

import numpy as np
import torch
from diffusers import AutoencoderKL
from PIL import Image
from pydantic import BaseModel, ConfigDict

from delta_diff.training import BatchSampler, TrainingCheckpoints, TrainingRun, cosine_with_warmup, train
from delta_diff.training.loop import MetricsLogger

from .components import VAEConfig, build_vae


class VAETrainingConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    steps: int = 400
    batch_size: int = 64
    learning_rate: float = 1e-3
    warmup_steps: int = 20
    kl_weight: float = 1e-6  # SD's VAE also keeps the KL tiny: latents stay informative, roughly centred
    seed: int = 0


def images_to_tensor(images: list[Image.Image]) -> torch.Tensor:
    """PIL RGB images -> float tensor N x 3 x H x W in [-1, 1] (the range SD's VAE works in)."""
    array = np.stack([np.asarray(im.convert("RGB"), dtype=np.float32) for im in images])
    return torch.from_numpy(array).permute(0, 3, 1, 2) / 127.5 - 1.0


def train_vae(
    pixels: torch.Tensor,
    model_config: VAEConfig,
    config: VAETrainingConfig,
    checkpoint_dir: str | None = None,
    log_metrics: MetricsLogger | None = None,
) -> tuple[AutoencoderKL, list[dict]]:
    torch.manual_seed(config.seed)
    vae = build_vae(model_config)
    optimizer = torch.optim.AdamW(vae.parameters(), lr=config.learning_rate, weight_decay=0.0)

    def loss_fn(batch: torch.Tensor):
        x = pixels[batch]
        posterior = vae.encode(x).latent_dist
        reconstruction = vae.decode(posterior.sample()).sample
        mse = torch.nn.functional.mse_loss(reconstruction, x)
        kl = posterior.kl().mean() / x[0].numel()
        return mse + config.kl_weight * kl, {"mse": mse.item(), "kl": kl.item()}

    run = TrainingRun(
        name="vae", models={"vae": vae}, optimizer=optimizer,
        sampler=BatchSampler(len(pixels), config.batch_size, config.seed), loss_fn=loss_fn,
        total_steps=config.steps, lr_lambda=lambda s: cosine_with_warmup(s, config.steps, config.warmup_steps),
    )
    checkpoints = TrainingCheckpoints(checkpoint_dir) if checkpoint_dir else None
    history = train(run, checkpoints, checkpoint_every=100, log_metrics=log_metrics)
    vae.register_to_config(scaling_factor=latent_scaling_factor(vae, pixels))
    return vae.eval(), history


@torch.no_grad()
def latent_scaling_factor(vae: AutoencoderKL, pixels: torch.Tensor, n: int = 1024) -> float:
    """1 / std of the latents (SD's 0.18215 was found the same way), so diffusion sees unit-variance latents."""
    latents = torch.cat([vae.encode(chunk).latent_dist.mean for chunk in pixels[:n].split(256)])
    return float(1.0 / latents.std())


@torch.no_grad()
def reconstruct(vae: AutoencoderKL, pixels: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Encode (posterior mean) and decode, clamped to the image range: what a VAE round trip does to images."""
    return torch.cat([vae.decode(vae.encode(c).latent_dist.mean).sample.clamp(-1, 1) for c in pixels.split(batch_size)])


@torch.no_grad()
def reconstruction_mse(vae: AutoencoderKL, pixels: torch.Tensor) -> float:
    errors = [torch.nn.functional.mse_loss(vae.decode(vae.encode(c).latent_dist.mean).sample, c).item()
              for c in pixels.split(256)]
    return float(np.mean(errors))
