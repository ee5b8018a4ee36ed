"""Thin nodes: adapt parameters and datasets, call the Kedro-free ``delta_diff.architecture`` library."""

from __future__ import annotations

import logging
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

from delta_diff.architecture import PRESETS, space_summary

logger = logging.getLogger(__name__)


class SpaceReportParams(BaseModel):
    """``params:architecture_search.space_report``; Kedro validates it before any node runs."""

    model_config = ConfigDict(extra="forbid")
    presets: list[str] = list(PRESETS)

    @field_validator("presets")
    @classmethod
    def _known_presets(cls, presets: list[str]) -> list[str]:
        unknown = [p for p in presets if p not in PRESETS]
        if unknown:
            raise ValueError(f"unknown preset(s) {unknown}; choose from {list(PRESETS)}")
        return presets


def report_architecture_space(parent_unet_config: dict[str, Any], params: SpaceReportParams) -> dict[str, Any]:
    """Which blocks of the parent can go, how big the space is, and what each preset leaves."""
    summary = space_summary(parent_unet_config, params.presets)
    for name, preset in summary["presets"].items():
        logger.info("%-13s %13s params (-%.1f %%)", name, f"{preset['params']:,}", 100 * preset["reduction"])
    logger.info("%d removable units, %s distinct sub-architectures", len(summary["units"]), f"{summary['space_size']:,}")
    return summary
