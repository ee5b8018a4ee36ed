"""``path``: the whole DELTA-Diff path as namespaced stages (DESIGN.md §1, §4), plus the single-step baseline.

    embedded_teacher -> stage_1 (search + distil) -> stage_2 ... -> stage_N (distil the final student)
    embedded_teacher -> baseline (distil the final student in one step, with the path's total steps)

Each stage's distilled pipeline (``stage_i.student_pipeline``) is the next stage's parent, so kedro-viz shows
the chain and ``kedro run --namespaces stage_2`` re-runs one stage. The number of stages shapes the pipeline,
so it is read before the parameters load (``read_n_stages``); everything else is a validated parameter.
"""

from __future__ import annotations

import os
from functools import partial, update_wrapper
from pathlib import Path

from kedro.pipeline import Node, Pipeline

from delta_diff.pipelines.architecture_search.pipeline import search_stage
from delta_diff.pipelines.distill_stage.nodes import teacher_target
from delta_diff.pipelines.distill_stage.pipeline import distill_stage_template
from delta_diff.project_config import load_project_config

from . import nodes
from .nodes import PathParams

TEACHER = "embedded_teacher"

# The conf environment of the session being run (``kedro run --env X`` does not export KEDRO_ENV); set by the
# RunEnvironment hook when a context is created, before the pipelines are built.
run_env: str | None = None


def read_n_stages(conf_source: str | Path | None = None) -> int:
    """``path.n_stages`` from the project's parameters (base, then the run environment: the session's ``--env``,
    else ``KEDRO_ENV``, else local)."""
    conf = Path(conf_source or Path.cwd() / "conf")
    if not conf.is_dir():
        return nodes.PathParams().n_stages  # outside a project (e.g. imported by a tool): the default shape
    parameters = load_project_config(conf, "parameters", run_env or os.environ.get("KEDRO_ENV", "local"))
    value = parameters.get("path", {}).get("n_stages", nodes.PathParams().n_stages)
    if not isinstance(value, int) or not 1 <= value <= 8:
        raise ValueError(f"path.n_stages must be an integer in 1..8, got {value!r} (conf/*/parameters_path.yml)")
    return value


def _bound(function, *args):
    bound = partial(function, *args)
    update_wrapper(bound, function)
    return bound


def _plan(n_stages: int) -> Node:
    # A closure, not functools.partial: Kedro validates "params:" inputs from the node function's own type
    # hints, which a partial hides (the parameters would arrive unvalidated, as a dict).
    def plan_path(teacher, params: PathParams) -> dict:
        return nodes.plan_path(n_stages, teacher, params)

    return Node(plan_path, [TEACHER, "params:path"], "path_plan", name="plan_path")


def path_pipeline(n_stages: int) -> Pipeline:
    steps = [_plan(n_stages)]
    parent, previous = TEACHER, None
    for index in range(1, n_stages):
        stage = f"stage_{index}"
        inputs = ["path_plan"] + ([previous] if previous else [])
        # Nodes outside the namespaced templates still belong to their stage, so `--namespaces stage_i` runs them.
        steps.append(Node(_bound(nodes.plan_stage, index), inputs, f"{stage}.search_plan", name="plan",
                          namespace=stage))
        steps.append(search_stage(stage, parent, plan=f"{stage}.search_plan"))
        steps += _distil(stage, parent, f"{stage}.candidate_unet")
        parent, previous = f"{stage}.student_pipeline", f"{stage}.chosen_architecture"
    final = f"stage_{n_stages}"
    steps.append(Node(nodes.prune_final_student, [parent, "path_plan"] + ([previous] if previous else []),
                      f"{final}.final_student_unet", name="prune_student", namespace=final))
    steps += _distil(final, parent, f"{final}.final_student_unet")
    return Pipeline(steps) + baseline_pipeline(n_stages)


def _distil(stage: str, parent: str, student: str) -> list:
    """A stage's distillation; a stage whose parent is an assistant also gets the original teacher's U-Net when
    its KD terms imitate it (``distillation.target``: teacher or both, the DGKD ablation)."""
    if parent == TEACHER:
        return [distill_stage_template(stage, parent, student=student)]
    target = Node(teacher_target, [TEACHER, "params:distill_stage.stage"], f"{stage}.teacher_target",
                  name="teacher_target", namespace=stage)
    return [target, distill_stage_template(stage, parent, student=student, teacher=f"{stage}.teacher_target")]


def baseline_pipeline(n_stages: int) -> Pipeline:
    """Single-step BK-SDM: the final student pruned from the teacher, distilled with the path's total steps in
    one run. With several stages the run also keeps its student every ``snapshot_every`` steps (the path's steps
    per stage): the baseline at the paper's protocol (as many steps as one hop) and its whole curve, from one run."""
    prune_node = Node(nodes.prune_final_student, [TEACHER, "path_plan"], "baseline.final_student_unet",
                      name="prune_student", namespace="baseline")
    return Pipeline([prune_node]) + distill_stage_template(
        "baseline", TEACHER, student="baseline.final_student_unet", params="params:distill_stage.baseline",
        snapshots=n_stages > 1)


def baseline_only() -> Pipeline:
    """``kedro run --pipelines baseline``: plan (for the student) and the baseline stage alone."""
    n_stages = read_n_stages()
    return Pipeline([_plan(n_stages)]) + baseline_pipeline(n_stages)


def create_pipeline(**kwargs) -> Pipeline:
    return path_pipeline(read_n_stages())
