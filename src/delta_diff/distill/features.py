"""Which student stage imitates which parent stage, and hooks that collect their outputs (BK-SDM feature KD).

A student pruned from its parent keeps its levels in order; removing the innermost stage(s) removes the first up
blocks. So student ``down_blocks[i]`` pairs with parent ``down_blocks[i]`` and student ``up_blocks[i]`` with parent
``up_blocks[i + removed_levels]`` (BK-SDM-Tiny: student up 0..2 <- teacher up 1..3). The mid block pairs with the
mid block when both have one and no level was removed: otherwise the student's mid block sits after a shallower
level and runs at a finer resolution than the parent's, so it has no counterpart. Hooks go on the unwrapped model
(DDP prefixes ``module.``; BK-SDM issue #10).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


def stage_pairs(student, parent) -> list[tuple[str, str]]:
    """(student module name, parent module name) for every stage whose output is matched."""
    n_student, n_parent = len(student.down_blocks), len(parent.down_blocks)
    if n_student > n_parent:
        raise ValueError(f"student has {n_student} levels, its parent only {n_parent}: not a sub-architecture")
    removed = n_parent - n_student
    # Down stages are matched *before* their downsampler: a student whose inner stages were removed has no
    # downsampler on its new last level, so after it the two outputs would differ in resolution.
    pairs = [(_down_stage_output(student, i), _down_stage_output(parent, i)) for i in range(n_student)]
    if student.mid_block is not None and parent.mid_block is not None and removed == 0:
        pairs.append(("mid_block", "mid_block"))
    pairs += [(f"up_blocks.{i}", f"up_blocks.{i + removed}") for i in range(n_student)]
    for student_name, parent_name in pairs:
        s_channels = _out_channels(student.get_submodule(student_name))
        p_channels = _out_channels(parent.get_submodule(parent_name))
        if s_channels != p_channels:
            raise ValueError(
                f"student {student_name} outputs {s_channels} channels but parent {parent_name} {p_channels}: "
                "the student is not a sub-architecture of this parent"
            )
    return pairs


def _down_stage_output(model, level: int) -> str:
    block = model.down_blocks[level]
    attentions = getattr(block, "attentions", None)
    if attentions is not None and len(attentions):
        return f"down_blocks.{level}.attentions.{len(attentions) - 1}"
    return f"down_blocks.{level}.resnets.{len(block.resnets) - 1}"


def _out_channels(module) -> int:
    if hasattr(module, "resnets"):
        return module.resnets[-1].out_channels
    if hasattr(module, "out_channels"):
        return module.out_channels
    return module.proj_out.out_features if hasattr(module.proj_out, "out_features") else module.proj_out.out_channels


def unwrap(model):
    """The model under DDP/accelerate wrappers (their ``.module``), where the hooked names are the plain ones."""
    while hasattr(model, "module"):
        model = model.module
    return model


@contextmanager
def collect_outputs(model, names: list[str]) -> Iterator[dict[str, torch.Tensor]]:
    """Within the block, each forward pass of ``model`` fills the yielded dict with the named modules' outputs."""
    outputs: dict[str, torch.Tensor] = {}
    handles = []
    model = unwrap(model)
    for name in names:
        def hook(module, inputs, output, name=name):
            outputs[name] = output[0] if isinstance(output, tuple) else output
        handles.append(model.get_submodule(name).register_forward_hook(hook))
    try:
        yield outputs
    finally:
        for handle in handles:
            handle.remove()
