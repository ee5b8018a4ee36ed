"""Seeded batch sampling over in-memory tensors and the learning-rate schedule used by the trainers."""

from __future__ import annotations

import math

import torch


class BatchSampler:
    """The loop's global sampler (the same on every rank; each trains on its shard of every batch). Reshuffles
    every epoch from a generator whose state is checkpointed, so a resumed run draws the batches the
    uninterrupted run would have drawn."""

    def __init__(self, n_items: int, batch_size: int, seed: int):
        if n_items < 1:
            raise ValueError("no training items")
        self.n_items, self.batch_size = n_items, min(batch_size, n_items)
        self.generator = torch.Generator().manual_seed(seed)
        self._order = torch.randperm(n_items, generator=self.generator)
        self._cursor = 0

    def next(self) -> torch.Tensor:
        if self._cursor + self.batch_size > self.n_items:
            self._order = torch.randperm(self.n_items, generator=self.generator)
            self._cursor = 0
        batch = self._order[self._cursor: self._cursor + self.batch_size]
        self._cursor += self.batch_size
        return batch

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state(), "order": self._order, "cursor": self._cursor}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
        self._order, self._cursor = state["order"], int(state["cursor"])


def cosine_with_warmup(step: int, total: int, warmup: int) -> float:
    """LR multiplier: linear warm-up, then cosine decay to 10 %."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))
