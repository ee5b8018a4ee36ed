"""Say in words what a genome removes and what is left (a printed diffusers model does not tell you)."""

from __future__ import annotations

from .space import ArchitectureSpace, Genome, Unit
from .structure import UNetStructure


def describe_unit(space: ArchitectureSpace, unit: Unit) -> str:
    n_levels = len(space.parent.levels)
    if unit.kind == "stage":
        above, last_up = unit.level - 1, n_levels - 1 - unit.level
        downs = f"down_blocks.{unit.level}" + (f"..{n_levels - 1}" if unit.level < n_levels - 1 else "")
        ups = "up_blocks.0" + (f"..{last_up}" if last_up > 0 else "")
        what = "innermost stage" if unit.level == n_levels - 1 else f"stages {unit.level}..{n_levels - 1}"
        return f"{what}: {downs}, {ups} and down_blocks.{above}.downsamplers"

    if unit.kind == "mid":
        return "mid block (mid_block: 2 ResNets + cross-attention)"
    if unit.kind == "mid_attn":
        return "cross-attention transformer of mid_block.attentions.0 (bypassed; norm and projections stay)"
    up = n_levels - 1 - unit.level
    if unit.kind == "pair":
        parts = "resnets.{j} + attentions.{j}" if space.parent.levels[unit.level].has_attention else "resnets.{j}"
        j = unit.index
        return (
            f"layer pair {j} of level {unit.level}: down_blocks.{unit.level}.{parts.format(j=j)} "
            f"and up_blocks.{up}.{parts.format(j=j)}"
        )
    block = f"down_blocks.{unit.level}" if unit.kind == "down_attn" else f"up_blocks.{up}"
    return f"cross-attention transformer of {block}.attentions.{unit.index} (bypassed; norm and projections stay)"


def describe_removed(space: ArchitectureSpace, genome: Genome) -> list[str]:
    """One sentence per removed unit, in parent module names."""
    genome = space.canonical(genome)
    return [describe_unit(space, u) for u, bit in zip(space.units, genome) if bit]


def describe_structure(structure: UNetStructure) -> list[str]:
    """One line per level of what a model keeps, e.g. ``level 1 (64 ch): 2 layers, attention 1/1 down, ...``."""
    lines = []
    for i, lvl in enumerate(structure.levels):
        line = f"level {i} ({lvl.channels} ch): {lvl.depth} down / {lvl.depth + 1} up layers"
        if lvl.has_attention:
            down_on = sum(1 for n in lvl.down_attn if n)
            up_on = sum(1 for n in lvl.up_attn if n)
            line += f", cross-attention in {down_on}/{lvl.depth} down and {up_on}/{lvl.depth + 1} up layers"
        lines.append(line)
    if structure.mid_attn is None:
        lines.append("mid block: removed")
    else:
        lines.append("mid block: kept" + ("" if structure.mid_attn else " (attention bypassed)"))
    return lines
