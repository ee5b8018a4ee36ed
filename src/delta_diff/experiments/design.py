"""What an experiment runs: variants x students x seeds, each one `kedro run` with its own parameter overrides."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

STUDENTS = ("bk-sdm-base", "bk-sdm-small", "bk-sdm-tiny")


class Variant(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[a-z0-9_]+$")
    students: list[str]
    n_stages: int = Field(ge=1, le=8)
    params: dict[str, Any] = {}  # dotted parameter keys -> values, for this variant only

    @model_validator(mode="after")
    def _known_students(self) -> Variant:
        unknown = [s for s in self.students if s not in STUDENTS]
        if unknown:
            raise ValueError(f"variant {self.name}: unknown students {unknown}; choose from {list(STUDENTS)}")
        return self


class ExperimentDesign(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[a-z0-9_]+$")
    output: str  # folder of the runs, the aggregated table and the figure
    seeds: list[int] = Field(min_length=1)
    seed_params: list[str]  # dotted keys that each take the run's seed
    params: dict[str, Any] = {}  # dotted keys -> values for every run (e.g. fewer steps)
    variants: list[Variant] = Field(min_length=1)

    @model_validator(mode="after")
    def _distinct(self) -> ExperimentDesign:
        names = [v.name for v in self.variants]
        if len(set(names)) != len(names):
            raise ValueError(f"variant names must differ: {names}")
        return self


class RunSpec(BaseModel):
    name: str
    variant: str
    student: str
    seed: int
    n_stages: int
    params: dict[str, Any]  # nested, ready to write as conf/local/parameters.yml


STAGE_STEPS, BASELINE_STEPS = "distill_stage.stage.distillation.steps", "distill_stage.baseline.distillation.steps"


def expand_runs(design: ExperimentDesign, base_stage_steps: int) -> list[RunSpec]:
    """One run per (variant, student, seed), in that order. ``base_stage_steps``: the project's steps per stage,
    used to give each run's baseline the path's total unless the design sets it (Kedro resolves the base conf's
    derived total before the run's overrides are merged, so it has to be written out)."""
    runs = []
    for variant in design.variants:
        for student in variant.students:
            for seed in design.seeds:
                dotted = {**design.params, **{key: seed for key in design.seed_params}, **variant.params,
                          "path.n_stages": variant.n_stages, "path.student.preset": student}
                dotted.setdefault(BASELINE_STEPS, variant.n_stages * dotted.get(STAGE_STEPS, base_stage_steps))
                runs.append(RunSpec(name=f"{variant.name}__{student}__seed{seed}", variant=variant.name,
                                    student=student, seed=seed, n_stages=variant.n_stages, params=nest(dotted)))
    return runs


def nest(dotted: dict[str, Any]) -> dict[str, Any]:
    """{"a.b": 1, "a.c": 2} -> {"a": {"b": 1, "c": 2}}; a key that is both a value and a parent is refused."""
    nested: dict[str, Any] = {}
    for key, value in dotted.items():
        *parents, leaf = key.split(".")
        node = nested
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ValueError(f"parameter {key!r} sits under a key that already has a value")
        if isinstance(node.get(leaf), dict):
            raise ValueError(f"parameter {key!r} would replace a whole group")
        node[leaf] = value
    return nested
