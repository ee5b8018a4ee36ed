"""The catalog's training-cache dataset: saves a plan (encoding only what is missing), loads the newest cache."""

import pytest
import torch
from kedro.io.core import DatasetError

from delta_diff.data.sharded_cache import CacheLayout, CachePlan, TrainingCache
from delta_diff.datasets import TrainingCacheDataset


def synthetic_plan(n: int = 10, seed: int = 0) -> CachePlan:
    """Rows made up from their index (no models): what a node's plan looks like to the dataset."""
    layout = CacheLayout(latent_shape=(4, 2, 2), max_length=5, text_dim=8, shard_size=4)

    def encode_rows(start, stop):
        index = torch.arange(start, stop, dtype=torch.float32)
        return {"latent_mean": index[:, None, None, None].expand(-1, 4, 2, 2) + seed,
                "latent_std": torch.full((stop - start, 4, 2, 2), 0.5),
                "input_ids": torch.arange(start, stop)[:, None].expand(-1, 5)}

    return CachePlan(inputs={"seed": seed}, layout=layout, n_rows=n, encode_rows=encode_rows,
                     encode_extras=lambda: {"empty_text_embedding": torch.zeros(1, 5, 8)}, show_progress=False)


def test_save_a_plan_then_load_the_newest_cache(tmp_path):
    dataset = TrainingCacheDataset(filepath=str(tmp_path / "cache"))
    assert not dataset.exists()
    with pytest.raises(DatasetError, match="no training cache has been built in .*kedro run --pipelines data_prep"):
        dataset.load()
    dataset.save(synthetic_plan())
    cache = dataset.load()
    assert isinstance(cache, TrainingCache) and len(cache) == 10 and dataset.exists()
    assert cache.rows([9])["latent_mean"][0, 0, 0, 0] == 9 and cache.rows([9])["input_ids"][0, 0] == 9
    dataset.save(synthetic_plan(seed=1))  # other inputs: a second folder, and the newest is what loads
    assert dataset.load().rows([9])["latent_mean"][0, 0, 0, 0] == 10
    assert len([p for p in (tmp_path / "cache").iterdir() if p.is_dir()]) == 2


def test_only_a_plan_can_be_saved(tmp_path):
    with pytest.raises(DatasetError, match="saved from a CachePlan"):
        TrainingCacheDataset(filepath=str(tmp_path)).save({"latent_mean": torch.zeros(1)})
