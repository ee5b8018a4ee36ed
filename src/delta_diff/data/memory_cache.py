"""A training cache held as tensors in memory, read through the same interface as the on-disk ``TrainingCache``
(``rows``, ``extras``, ``text_embeddings``): for benchmarks, notebooks and tests that encode a few hundred images
themselves. Pipelines use the on-disk cache."""

from __future__ import annotations

import torch

from .sharded_cache import TrainingCache, TrainingCacheError, encode_token_ids

ROW_KEYS = ("latent_mean", "latent_std", "text_embeddings", "input_ids")


class InMemoryTrainingCache:
    def __init__(self, tensors: dict[str, torch.Tensor]):
        missing = [k for k in ("latent_mean", "latent_std", "empty_text_embedding") if k not in tensors]
        if "text_embeddings" not in tensors and "input_ids" not in tensors:
            missing.append("text_embeddings or input_ids")
        if missing:
            raise TrainingCacheError(f"in-memory training cache lacks {missing}")
        n = len(tensors["latent_mean"])
        uneven = [k for k in ROW_KEYS if k in tensors and len(tensors[k]) != n]
        if uneven:
            raise TrainingCacheError(f"in-memory training cache: {uneven} do not have {n} rows like latent_mean")
        self.tensors = tensors

    def __len__(self) -> int:
        return len(self.tensors["latent_mean"])

    @property
    def text_mode(self) -> str:
        return "embeddings" if "text_embeddings" in self.tensors else "token_ids"

    @property
    def text_dim(self) -> int:
        return int(self.tensors["empty_text_embedding"].shape[-1])

    def rows(self, index, names: list[str] | None = None) -> dict[str, torch.Tensor]:
        index = torch.as_tensor(index, dtype=torch.long).reshape(-1).cpu()
        names = [k for k in ROW_KEYS if k in self.tensors] if names is None else names
        return {name: self.tensors[name][index] for name in names}

    def extras(self) -> dict[str, torch.Tensor]:
        return {"empty_text_embedding": self.tensors["empty_text_embedding"]}

    def text_embeddings(self, rows: dict[str, torch.Tensor], text_encoder=None) -> torch.Tensor:
        if "text_embeddings" in rows:
            return rows["text_embeddings"]
        return encode_token_ids(text_encoder, rows["input_ids"])


def as_training_cache(cache) -> TrainingCache | InMemoryTrainingCache:
    """The reading interface of ``cache``: an on-disk ``TrainingCache`` as it is, a dict of tensors wrapped."""
    if isinstance(cache, (TrainingCache, InMemoryTrainingCache)):
        return cache
    if isinstance(cache, dict):
        return InMemoryTrainingCache(cache)
    raise TypeError(f"a training cache is a TrainingCache or a dict of tensors, not {type(cache).__name__}")
