"""A normalised view of an SD-family ``UNet2DConditionModel`` config, and the way back to a stock config.

The architecture space reasons about *levels* (one resolution each: a down block and its mirrored up block),
their depth (ResNet/attention pairs) and how many transformer layers each cross-attention holds. This module
turns a diffusers config into that view and a view back into a config that stock diffusers loads, so every
pruned model stays a plain ``UNet2DConditionModel``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CROSS_DOWN, PLAIN_DOWN = "CrossAttnDownBlock2D", "DownBlock2D"
CROSS_UP, PLAIN_UP = "CrossAttnUpBlock2D", "UpBlock2D"
CROSS_MID = "UNetMidBlock2DCrossAttn"
_UP_FOR_DOWN = {CROSS_DOWN: CROSS_UP, PLAIN_DOWN: PLAIN_UP}

# Config keys that hold one value per down block (in down order); dropping inner levels slices them.
PER_BLOCK_KEYS = ("attention_head_dim", "num_attention_heads", "cross_attention_dim", "only_cross_attention")


class ArchitectureError(ValueError):
    """An architecture input (config, genome, preset, checkpoint) that cannot be used; the message says why."""


@dataclass(frozen=True)
class Level:
    """One resolution of the U-Net: ``down_blocks[index]`` and its mirror ``up_blocks[L-1-index]``.

    ``down_attn``/``up_attn`` give the transformer-layer count of the cross-attention after each ResNet
    (0 = bypassed: the residual transformer body is gone, its GroupNorm and 1x1 projections stay). Levels
    without attention (``DownBlock2D``/``UpBlock2D``) hold zeros there.
    """

    channels: int
    has_attention: bool
    down_attn: tuple[int, ...]
    up_attn: tuple[int, ...]

    @property
    def depth(self) -> int:
        return len(self.down_attn)


@dataclass(frozen=True)
class UNetStructure:
    """The removable structure of an SD-family U-Net; ``mid_attn`` is None when the mid block is removed."""

    levels: tuple[Level, ...]
    mid_attn: int | None

    @property
    def has_mid(self) -> bool:
        return self.mid_attn is not None


def load_unet_config(path: str | Path) -> dict[str, Any]:
    """Read a U-Net config from a ``config.json``, a U-Net folder, or a pipeline folder (its ``unet/``)."""
    path = Path(path)
    candidates = [path] if path.suffix == ".json" else [path / "config.json", path / "unet" / "config.json"]
    for candidate in candidates:
        if candidate.is_file():
            try:
                config = json.loads(candidate.read_text())
            except json.JSONDecodeError as error:
                raise ArchitectureError(f"{candidate} is not valid JSON ({error}); fix or regenerate the config") from None
            if not isinstance(config, dict):
                raise ArchitectureError(f"{candidate} holds a JSON {type(config).__name__}, expected an object")
            return config
    raise ArchitectureError(
        f"no U-Net config at {path}: give a config.json, a U-Net folder or a pipeline folder with unet/config.json"
    )


def _per_block(value: Any, n_blocks: int, key: str) -> list:
    if isinstance(value, (list, tuple)):
        if len(value) != n_blocks:
            raise ArchitectureError(f"config key {key!r} has {len(value)} entries for {n_blocks} down blocks")
        return list(value)
    return [value] * n_blocks


def _per_layer(value: Any, n_layers: int, key: str) -> tuple[int, ...]:
    if isinstance(value, (list, tuple)):
        if len(value) < n_layers:
            raise ArchitectureError(f"config key {key!r} lists {len(value)} layers where the block has {n_layers}")
        return tuple(int(v) for v in value[:n_layers])
    return (int(value),) * n_layers


def parse_structure(config: dict[str, Any]) -> UNetStructure:
    """Read the removable structure from a diffusers ``UNet2DConditionModel`` config; reject non-SD-family ones."""
    class_name = config.get("_class_name", "UNet2DConditionModel")
    if class_name != "UNet2DConditionModel":
        raise ArchitectureError(f"config is a {class_name}, not an SD-family UNet2DConditionModel")
    try:
        down_types = list(config["down_block_types"])
        up_types = list(config["up_block_types"])
        channels = list(config["block_out_channels"])
    except KeyError as missing:
        raise ArchitectureError(f"U-Net config lacks {missing}; is this a UNet2DConditionModel config?") from None
    n_levels = len(down_types)
    if n_levels == 0 or len(up_types) != n_levels or len(channels) != n_levels:
        raise ArchitectureError(
            f"config has {len(down_types)} down blocks, {len(up_types)} up blocks and {len(channels)} channel "
            "entries; an SD-family U-Net mirrors them one to one"
        )
    for i, down_type in enumerate(down_types):
        if down_type not in _UP_FOR_DOWN:
            raise ArchitectureError(
                f"down_block_types[{i}] = {down_type!r}: only {CROSS_DOWN} and {PLAIN_DOWN} are SD-family blocks"
            )
        if up_types[n_levels - 1 - i] != _UP_FOR_DOWN[down_type]:
            raise ArchitectureError(
                f"up_block_types[{n_levels - 1 - i}] = {up_types[n_levels - 1 - i]!r} does not mirror "
                f"down_block_types[{i}] = {down_type!r} (expected {_UP_FOR_DOWN[down_type]!r})"
            )
    mid_type = config.get("mid_block_type", CROSS_MID)
    if mid_type not in (CROSS_MID, None):
        raise ArchitectureError(f"mid_block_type {mid_type!r} is not SD-family (expected {CROSS_MID!r} or null)")

    depths = [int(d) for d in _per_block(config.get("layers_per_block", 2), n_levels, "layers_per_block")]
    if any(d < 1 for d in depths):
        raise ArchitectureError(f"layers_per_block {depths} has a level with no layers")
    down_tl = _per_block(config.get("transformer_layers_per_block", 1), n_levels, "transformer_layers_per_block")
    reverse_tl = config.get("reverse_transformer_layers_per_block")
    up_tl = list(reversed(down_tl)) if reverse_tl is None else _per_block(
        reverse_tl, n_levels, "reverse_transformer_layers_per_block"
    )
    levels = []
    for i in range(n_levels):
        has_attention = down_types[i] == CROSS_DOWN
        depth = depths[i]
        if has_attention:
            down_attn = _per_layer(down_tl[i], depth, "transformer_layers_per_block")
            up_attn = _per_layer(up_tl[n_levels - 1 - i], depth + 1, "reverse_transformer_layers_per_block")
        else:
            down_attn, up_attn = (0,) * depth, (0,) * (depth + 1)
        levels.append(Level(int(channels[i]), has_attention, down_attn, up_attn))
    # diffusers builds the mid block's attention from the *last* down block's transformer entry.
    last_tl = down_tl[-1]
    mid_attn = None if mid_type is None else int(last_tl[0] if isinstance(last_tl, (list, tuple)) else last_tl)
    return UNetStructure(tuple(levels), mid_attn)


def _transformer_layer_config(structure: UNetStructure) -> tuple[Any, Any]:
    """``(transformer_layers_per_block, reverse_transformer_layers_per_block)`` for a structure.

    Uniform counts stay a plain int (as in every stock SD config); anything else becomes diffusers' per-layer
    lists. The last down entry doubles as the mid block's count, which is why a cross-attention last level
    and a mid block must agree (checked by the genome space before we get here).
    """
    counts = {c for lvl in structure.levels if lvl.has_attention for c in lvl.down_attn + lvl.up_attn}
    if structure.has_mid:
        counts.add(structure.mid_attn)
    if len(counts) <= 1:
        return (counts.pop() if counts else 1), None
    down = [list(lvl.down_attn) for lvl in structure.levels]
    last = structure.levels[-1]
    if not last.has_attention:
        down[-1] = [structure.mid_attn or 0]
    elif structure.has_mid and last.down_attn[0] != structure.mid_attn:
        raise ArchitectureError(
            "the mid block and the first attention of the innermost down block must have the same transformer "
            "depth (diffusers builds both from one config entry)"
        )
    reverse = [list(lvl.up_attn) for lvl in reversed(structure.levels)]
    return down, reverse


def structure_to_config(parent_config: dict[str, Any], structure: UNetStructure) -> dict[str, Any]:
    """A stock diffusers config for ``structure``, keeping every other setting of ``parent_config``."""
    n_levels = len(structure.levels)
    config = {k: v for k, v in parent_config.items() if not k.startswith("_")}
    down_types = [CROSS_DOWN if lvl.has_attention else PLAIN_DOWN for lvl in structure.levels]
    config["down_block_types"] = down_types
    config["up_block_types"] = [_UP_FOR_DOWN[t] for t in reversed(down_types)]
    config["block_out_channels"] = [lvl.channels for lvl in structure.levels]
    depths = [lvl.depth for lvl in structure.levels]
    config["layers_per_block"] = depths[0] if len(set(depths)) == 1 else depths
    config["mid_block_type"] = CROSS_MID if structure.has_mid else None
    tl, reverse_tl = _transformer_layer_config(structure)
    config["transformer_layers_per_block"] = tl
    config["reverse_transformer_layers_per_block"] = reverse_tl
    for key in PER_BLOCK_KEYS:
        if isinstance(parent_config.get(key), (list, tuple)):
            config[key] = list(parent_config[key])[:n_levels]
    return config
