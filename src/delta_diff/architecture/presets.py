"""BK-SDM presets (Kim et al., 2023, "BK-SDM: A Lightweight, Fast, and Cheap Version of Stable Diffusion") as
points of a parent's architecture space.

From SD v1.4's U-Net (859,520,964 params) they give exactly 579,384,964 (Base), 482,346,884 (Small) and
323,384,964 (Tiny) parameters, the counts in the BK-SDM paper's Table 1 and model cards.
"""

from __future__ import annotations

from typing import Literal

from .space import ArchitectureSpace, Genome
from .structure import ArchitectureError


def _base(space: ArchitectureSpace) -> list[str]:
    # layers_per_block=1 everywhere: drop every layer pair but the first (up blocks keep their first and last).
    return [u.key for u in space.units if u.kind == "pair"]


def _small(space: ArchitectureSpace) -> list[str]:
    if not space.parent.has_mid:
        raise ArchitectureError("preset 'bk-sdm-small' removes the mid block, but this parent has none")
    return _base(space) + ["mid"]


def _tiny(space: ArchitectureSpace) -> list[str]:
    innermost = len(space.parent.levels) - 1
    if f"stage:{innermost}" not in {u.key for u in space.units}:
        raise ArchitectureError(
            "preset 'bk-sdm-tiny' removes the innermost stage, which this parent cannot lose (it has "
            f"{innermost + 1} levels whose channels {[lvl.channels for lvl in space.parent.levels]} do not "
            "let the next level take its place)"
        )
    return _small(space) + [f"stage:{innermost}"]


PRESETS = {
    "teacher": lambda space: [],
    "bk-sdm-base": _base,
    "bk-sdm-small": _small,
    "bk-sdm-tiny": _tiny,
}
# A preset's name as a settings type: an unknown name is refused when the run starts, listing the known ones.
PresetName = Literal[tuple(PRESETS)]


def preset_genome(space: ArchitectureSpace, name: str) -> Genome:
    """The genome of a named preset in ``space`` (relative to that space's parent)."""
    if name not in PRESETS:
        raise ArchitectureError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return space.validate(space.from_keys(PRESETS[name](space)))
