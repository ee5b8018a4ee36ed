"""Build a pruned U-Net from a parent and a genome, inheriting every kept weight (no retraining)."""

from __future__ import annotations

from functools import lru_cache
import json

import torch
from diffusers import UNet2DConditionModel

from .space import ArchitectureSpace, Derived, Genome
from .structure import ArchitectureError


def module_map(derived: Derived, n_parent_levels: int) -> dict[str, str]:
    """Child module prefix -> parent module prefix for every block whose index moves under pruning.

    Modules not listed (conv_in, time embedding, mid block, norms, conv_out) keep their names.
    """
    n_child = len(derived.kept_down)
    mapping = {}
    for level in range(n_child):
        up_child, up_parent = n_child - 1 - level, n_parent_levels - 1 - level
        for part in ("resnets", "attentions"):
            for ci, pi in enumerate(derived.kept_down[level]):
                mapping[f"down_blocks.{level}.{part}.{ci}"] = f"down_blocks.{level}.{part}.{pi}"
            for ci, pi in enumerate(derived.kept_up[level]):
                mapping[f"up_blocks.{up_child}.{part}.{ci}"] = f"up_blocks.{up_parent}.{part}.{pi}"
        mapping[f"up_blocks.{up_child}.upsamplers"] = f"up_blocks.{up_parent}.upsamplers"
    return mapping


def parent_key(child_key: str, mapping: dict[str, str]) -> str:
    parts = child_key.split(".")
    # Longest prefix first: block prefixes are at most 4 dotted parts deep.
    for n in range(min(4, len(parts)), 1, -1):
        prefix = ".".join(parts[:n])
        if prefix in mapping:
            return ".".join([mapping[prefix], *parts[n:]])
    return child_key


def prune(parent: UNet2DConditionModel, genome: Genome, space: ArchitectureSpace | None = None) -> UNet2DConditionModel:
    """A new ``UNet2DConditionModel`` for ``genome`` whose every tensor is copied from ``parent``.

    The child is built on the parent's device and dtype, in the parent's train/eval mode; the parent is
    not modified.
    """
    space = space or ArchitectureSpace(dict(parent.config))
    derived = space.derive(genome)
    config = space.child_config(genome)
    mapping = module_map(derived, len(space.parent.levels))
    parent_state = parent.state_dict()
    with torch.device("meta"):
        child = UNet2DConditionModel.from_config(config)
    child_state = {}
    for key, meta_tensor in child.state_dict().items():
        source = parent_key(key, mapping)
        if source not in parent_state:
            raise ArchitectureError(f"pruned model needs {key!r} but the parent has no {source!r}")
        tensor = parent_state[source]
        if tensor.shape != meta_tensor.shape:
            raise ArchitectureError(
                f"{key!r} needs shape {tuple(meta_tensor.shape)} but parent {source!r} has {tuple(tensor.shape)}"
            )
        child_state[key] = tensor.detach().clone()
    # assign=True adopts the cloned tensors, so the child lives on the parent's device and dtype as is.
    child.load_state_dict(child_state, assign=True)
    child.train(parent.training)
    return child


@lru_cache(maxsize=4096)
def _count_params_cached(config_json: str) -> int:
    with torch.device("meta"):
        model = UNet2DConditionModel.from_config(json.loads(config_json))
    return sum(p.numel() for p in model.parameters())


def count_params(config: dict) -> int:
    """Parameters of the U-Net a config describes, counted on the meta device (no weights are allocated)."""
    clean = {k: v for k, v in config.items() if not k.startswith("_")}
    return _count_params_cached(json.dumps(clean, sort_keys=True))
