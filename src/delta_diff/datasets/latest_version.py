"""Read-only access to the newest saved version of another versioned CSV dataset, or an empty table.

A node cannot take a versioned dataset as both input and output (Kedro forbids the cycle), yet the search wants
to *extend* its last surrogate training table. This dataset points at the same ``filepath`` and loads the newest
version that exists, or an empty DataFrame on a first run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from kedro.io.core import AbstractDataset, DatasetError


class LatestVersionCSVDataset(AbstractDataset[None, pd.DataFrame]):
    def __init__(self, *, filepath: str, metadata: dict[str, Any] | None = None):
        self._filepath = Path(filepath)
        self.metadata = metadata

    def _latest(self) -> Path | None:
        if not self._filepath.is_dir():
            return None
        versions = sorted(p for p in self._filepath.iterdir() if (p / self._filepath.name).is_file())
        return versions[-1] / self._filepath.name if versions else None

    def load(self) -> pd.DataFrame:
        latest = self._latest()
        # genomes are bit strings: read them as text, or "0101" would become the number 101
        return pd.read_csv(latest, dtype={"genome": str}) if latest is not None else pd.DataFrame()

    def save(self, data: None) -> None:
        raise DatasetError(f"{self._filepath}: read-only view of the newest version; save through the versioned entry")

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath), "latest": str(self._latest())}
