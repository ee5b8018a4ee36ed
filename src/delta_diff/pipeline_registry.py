"""Project pipelines: every package under ``pipelines/`` that has nodes, by name, and their sum as default."""

from __future__ import annotations

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline


def register_pipelines() -> dict[str, Pipeline]:
    found = find_pipelines(raise_errors=True)
    # A pipeline package without nodes yet stays out of the registry, so `--pipelines` names only real work.
    pipelines = {name: pipeline for name, pipeline in found.items() if pipeline.nodes}
    pipelines["__default__"] = sum(pipelines.values(), Pipeline([]))
    return pipelines
