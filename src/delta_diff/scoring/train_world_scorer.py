"""Train the world's attribute classifier on clean images, VAE reconstructions and blurred/noisy copies, on the
project's one training loop (``delta_diff.training.train``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from pydantic import BaseModel, ConfigDict

from delta_diff.config_types import Count, LearningRate
from delta_diff.sd import DevicePolicy
from delta_diff.training import (
    MetricsLogger, StepContext, TrainingCheckpoints, TrainingRun, cosine_with_warmup, job_fingerprint, train,
)

from .world_scorer import AttributeClassifier

# Settings that may change between a run and its resumption: more steps continue a finished run (the cosine
# schedule then follows the new total), and how often to checkpoint, log and keep.
RESUMABLE_FIELDS = {"steps", "checkpoint_every", "keep_checkpoints", "log_every"}


class ScorerTrainingConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    steps: Count = 600
    batch_size: Count = 128
    learning_rate: LearningRate = 2e-3
    width: Count = 32
    seed: int = 0
    checkpoint_every: Count = 200
    keep_checkpoints: Count = 2
    log_every: Count = 25


def _augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random blur (3x3 box, half of the batch) and Gaussian noise: what decoded samples look like."""
    blurred = torch.nn.functional.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)
    device = generator.device
    pick = torch.rand(len(x), 1, 1, 1, generator=generator, device=device) < 0.5
    x = torch.where(pick, blurred, x)
    noise = torch.randn(x.shape, generator=generator, device=device) \
        * torch.rand(len(x), 1, 1, 1, generator=generator, device=device) * 0.15
    return (x + noise).clamp(-1, 1)


def labels_from_metadata(metadata: pd.DataFrame, vocabulary: dict[str, list[str]]) -> dict[str, torch.Tensor]:
    missing = [a for a in vocabulary if a not in metadata.columns]
    if missing:
        raise ValueError(f"metadata lacks attribute columns {missing}; the scorer is trained on labelled world images")
    return {a: torch.tensor([values.index(v) for v in metadata[a]]) for a, values in vocabulary.items()}


def train_attribute_classifier(
    pixels: torch.Tensor,
    reconstructions: torch.Tensor | None,
    labels: dict[str, torch.Tensor],
    vocabulary: dict[str, list[str]],
    config: ScorerTrainingConfig,
    log_metrics: MetricsLogger | None = None,
    checkpoint_dir: str | None = None,
    policy: DevicePolicy | None = None,
) -> tuple[AttributeClassifier, list[dict]]:
    """Images stay on the CPU (each batch is moved to the device); ``policy`` defaults to the CPU in fp32, where
    the shipped scorer was trained. ``checkpoint_dir``: resume an interrupted training from there."""
    policy = policy or DevicePolicy(device="cpu")
    torch.manual_seed(config.seed)
    classifier = AttributeClassifier(vocabulary=vocabulary, image_size=pixels.shape[-1], width=config.width)
    classifier.to(policy.torch_device)
    inputs = pixels if reconstructions is None else torch.cat([pixels, reconstructions])
    targets = labels if reconstructions is None else {a: torch.cat([t, t]) for a, t in labels.items()}

    def loss_fn(step: StepContext, batch: torch.Tensor):
        with step.autocast():
            logits = step.model(_augment(inputs[batch].to(step.device), step.generator))
        truth = {a: targets[a][batch].to(step.device) for a in logits}
        losses = {a: torch.nn.functional.cross_entropy(logits[a].float(), truth[a]) for a in logits}
        metrics = {f"acc_{a}": float((logits[a].argmax(-1) == truth[a]).float().mean()) for a in logits}
        return sum(losses.values()), metrics

    run = TrainingRun(
        name="scorer", model=classifier,
        optimizer=torch.optim.AdamW(classifier.parameters(), lr=config.learning_rate, weight_decay=1e-4),
        loss_fn=loss_fn, n_items=len(inputs), batch_size=config.batch_size, total_steps=config.steps,
        seed=config.seed, noise_seed=config.seed, lr_lambda=lambda s: cosine_with_warmup(s, config.steps, 20),
        policy=policy,
    )
    checkpoints = None
    if checkpoint_dir:
        stamp = job_fingerprint({"trainer": "scorer", "vocabulary": vocabulary,
                                 "training": config.model_dump(exclude=RESUMABLE_FIELDS),
                                 "mixed_precision": policy.mixed_precision}, inputs, *targets.values())
        checkpoints = TrainingCheckpoints(checkpoint_dir, keep=config.keep_checkpoints, fingerprint=stamp)
    history = train(run, checkpoints, checkpoint_every=config.checkpoint_every, log_every=config.log_every,
                    log_metrics=log_metrics)
    return classifier, history


@torch.no_grad()
def attribute_accuracy(classifier: AttributeClassifier, pixels: torch.Tensor, labels: dict[str, torch.Tensor]) -> dict[str, float]:
    predicted = classifier.predict(pixels)
    vocabulary = classifier.config.vocabulary
    return {
        a: float(np.mean([vocabulary[a].index(p) == int(t) for p, t in zip(predicted[a], labels[a])]))
        for a in classifier.attributes
    }



