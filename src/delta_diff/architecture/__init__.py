"""The U-Net architecture space: genomes over removable units, pruning with weight inheritance, presets,
parameter counting and plain-language descriptions. Kedro-free."""

from .describe import describe_removed, describe_structure, describe_unit
from .presets import PRESETS, PresetName, preset_genome
from .prune import count_params, prune
from .space import ArchitectureSpace, Genome, Unit
from .subspace import SubSpace
from .nesting import NestedSpace, equal_budgets, relative_genome
from .summary import genome_report, space_summary
from .structure import ArchitectureError, UNetStructure, load_unet_config, parse_structure, structure_to_config

__all__ = [
    "PRESETS",
    "PresetName",
    "ArchitectureError",
    "ArchitectureSpace",
    "SubSpace",
    "NestedSpace",
    "equal_budgets",
    "relative_genome",
    "Genome",
    "UNetStructure",
    "Unit",
    "count_params",
    "describe_removed",
    "describe_structure",
    "describe_unit",
    "genome_report",
    "space_summary",
    "load_unet_config",
    "parse_structure",
    "preset_genome",
    "prune",
    "structure_to_config",
]
