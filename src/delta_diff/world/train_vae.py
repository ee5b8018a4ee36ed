"""Train the world's AutoencoderKL: reconstruction MSE plus a small KL term, then set its latent scaling factor.
On the project's one training loop (``delta_diff.training.train``), so an interrupted run resumes bit-exactly."""

from __future__ import annotations

import numpy as np
import torch
from diffusers import AutoencoderKL
from PIL import Image
from pydantic import BaseModel, ConfigDict

from delta_diff.config_types import Count, LearningRate, NonNegativeCount, Weight
from delta_diff.sd import DevicePolicy
from delta_diff.training import (
    MetricsLogger, StepContext, TrainingCheckpoints, TrainingRun, cosine_with_warmup, job_fingerprint, train,
    weights_digest,
)

from .components import VAEConfig, build_vae

# Settings that may change between a run and its resumption: more steps continue a finished run (the cosine
# schedule then follows the new total), and how often to checkpoint, log and keep.
RESUMABLE_FIELDS = {"steps", "checkpoint_every", "keep_checkpoints", "log_every"}


class VAETrainingConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    steps: Count = 400
    batch_size: Count = 64
    learning_rate: LearningRate = 1e-3
    warmup_steps: NonNegativeCount = 20
    kl_weight: Weight = 1e-6  # SD's VAE also keeps the KL tiny: latents stay informative, roughly centred
    seed: int = 0
    checkpoint_every: Count = 100
    keep_checkpoints: Count = 2
    log_every: Count = 25


class _Autoencode(torch.nn.Module):
    """Encode, sample the posterior from the step's generator, decode: as one forward, so that under several
    processes the pass goes through the DDP wrapper (which syncs gradients only for what its forward ran),
    while the loss still sees the posterior's KL."""

    def __init__(self, vae: AutoencoderKL):
        super().__init__()
        self.vae = vae

    def forward(self, x: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        posterior = self.vae.encode(x).latent_dist
        return self.vae.decode(posterior.sample(generator)).sample, posterior.kl()


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
    init_from: str | None = None,
    policy: DevicePolicy | None = None,
) -> tuple[AutoencoderKL, list[dict]]:
    """``init_from``: a saved ``AutoencoderKL`` folder to fine-tune instead of starting from random weights (its
    shape must be ``model_config``'s). ``pixels`` stay on the CPU (each batch is moved to the device); ``policy``
    defaults to the CPU in fp32, where the shipped VAE was trained."""
    policy = policy or DevicePolicy(device="cpu")
    torch.manual_seed(config.seed)
    vae = build_vae(model_config)
    if init_from is not None:
        start = AutoencoderKL.from_pretrained(init_from)
        missing, unexpected = vae.load_state_dict(start.state_dict(), strict=False)
        if missing or unexpected:
            raise ValueError(f"VAE init_from {init_from} does not match the configured VAE: missing {missing[:3]}, "
                             f"unexpected {unexpected[:3]}")
    vae.to(policy.torch_device)
    autoencode = _Autoencode(vae)

    def loss_fn(step: StepContext, batch: torch.Tensor):
        x = pixels[batch].to(step.device)
        with step.autocast():
            reconstruction, kl = step.model(x, step.generator)
        mse = torch.nn.functional.mse_loss(reconstruction.float(), x)
        kl = kl.float().mean() / x[0].numel()
        return mse + config.kl_weight * kl, {"mse": mse.item(), "kl": kl.item()}

    run = TrainingRun(
        name="vae", model=autoencode,
        optimizer=torch.optim.AdamW(vae.parameters(), lr=config.learning_rate, weight_decay=0.0),
        loss_fn=loss_fn, n_items=len(pixels), batch_size=config.batch_size, total_steps=config.steps,
        seed=config.seed, noise_seed=config.seed + 1,
        lr_lambda=lambda s: cosine_with_warmup(s, config.steps, config.warmup_steps), policy=policy,
    )
    checkpoints = None
    if checkpoint_dir:
        # The starting weights stand for init_from (or the seed): another start is another job.
        stamp = job_fingerprint({"trainer": "vae", "model": model_config.model_dump(),
                                 "training": config.model_dump(exclude=RESUMABLE_FIELDS),
                                 "start": weights_digest(vae), "mixed_precision": policy.mixed_precision}, pixels)
        checkpoints = TrainingCheckpoints(checkpoint_dir, keep=config.keep_checkpoints, fingerprint=stamp)
    history = train(run, checkpoints, checkpoint_every=config.checkpoint_every, log_every=config.log_every,
                    log_metrics=log_metrics)
    vae.register_to_config(scaling_factor=latent_scaling_factor(vae, pixels))
    return vae.eval(), history


@torch.no_grad()
def latent_scaling_factor(vae: AutoencoderKL, pixels: torch.Tensor, n: int = 1024) -> float:
    """1 / std of the latents (SD's 0.18215 was found the same way), so diffusion sees unit-variance latents."""
    latents = torch.cat([vae.encode(chunk.to(vae.device)).latent_dist.mean for chunk in pixels[:n].split(256)])
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
