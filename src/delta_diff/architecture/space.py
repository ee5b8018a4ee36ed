"""The genome: which removable units of a parent U-Net a sub-architecture drops.

Units (DESIGN.md §2, BK-SDM's made finer), derived from the parent's structure so that a pruned model has a
space of its own (a subset of its parent's, see ``ArchitectureSpace.compose``):

* ``pair:L.j``      layer pair j >= 1 of level L: down ResNet+attention j *and* up ResNet+attention j. They go
                    together because every up ResNet eats one skip connection (up depth = down depth + 1).
                    Pair 0 and the last up pair stay: their input shapes differ from the others' (channel change,
                    skip from the level above), so only they can inherit those weights (BK-SDM keeps up 0 and 2).
* ``down_attn:L.j`` / ``up_attn:L.j``  bypass one cross-attention transformer (it is residual).
* ``mid`` / ``mid_attn``  remove the mid block, or bypass its attention.
* ``stage:L``       remove level L and every level below it (BK-SDM-Tiny drops the innermost stage), only where
                    the kept levels' channels still line up with the mid block and up path.

A genome is a tuple of 0/1 per unit (1 = remove). Bits that cannot matter (an attention inside a removed pair,
anything inside a removed stage) are "don't care"; ``canonical`` zeroes them so equal architectures compare equal.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from .structure import ArchitectureError, Level, UNetStructure, parse_structure, structure_to_config


@dataclass(frozen=True)
class Unit:
    """One removable unit; ``key`` is stable and readable (used in genome strings and reports)."""

    kind: str  # "stage" | "mid" | "mid_attn" | "pair" | "down_attn" | "up_attn"
    level: int | None = None
    index: int | None = None

    @property
    def key(self) -> str:
        if self.level is None:
            return self.kind
        if self.index is None:
            return f"{self.kind}:{self.level}"
        return f"{self.kind}:{self.level}.{self.index}"


@dataclass(frozen=True)
class Derived:
    """What a genome leaves: the child structure and, per kept level, which parent layers each child layer is."""

    structure: UNetStructure
    kept_down: tuple[tuple[int, ...], ...]  # per child level: parent down-layer index of each child layer
    kept_up: tuple[tuple[int, ...], ...]


Genome = tuple[int, ...]


class ArchitectureSpace:
    """All sub-architectures of one parent U-Net config that the units above can reach."""

    def __init__(self, parent_config: dict[str, Any]):
        self.parent_config = dict(parent_config)
        self.parent = parse_structure(parent_config)
        self.units: tuple[Unit, ...] = tuple(self._units())
        self._index = {unit.key: i for i, unit in enumerate(self.units)}

    # ----------------------------------------------------------------- units
    def _droppable_stages(self) -> list[int]:
        levels = self.parent.levels
        return [
            s for s in range(1, len(levels))
            if all(levels[k].channels == levels[s - 1].channels for k in range(s, len(levels)))
        ]

    def _units(self) -> Iterator[Unit]:
        for stage in self._droppable_stages():
            yield Unit("stage", stage)
        if self.parent.has_mid:
            yield Unit("mid")
            if self.parent.mid_attn:
                yield Unit("mid_attn")
        for li, lvl in enumerate(self.parent.levels):
            for j in range(1, lvl.depth):
                yield Unit("pair", li, j)
        for kind, attr in (("down_attn", "down_attn"), ("up_attn", "up_attn")):
            for li, lvl in enumerate(self.parent.levels):
                if lvl.has_attention:
                    yield from (Unit(kind, li, j) for j, n in enumerate(getattr(lvl, attr)) if n > 0)

    def __len__(self) -> int:
        return len(self.units)

    def unit_index(self, key: str) -> int:
        try:
            return self._index[key]
        except KeyError:
            raise ArchitectureError(
                f"unknown unit {key!r} for this parent; its units are: {', '.join(self._index)}"
            ) from None

    # --------------------------------------------------------------- genomes
    def empty(self) -> Genome:
        return (0,) * len(self.units)

    def from_keys(self, keys: Iterable[str]) -> Genome:
        bits = [0] * len(self.units)
        for key in keys:
            bits[self.unit_index(key.strip())] = 1
        return tuple(bits)

    def removed_keys(self, genome: Genome) -> list[str]:
        return [u.key for u, b in zip(self.units, self.canonical(genome)) if b]

    def parse(self, text: str) -> Genome:
        """A genome from a bit string (``0101...``, one per unit) or a comma list of unit keys (``mid,pair:0.1``)."""
        text = text.strip()
        if text and set(text) <= {"0", "1"}:
            return self.validate(tuple(int(c) for c in text))
        if text and text.isdigit():  # a bit string with another digit, not a list of unit keys
            bad = sorted(set(text) - {"0", "1"})
            raise ArchitectureError(f"genome {text!r} holds {', '.join(bad)}: a bit string may hold only 0 (keep) "
                                    f"and 1 (remove), one per unit ({len(self.units)} here)")
        if text in ("", "none"):
            return self.empty()
        return self.validate(self.from_keys(k for k in text.split(",") if k.strip()))

    def to_string(self, genome: Genome) -> str:
        return "".join(str(b) for b in genome)

    def _check_shape(self, genome: Genome) -> Genome:
        genome = tuple(int(b) for b in genome)
        if len(genome) != len(self.units):
            raise ArchitectureError(
                f"genome has {len(genome)} genes but this parent has {len(self.units)} units "
                f"({', '.join(u.key for u in self.units)}); was it made for another parent?"
            )
        if any(b not in (0, 1) for b in genome):
            raise ArchitectureError(f"genome {genome} must hold only 0 (keep) and 1 (remove)")
        return genome

    def _kept_levels(self, genome: Genome) -> int:
        removed_stages = [u.level for u, b in zip(self.units, genome) if b and u.kind == "stage"]
        return min(removed_stages, default=len(self.parent.levels))

    def _relevant(self, unit: Unit, genome: Genome, n_kept: int) -> bool:
        on = dict(zip(self.units, genome))
        if unit.kind == "stage":
            return all(not on[Unit("stage", s)] for s in self._droppable_stages() if s < unit.level)
        if unit.kind == "mid_attn":
            return not on[Unit("mid")]
        if unit.kind in ("pair", "down_attn", "up_attn"):
            if unit.level >= n_kept:
                return False
            depth = self.parent.levels[unit.level].depth
            if unit.kind != "pair" and 1 <= unit.index < depth:
                return not on.get(Unit("pair", unit.level, unit.index), 0)
        return True

    def canonical(self, genome: Genome) -> Genome:
        """Zero the don't-care bits so that genomes of the same architecture are equal."""
        genome = self._check_shape(genome)
        n_kept = self._kept_levels(genome)
        return tuple(b if b and self._relevant(u, genome, n_kept) else 0 for u, b in zip(self.units, genome))

    def derive(self, genome: Genome) -> Derived:
        """The child structure a genome leaves, with the parent layer behind every child layer."""
        genome = self.canonical(genome)
        on = {u: b for u, b in zip(self.units, genome)}
        n_kept = self._kept_levels(genome)
        levels, kept_down, kept_up = [], [], []
        for li, lvl in enumerate(self.parent.levels[:n_kept]):
            dropped = {j for j in range(1, lvl.depth) if on[Unit("pair", li, j)]}
            down = tuple(j for j in range(lvl.depth) if j not in dropped)
            up = tuple(j for j in range(lvl.depth + 1) if j not in dropped)
            down_attn = tuple(0 if on.get(Unit("down_attn", li, j)) else lvl.down_attn[j] for j in down)
            up_attn = tuple(0 if on.get(Unit("up_attn", li, j)) else lvl.up_attn[j] for j in up)
            levels.append(Level(lvl.channels, lvl.has_attention, down_attn, up_attn))
            kept_down.append(down)
            kept_up.append(up)
        mid_attn = None
        if self.parent.has_mid and not on[Unit("mid")]:
            mid_attn = 0 if on.get(Unit("mid_attn")) else self.parent.mid_attn
        structure = UNetStructure(tuple(levels), mid_attn)
        last = structure.levels[-1]
        if structure.has_mid and last.has_attention and last.down_attn[0] != structure.mid_attn:
            removed = ", ".join(self.removed_keys(genome)) or "nothing"
            raise ArchitectureError(
                f"impossible combination (removes {removed}): with level {n_kept - 1} innermost, diffusers builds "
                f"the mid block's attention from down_attn:{n_kept - 1}.0, so bypass both or neither"
            )
        return Derived(structure, tuple(kept_down), tuple(kept_up))

    def validate(self, genome: Genome) -> Genome:
        self.derive(genome)
        return self.canonical(genome)

    def is_valid(self, genome: Genome) -> bool:
        try:
            self.derive(genome)
        except ArchitectureError:
            return False
        return True

    def child_config(self, genome: Genome) -> dict[str, Any]:
        return structure_to_config(self.parent_config, self.derive(genome).structure)

    def child_space(self, genome: Genome) -> ArchitectureSpace:
        return ArchitectureSpace(self.child_config(genome))

    # ---------------------------------------------------------- whole space
    def enumerate(self, units: Iterable[str] | None = None) -> Iterator[Genome]:
        """Every distinct valid architecture (canonical genomes), optionally over a subset of unit keys only.

        Exponential in the number of units: meant for restricted spaces (benchmarks, tests).
        """
        free = [self.unit_index(k) for k in units] if units is not None else list(range(len(self.units)))
        seen = set()
        for bits in itertools.product((0, 1), repeat=len(free)):
            genome = [0] * len(self.units)
            for i, b in zip(free, bits):
                genome[i] = b
            canonical = self.canonical(tuple(genome))
            if canonical not in seen and self.is_valid(canonical):
                seen.add(canonical)
                yield canonical

    def count(self) -> int:
        """How many distinct valid sub-architectures (parent included) this space holds, without enumerating
        the attention bits: they are independent apart from the mid/innermost tie, so they are counted per
        structural choice."""
        structural = [i for i, u in enumerate(self.units) if u.kind in ("stage", "mid", "pair")]
        attn = [i for i, u in enumerate(self.units) if u.kind not in ("stage", "mid", "pair")]
        total = 0
        for bits in itertools.product((0, 1), repeat=len(structural)):
            base = [0] * len(self.units)
            for i, b in zip(structural, bits):
                base[i] = b
            if self.canonical(tuple(base)) != tuple(base):
                continue
            n_kept = self._kept_levels(tuple(base))
            relevant = [i for i in attn if self._relevant(self.units[i], tuple(base), n_kept)]
            tied = self._tied_units(tuple(base), n_kept, relevant)
            free = len(relevant) - len(tied)
            valid_tied = 0
            for tbits in itertools.product((0, 1), repeat=len(tied)):
                genome = list(base)
                for i, b in zip(tied, tbits):
                    genome[i] = b
                valid_tied += self.is_valid(tuple(genome))
            total += valid_tied * 2**free
        return total

    def _tied_units(self, genome: Genome, n_kept: int, relevant: list[int]) -> list[int]:
        keys = {"mid_attn", f"down_attn:{n_kept - 1}.0"}
        return [i for i in relevant if self.units[i].key in keys]

    # ------------------------------------------------------------- chaining
    def compose(self, first: Genome, second: Genome) -> Genome:
        """The genome of this parent that gives ``prune(prune(parent, first), second)`` in one step.

        ``second`` is a genome of the child's space; every one of its units maps to a unit of this space,
        which is what makes a child's space a subset of its parent's.
        """
        first = self.validate(first)
        derived = self.derive(first)
        child = ArchitectureSpace(structure_to_config(self.parent_config, derived.structure))
        second = child.validate(second)
        bits = list(first)
        for unit, bit in zip(child.units, second):
            if bit:
                bits[self.unit_index(parent_unit(derived, unit).key)] = 1
        return self.validate(tuple(bits))


def parent_unit(derived: Derived, unit: Unit) -> Unit:
    """The parent's unit that a unit of the child space (``derived`` from the parent) stands for: layer
    indices shift where earlier layers were pruned; levels, the mid block and stages keep their names."""
    if unit.kind in ("pair", "down_attn"):
        return replace(unit, index=derived.kept_down[unit.level][unit.index])
    if unit.kind == "up_attn":
        return replace(unit, index=derived.kept_up[unit.level][unit.index])
    return unit
