"""JSON-ready answers to "what does this genome remove, what is left, how many parameters?" (CLI and Kedro)."""

from __future__ import annotations

from typing import Any

from .describe import describe_removed, describe_structure, describe_unit
from .presets import preset_genome
from .prune import count_params
from .space import ArchitectureSpace, Genome


def genome_report(space: ArchitectureSpace, genome: Genome, list_units: bool = False) -> dict[str, Any]:
    """Parameters, reduction and a plain-language list of removed blocks for one genome of ``space``."""
    genome = space.validate(genome)
    params, parent_params = count_params(space.child_config(genome)), count_params(space.parent_config)
    result = {
        "params": params,
        "teacher_params": parent_params,
        "reduction": round(1 - params / parent_params, 4),
        "genome": space.to_string(genome),
        "removed_units": space.removed_keys(genome),
        "removed": describe_removed(space, genome),
        "kept": describe_structure(space.derive(genome).structure),
        "space_size": space.count(),
    }
    if list_units:
        result["units"] = {u.key: describe_unit(space, u) for u in space.units}
    return result


def space_summary(parent_config: dict[str, Any], presets: list[str]) -> dict[str, Any]:
    """The parent's removable units, the size of its space and each named preset's report."""
    space = ArchitectureSpace(parent_config)
    return {
        "parent_params": count_params(space.parent_config),
        "space_size": space.count(),
        "units": {u.key: describe_unit(space, u) for u in space.units},
        "presets": {name: genome_report(space, preset_genome(space, name)) for name in presets},
    }
