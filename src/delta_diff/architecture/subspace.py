"""Spaces restricted to some units of a full space, the others fixed: answer the calls the search makes.

``SubSpace(space, keys)``: only ``keys`` vary, every other unit is kept (enumerable when small; the search
benchmark knows the true optimum that way). ``NestedSpace`` (``nesting.py``) also fixes a base of removed units.
"""

from __future__ import annotations

import itertools
from typing import Any

from .space import ArchitectureSpace, Genome


class SubSpace:
    def __init__(self, space: ArchitectureSpace, unit_keys: list[str], base: Genome | None = None):
        self.full = space
        self.base = space.validate(base) if base is not None else space.empty()
        self.indices = [space.unit_index(k) for k in unit_keys]
        self.units = tuple(space.units[i] for i in self.indices)
        self.parent_config = space.child_config(self.base)
        self.parent = space.derive(self.base).structure

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

    def enumerate(self):
        """Every distinct valid architecture of the restricted space (2 ** len(units) patterns: keep it small)."""
        seen = set()
        for bits in itertools.product((0, 1), repeat=len(self.units)):
            if not self.is_valid(bits):
                continue
            restricted = self.canonical(bits)
            if restricted not in seen:
                seen.add(restricted)
                yield restricted
