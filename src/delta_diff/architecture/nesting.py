"""Genomes along a distillation path, all in the teacher's coordinates.

Every model on the path is a sub-architecture of the one before (weights are inherited along the path), so each
stage's genome G_i (units of the *teacher* removed so far) contains G_{i-1}, and the student's G_S contains all of
them. The search of stage i varies only the units in G_S but not yet in G_{i-1} (``NestedSpace``); the chosen
G_i is pruned from the distilled M_{i-1} through ``relative_genome``, its equivalent in M_{i-1}'s own space.
"""

from __future__ import annotations

from .space import ArchitectureSpace, Genome, parent_unit
from .structure import ArchitectureError
from .subspace import SubSpace


def relative_genome(teacher_space: ArchitectureSpace, base: Genome, target: Genome) -> Genome:
    """The genome of ``prune(teacher, base)``'s space that removes what ``target`` removes beyond ``base``."""
    base, target = teacher_space.validate(base), teacher_space.validate(target)
    extra = [u.key for u, b, t in zip(teacher_space.units, base, target) if b and not t]
    if extra:
        raise ArchitectureError(f"the target keeps {extra}, which its parent already removed: not a sub-architecture")
    derived = teacher_space.derive(base)
    child = ArchitectureSpace(teacher_space.child_config(base))
    wanted = set(teacher_space.removed_keys(target))
    genome = child.canonical(tuple(int(parent_unit(derived, u).key in wanted) for u in child.units))
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


class NestedSpace(SubSpace):
    """The search space of one path stage, in teacher coordinates: ``base`` always removed, only the units the
    student removes and the parent still has vary."""

    def __init__(self, teacher_space: ArchitectureSpace, base: Genome, student: Genome):
        base, student = teacher_space.validate(base), teacher_space.validate(student)
        if any(b and not s for b, s in zip(base, student)):
            raise ArchitectureError("the student does not remove everything its parent removed: not reachable")
        free = [u.key for u, b, s in zip(teacher_space.units, base, student) if s and not b]
        super().__init__(teacher_space, free, base)

    def parent_genome(self, genome: Genome) -> Genome:
        """The genome to prune the parent (``prune(teacher, base)``'s distilled weights) with."""
        return relative_genome(self.full, self.base, self.to_full(genome))
