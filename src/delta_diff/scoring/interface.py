"""The scorer interface: score a batch of images against their prompts.

Every image metric (the world's attribute scorer, HPS v2) answers the same call, so evaluation and the search's
image proxy never care which one is configured. A metric that cannot be computed (no checkpoint, no package)
says so with ``available=False`` and a reason; it never returns invented numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import pandas as pd
from PIL import Image


@dataclass
class ScoreResult:
    metric: str
    available: bool
    per_image: pd.DataFrame = field(default_factory=pd.DataFrame)  # one row per image; column "score" at least
    summary: dict[str, float] = field(default_factory=dict)
    reason: str | None = None

    @classmethod
    def unavailable(cls, metric: str, reason: str) -> ScoreResult:
        return cls(metric=metric, available=False, reason=reason)


class ImageScorer(Protocol):
    name: str

    def score(self, images: list[Image.Image], prompts: list[str]) -> ScoreResult: ...
