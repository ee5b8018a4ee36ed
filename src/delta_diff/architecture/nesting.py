"""Genomes along a distillation path, all in the teacher's coordinates.

Every model on the path is a sub-architecture of the one before (weights are inherited along the path), so each
stage's genome G_i (units of the *teacher* removed so far) contains G_{i-1}, and the student's G_S contains all of
them. The search of stage i varies only the units in G_S but not yet in G_{i-1} (``NestedSpace``); the chosen
G_i is pruned from the distilled M_{i-1} through ``relative_genome``, its equivalent in M_{i-1}'s own space.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from .space import ArchitectureSpace, Genome
from .structure import ArchitectureError


def relative_genome(teacher_space: ArchitectureSpace, base: Genome, target: Genome) -> Genome:
    """The genome of ``prune(teacher, base)``'s space that removes what ``target`` removes beyond ``base``."""
    base, target = teacher_space.validate(base), teacher_space.validate(target)
    extra = [u.key for u, b, t in zip(teacher_space.units, base, target) if b and not t]
    if extra:
        raise ArchitectureError(f"the target keeps {extra}, which its parent already removed: not a sub-architecture")
    derived = teacher_space.derive(base)
    child = ArchitectureSpace(teacher_space.child_config(base))
    wanted = set(teacher_space.removed_keys(target))
    bits = []
    for unit in child.units:
        if unit.kind in ("pair", "down_attn"):
            mapped = replace(unit, index=derived.kept_down[unit.level][unit.index])
        elif unit.kind == "up_attn":
            mapped = replace(unit, index=derived.kept_up[unit.level][unit.index])
        else:
            mapped = unit
        bits.append(int(mapped.key in wanted))
    genome = child.canonical(tuple(bits))
    if teacher_space.compose(base, genome) != teacher_space.canonical(target):
        raise ArchitectureError(
            f"{', '.join(sorted(wanted))} cannot be reached from {', '.join(teacher_space.removed_keys(base)) or 'the teacher'}"
        )
    return genome


def equal_budgets(teacher_params: int, student_params: int, n_stages: int) -> list[int]:
    """DESIGN.md §1: stage i's budget is |T| - i * (|T| - |S|) / N; the last one is the student's size."""
    if n_stages < 1:
        raise ValueError(f"n_stages must be >= 1, got {n_stages}")
    gap = teacher_params - student_params
    if gap <= 0:
        raise ValueError(f"the student ({student_params:,}) is not smaller than the teacher ({teacher_params:,})")
    return [int(round(teacher_params - i * gap / n_stages)) for i in range(1, n_stages + 1)]


class NestedSpace:
    """The search space of one path stage, in teacher coordinates: ``base`` always removed, only ``free`` units
    (removed by the student, not yet by the parent) vary. Answers what the search asks of a space."""

    def __init__(self, teacher_space: ArchitectureSpace, base: Genome, student: Genome):
        self.full = teacher_space
        self.base = teacher_space.validate(base)
        student = teacher_space.validate(student)
        if any(b and not s for b, s in zip(self.base, student)):
            raise ArchitectureError("the student does not remove everything its parent removed: not reachable")
        self.indices = [i for i, (b, s) in enumerate(zip(self.base, student)) if s and not b]
        self.units = tuple(teacher_space.units[i] for i in self.indices)
        self.parent_config = teacher_space.child_config(self.base)
        self.parent = teacher_space.derive(self.base).structure

    def __len__(self) -> int:
        return len(self.units)

    def to_full(self, genome: Genome) -> Genome:
        bits = list(self.base)
        for i, b in zip(self.indices, genome):
            bits[i] = int(b)
        return tuple(bits)

    def from_full(self, genome: Genome) -> Genome:
        return tuple(genome[i] for i in self.indices)

    def empty(self) -> Genome:
        return (0,) * len(self.units)

    def canonical(self, genome: Genome) -> Genome:
        return self.from_full(self.full.canonical(self.to_full(genome)))

    def is_valid(self, genome: Genome) -> bool:
        return self.full.is_valid(self.to_full(genome))

    def validate(self, genome: Genome) -> Genome:
        return self.from_full(self.full.validate(self.to_full(genome)))

    def child_config(self, genome: Genome) -> dict[str, Any]:
        return self.full.child_config(self.to_full(genome))

    def derive(self, genome: Genome):
        return self.full.derive(self.to_full(genome))

    def removed_keys(self, genome: Genome) -> list[str]:
        return self.full.removed_keys(self.to_full(genome))

    def to_string(self, genome: Genome) -> str:
        return self.full.to_string(self.to_full(genome))

    def parent_genome(self, genome: Genome) -> Genome:
        """The genome to prune the parent (``prune(teacher, base)``'s distilled weights) with."""
        return relative_genome(self.full, self.base, self.to_full(genome))

    def enumerate(self):
        return (self.from_full(g) for g in self.full.enumerate([u.key for u in self.units]))
