"""Distil a student U-Net from its parent on cached latents and text embeddings (BK-SDM's recipe).

Kedro-free: config in, trained student out. The parent is frozen (eval, no grad); the student starts from the
weights it inherited when it was pruned from the parent. The search calls this for its short distillations, the
``distill_stage`` pipeline for full stages.
"""

from __future__ import annotations

import torch
from pydantic import BaseModel, ConfigDict

from delta_diff.training import BatchSampler, TrainingCheckpoints, TrainingRun, train
from delta_diff.training.loop import MetricsLogger

from .features import collect_outputs, stage_pairs
from .losses import LossWeights, distillation_loss

CACHE_KEYS = ("latent_mean", "latent_std", "text_embeddings", "empty_text_embedding")  # what training reads


class DistillConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    steps: int = 200
    batch_size: int = 32
    learning_rate: float = 5e-5  # BK-SDM: constant 5e-5 AdamW
    warmup_steps: int = 0
    task_weight: float = 1.0
    output_weight: float = 1.0
    feature_weight: float = 1.0
    normalise_features: bool = False
    caption_dropout: float = 0.1  # keep the unconditional branch (classifier-free guidance) distilled too
    max_grad_norm: float = 1.0
    seed: int = 0
    checkpoint_every: int = 100
    log_every: int = 25


def check_cache(cache: dict[str, torch.Tensor], batch_size: int) -> int:
    missing = [k for k in CACHE_KEYS if k not in cache]
    if missing:
        raise ValueError(f"training cache lacks {missing}; rerun `kedro run --pipelines data_prep` to rebuild it")
    n = len(cache["latent_mean"])
    if len(cache["text_embeddings"]) != n or len(cache["latent_std"]) != n:
        raise ValueError("training cache is inconsistent (latents and text embeddings differ in count); rebuild it")
    if batch_size > n:
        raise ValueError(f"batch_size {batch_size} is larger than the training set ({n} items)")
    return n


def distill_student(
    parent,
    student,
    cache: dict[str, torch.Tensor],
    noise_scheduler,
    config: DistillConfig,
    checkpoint_dir: str | None = None,
    log_metrics: MetricsLogger | None = None,
    show_progress: bool = True,
    name: str = "distill",
):
    """Train ``student`` in place to imitate ``parent``; returns (student, history)."""
    n = check_cache(cache, config.batch_size)
    if cache["text_embeddings"].shape[-1] != student.config.cross_attention_dim:
        raise ValueError(
            f"cached text embeddings are {cache['text_embeddings'].shape[-1]}-d but the U-Net expects "
            f"{student.config.cross_attention_dim}-d: the cache was built with another text encoder; rebuild it"
        )
    pairs = stage_pairs(student, parent)
    parent.eval().requires_grad_(False)
    student.train().requires_grad_(True)
    weights = LossWeights(config.task_weight, config.output_weight, config.feature_weight, config.normalise_features)
    prediction = noise_scheduler.config.prediction_type
    generator = torch.Generator().manual_seed(config.seed + 1)
    n_timesteps = noise_scheduler.config.num_train_timesteps
    optimizer = torch.optim.AdamW(student.parameters(), lr=config.learning_rate)
    student_names, parent_names = [s for s, _ in pairs], [p for _, p in pairs]
    device, dtype = next(student.parameters()).device, next(student.parameters()).dtype

    def loss_fn(batch):
        mean, std = cache["latent_mean"][batch], cache["latent_std"][batch]
        latents = mean + std * torch.randn(mean.shape, generator=generator)
        noise = torch.randn(latents.shape, generator=generator)
        timesteps = torch.randint(0, n_timesteps, (len(batch),), generator=generator)
        text = cache["text_embeddings"][batch]
        drop = torch.rand(len(batch), generator=generator) < config.caption_dropout
        text = torch.where(drop[:, None, None], cache["empty_text_embedding"].expand_as(text), text)
        noisy = noise_scheduler.add_noise(latents, noise, timesteps)
        target = noise if prediction == "epsilon" else noise_scheduler.get_velocity(latents, noise, timesteps)
        noisy, timesteps, text, target = (t.to(device) for t in (noisy, timesteps, text, target))
        with torch.no_grad(), collect_outputs(parent, parent_names) as parent_features:
            parent_pred = parent(noisy.to(dtype), timesteps, encoder_hidden_states=text.to(dtype)).sample
        with collect_outputs(student, student_names) as student_features:
            student_pred = student(noisy.to(dtype), timesteps, encoder_hidden_states=text.to(dtype)).sample
        return distillation_loss(student_pred, parent_pred, target, student_features, parent_features, pairs, weights)

    warmup = max(1, config.warmup_steps)
    run = TrainingRun(
        name=name, models={"student": student}, optimizer=optimizer,
        sampler=BatchSampler(n, config.batch_size, config.seed), loss_fn=loss_fn, total_steps=config.steps,
        lr_lambda=lambda step: min(1.0, (step + 1) / warmup), max_grad_norm=config.max_grad_norm,
    )
    checkpoints = TrainingCheckpoints(checkpoint_dir) if checkpoint_dir else None
    history = train(run, checkpoints, checkpoint_every=config.checkpoint_every, log_every=config.log_every,
                    log_metrics=log_metrics, show_progress=show_progress)
    return student.eval(), history
