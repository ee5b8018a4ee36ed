"""Project pipelines: every package under ``pipelines/`` that has nodes, by name, and their sum as default."""

from __future__ import annotations

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline

from delta_diff.pipelines.path.pipeline import baseline_only


# The default run is the method end to end: data_prep, the path (with its baseline), evaluation. The teacher is
# trained once and shipped; architecture_search and distill_stage alone are single stages for experiments.
NOT_IN_DEFAULT = ("teacher", "baseline", "architecture_search", "distill_stage")


def register_pipelines() -> dict[str, Pipeline]:
    found = find_pipelines(raise_errors=True)
    # A pipeline package without nodes yet stays out of the registry, so `--pipelines` names only real work.
    pipelines = {name: pipeline for name, pipeline in found.items() if pipeline.nodes}
    pipelines["baseline"] = baseline_only()
    pipelines["__default__"] = sum((p for name, p in pipelines.items() if name not in NOT_IN_DEFAULT), Pipeline([]))
    return pipelines
