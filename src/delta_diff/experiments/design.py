"""What an experiment runs: variants x students x seeds, each one `kedro run` with its own parameter overrides."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from delta_diff.distill.trainer import KEYS_THAT_MAY_DIFFER

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
    env: str | None = None  # a conf environment every run uses (e.g. world_v2); None: base (+ the run's overrides)
    seeds: list[int] = Field(min_length=1)
    seed_params: list[str]  # dotted keys that each take the run's seed
    params: dict[str, Any] = {}  # dotted keys -> values for every run (e.g. fewer steps)
    variants: list[Variant] = Field(min_length=1)

    @model_validator(mode="after")
    def _distinct(self) -> ExperimentDesign:
        names = [v.name for v in self.variants]
        if len(set(names)) != len(names):
            raise ValueError(f"variant names must differ: {names}")
        for variant in self.variants:
            problem = comparability_problem({**self.params, **variant.params}, self.seed_params)
            if problem:
                raise ValueError(f"variant {variant.name}: {problem}")
        return self


class RunSpec(BaseModel):
    name: str
    variant: str
    student: str
    seed: int
    n_stages: int
    params: dict[str, Any]  # nested, ready to write as conf/local/parameters.yml


STAGE, BASELINE = "distill_stage.stage.distillation.", "distill_stage.baseline.distillation."
STAGE_STEPS, BASELINE_STEPS = STAGE + "steps", BASELINE + "steps"
BASELINE_SNAPSHOTS = BASELINE + "snapshot_every"


def comparability_problem(dotted: dict[str, Any], seed_params: list[str]) -> str | None:
    """Why a run's path and baseline would not be trained alike (different seeds or settings), or None."""
    for key in seed_params:
        for mine, other in ((STAGE, BASELINE), (BASELINE, STAGE)):
            if key.startswith(mine) and key.replace(mine, other, 1) not in seed_params:
                return (f"seed_params has {key} but not {key.replace(mine, other, 1)}: the path and its baseline "
                        "would train with different seeds")
    for key, value in dotted.items():
        for mine, other in ((STAGE, BASELINE), (BASELINE, STAGE)):
            if key.startswith(mine) and key[len(mine):] not in KEYS_THAT_MAY_DIFFER:
                twin = other + key[len(mine):]
                if dotted.get(twin, _UNSET) != value:
                    theirs = repr(dotted[twin]) if twin in dotted else "left at the base value"
                    return (f"{key} is {value!r} but {twin} is {theirs}: the path and its baseline must train "
                            "alike except for their steps; set both")
    return None


_UNSET = object()


def expand_runs(design: ExperimentDesign, base_stage_steps: int) -> list[RunSpec]:
    """One run per (variant, student, seed), in that order. ``base_stage_steps``: the project's steps per stage,
    used to give each run's baseline the path's total, kept every steps-per-stage steps (its curve, and the paper's
    protocol at one hop's steps), unless the design sets them (Kedro resolves the base conf's derived values before
    the run's overrides are merged, so they have to be written out)."""
    runs = []
    for variant in design.variants:
        for student in variant.students:
            for seed in design.seeds:
                dotted = {**design.params, **{key: seed for key in design.seed_params}, **variant.params,
                          "path.n_stages": variant.n_stages, "path.student.preset": student}
                dotted.setdefault(STAGE_STEPS, base_stage_steps)
                dotted.setdefault(BASELINE_STEPS, variant.n_stages * dotted[STAGE_STEPS])
                dotted.setdefault(BASELINE_SNAPSHOTS, dotted[STAGE_STEPS] if variant.n_stages > 1 else 0)
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
