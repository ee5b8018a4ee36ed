"""A Kedro dataset for the on-disk training cache (``delta_diff.data.sharded_cache``): keyed by its inputs
instead of versioned, so an unchanged ``data_prep`` re-uses it and a changed one builds a new folder beside it.

Catalog entry::

    training_cache:
      type: delta_diff.datasets.TrainingCacheDataset
      filepath: data/05_model_input/training_cache     # a folder: <key>/ per input set, current.json

``save`` takes the ``CachePlan`` a node returns and encodes only the shards that are missing or damaged (lazy
saving, as Kedro's PartitionedDataset does with callables: the node never holds the whole cache); ``load``
returns the newest complete cache as a lazy ``TrainingCache``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kedro.io.core import AbstractDataset, DatasetError

from delta_diff.data.sharded_cache import (
    REBUILD,
    CachePlan,
    TrainingCache,
    TrainingCacheError,
    current_cache_folder,
    open_training_cache,
    write_training_cache,
)


class TrainingCacheDataset(AbstractDataset[CachePlan, TrainingCache]):
    def __init__(self, *, filepath: str, metadata: dict[str, Any] | None = None):
        self._root = Path(filepath)
        self.metadata = metadata

    def current_folder(self) -> Path | None:
        """The cache a load would open (None when none was built)."""
        return current_cache_folder(self._root)

    def load(self) -> TrainingCache:
        folder = self.current_folder()
        if folder is None:
            raise DatasetError(f"no training cache has been built in {self._root}; {REBUILD}")
        try:
            return open_training_cache(folder)
        except TrainingCacheError as error:
            raise DatasetError(str(error)) from None

    def save(self, data: CachePlan) -> None:
        if not isinstance(data, CachePlan):
            raise DatasetError(f"{self._root}: a training cache is saved from a CachePlan "
                               f"(delta_diff.data.latent_cache.plan_training_cache), not {type(data).__name__}")
        write_training_cache(self._root, data)

    def _exists(self) -> bool:
        folder = self.current_folder()
        return folder is not None and (folder / "complete.json").is_file()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._root)}
