"""Train the world's attribute classifier on clean images, VAE reconstructions and blurred/noisy copies."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from pydantic import BaseModel, ConfigDict

from delta_diff.training import BatchSampler, TrainingRun, cosine_with_warmup, train
from delta_diff.training.loop import MetricsLogger

from .world_scorer import AttributeClassifier


class ScorerTrainingConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    steps: int = 600
    batch_size: int = 128
    learning_rate: float = 2e-3
    width: int = 32
    seed: int = 0


def _augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random blur (3x3 box, half of the batch) and Gaussian noise: what decoded samples look like."""
    blurred = torch.nn.functional.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)
    pick = torch.rand(len(x), 1, 1, 1, generator=generator) < 0.5
    x = torch.where(pick, blurred, x)
    noise = torch.randn(x.shape, generator=generator) * torch.rand(len(x), 1, 1, 1, generator=generator) * 0.15
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
) -> tuple[AttributeClassifier, list[dict]]:
    torch.manual_seed(config.seed)
    classifier = AttributeClassifier(vocabulary=vocabulary, image_size=pixels.shape[-1], width=config.width)
    inputs = pixels if reconstructions is None else torch.cat([pixels, reconstructions])
    targets = labels if reconstructions is None else {a: torch.cat([t, t]) for a, t in labels.items()}
    generator = torch.Generator().manual_seed(config.seed)
    optimizer = torch.optim.AdamW(classifier.parameters(), lr=config.learning_rate, weight_decay=1e-4)

    def loss_fn(batch):
        logits = classifier(_augment(inputs[batch], generator))
        losses = {a: torch.nn.functional.cross_entropy(logits[a], targets[a][batch]) for a in logits}
        metrics = {f"acc_{a}": float((logits[a].argmax(-1) == targets[a][batch]).float().mean()) for a in logits}
        return sum(losses.values()), metrics

    run = TrainingRun(
        name="scorer", models={"scorer": classifier}, optimizer=optimizer,
        sampler=BatchSampler(len(inputs), config.batch_size, config.seed), loss_fn=loss_fn,
        total_steps=config.steps, lr_lambda=lambda s: cosine_with_warmup(s, config.steps, 20),
    )
    history = train(run, log_metrics=log_metrics)
    return classifier.eval(), history


@torch.no_grad()
def attribute_accuracy(classifier: AttributeClassifier, pixels: torch.Tensor, labels: dict[str, torch.Tensor]) -> dict[str, float]:
    predicted = classifier.predict(pixels)
    vocabulary = classifier.config.vocabulary
    return {
        a: float(np.mean([vocabulary[a].index(p) == int(t) for p, t in zip(predicted[a], labels[a])]))
        for a in classifier.attributes
    }



