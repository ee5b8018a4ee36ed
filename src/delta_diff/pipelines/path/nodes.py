"""Thin nodes that plan the path: the student in teacher coordinates, per-stage budgets, nested search plans."""

from __future__ import annotations

import logging
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from delta_diff.architecture import (
    ArchitectureSpace,
    PresetName,
    count_params,
    describe_removed,
    equal_budgets,
    preset_genome,
    prune,
    relative_genome,
)

logger = logging.getLogger(__name__)


class FinalStudent(BaseModel):
    model_config = ConfigDict(extra="forbid")
    preset: PresetName | None = "bk-sdm-small"
    genome: str | None = None  # teacher coordinates: bit string or comma list of unit keys

    @model_validator(mode="after")
    def _one(self) -> FinalStudent:
        if (self.preset is None) == (self.genome is None):
            raise ValueError("path.student: give exactly one of preset and genome")
        return self


class PathParams(BaseModel):
    """``params:path``; validated when the context loads, before any node runs."""

    model_config = ConfigDict(extra="forbid")
    n_stages: int = Field(3, ge=1, le=8)
    student: FinalStudent = FinalStudent()
    budgets: list[float] | None = None  # fractions of the teacher for stages 1..N-1; None: equal capacity steps

    @model_validator(mode="after")
    def _budgets(self) -> PathParams:
        if self.budgets is not None:
            if len(self.budgets) != self.n_stages - 1:
                raise ValueError(f"path.budgets has {len(self.budgets)} entries; n_stages={self.n_stages} needs "
                                 f"{self.n_stages - 1} (one per searched assistant)")
            if any(not 0 < b < 1 for b in self.budgets) or any(a <= b for a, b in zip(self.budgets, self.budgets[1:])):
                raise ValueError(f"path.budgets {self.budgets} must be fractions in (0, 1), strictly decreasing")
        return self


def plan_path(built_stages: int, teacher, params: PathParams) -> dict[str, Any]:
    """The student's genome in teacher coordinates and each stage's parameter budget; fails in seconds on a
    student the teacher cannot reach or budgets below the student."""
    if params.n_stages != built_stages:
        raise ValueError(
            f"path.n_stages is {params.n_stages} but the pipeline was built with {built_stages} stages from "
            "conf/<env>/parameters_path.yml; the stage count shapes the pipeline, so set it in that file, not --params"
        )
    space = ArchitectureSpace(dict(teacher.unet.config))
    student = preset_genome(space, params.student.preset) if params.student.preset else space.parse(params.student.genome)
    teacher_params = count_params(space.parent_config)
    student_params = count_params(space.child_config(student))
    if params.budgets is None:
        budgets = equal_budgets(teacher_params, student_params, params.n_stages)[:-1]
    else:
        budgets = [int(b * teacher_params) for b in params.budgets]
        low = [b for b in budgets if b <= student_params]
        if low:
            raise ValueError(f"path.budgets {params.budgets} reach {min(low):,} params, not above the student's "
                             f"{student_params:,}; raise them")
    logger.info("path: teacher %s -> %s -> student %s params (%s)", f"{teacher_params:,}",
                " -> ".join(f"{b:,}" for b in budgets) or "(single step)", f"{student_params:,}",
                "; ".join(describe_removed(space, student)))
    return {"teacher_config": dict(space.parent_config), "teacher_params": teacher_params,
            "student": space.to_string(student), "student_params": student_params, "budgets": budgets,
            "n_stages": params.n_stages}


def plan_stage(index: int, path_plan: dict[str, Any], previous_architecture: dict[str, Any] | None = None):
    """Stage ``index``'s search plan: nested below the previous stage's choice, at its budget.

    Removing whole blocks moves in coarse steps, so a stage's choice can land below the next stage's planned
    budget (a 4-stage Tiny path did: stage_1 chose 2.29M params for a 2.84M budget, under stage_2's 2.39M). Then
    the gap left, from that choice to the student, is split again into equal steps for the stages still to come."""
    budget = path_plan["budgets"][index - 1]
    if previous_architecture and previous_architecture["params"] <= budget:
        parent, student = int(previous_architecture["params"]), int(path_plan["student_params"])
        steps_left = path_plan["n_stages"] - index + 1
        replanned = parent - (parent - student) // steps_left
        logger.warning("stage_%d: the previous stage already chose %s params, at or under this stage's planned "
                       "budget %s; re-planned to %s (the gap to the student's %s in %d equal steps)", index,
                       f"{parent:,}", f"{budget:,}", f"{replanned:,}", f"{student:,}", steps_left)
        budget = replanned
    return {"teacher_config": path_plan["teacher_config"], "student": path_plan["student"],
            "base": previous_architecture["genome"] if previous_architecture else None,
            "budget": budget, "planned_budget": path_plan["budgets"][index - 1]}


def prune_final_student(parent, path_plan: dict[str, Any], previous_architecture: dict[str, Any] | None = None):
    """The final student pruned from the last model on the path (or from the teacher, for the baseline)."""
    space = ArchitectureSpace(path_plan["teacher_config"])
    base = space.parse(previous_architecture["genome"]) if previous_architecture else space.empty()
    genome = relative_genome(space, base, space.parse(path_plan["student"]))
    return prune(parent.unet, genome)
