"""A space restricted to some units of a parent's space (the others always kept): enumerable when small, used
by the search benchmark to know the true optimum. It answers the calls the search makes on a full space."""

from __future__ import annotations

from typing import Any

from .space import ArchitectureSpace, Genome


class SubSpace:
    def __init__(self, space: ArchitectureSpace, unit_keys: list[str]):
        self.full = space
        self.indices = [space.unit_index(k) for k in unit_keys]
        self.units = tuple(space.units[i] for i in self.indices)
        self.parent_config = space.parent_config
        self.parent = space.parent

    def __len__(self) -> int:
        return len(self.units)

    def to_full(self, genome: Genome) -> Genome:
        bits = [0] * len(self.full.units)
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

    def enumerate(self):
        return (self.from_full(g) for g in self.full.enumerate([u.key for u in self.units]))
