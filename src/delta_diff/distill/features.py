"""Which student stage imitates which parent stage, and hooks that collect their outputs (BK-SDM feature KD).

A student pruned from its parent keeps its levels in order; removing the innermost stage(s) removes the first up
blocks. So student ``down_blocks[i]`` pairs with parent ``down_blocks[i]`` and student ``up_blocks[i]`` with parent
``up_blocks[i + removed_levels]`` (BK-SDM-Tiny: student up 0..2 <- teacher up 1..3). Two rules then say which
module's output stands for a down stage:

``bk_sdm`` (the default, through ``auto``)
    BK-SDM's own recipe (Kim et al. 2023, their distillation script), so that our single-step baseline *is* the
    published baseline. It hooks every whole ``down_blocks.i`` / ``up_blocks.i`` (a down block's output is the
    tensor after its downsampler) and never the mid block. That breaks where the student's level lost its
    downsampler, i.e. its new innermost level after stages were removed (BK-SDM-Tiny's ``down_blocks.2``): the
    parent's block still halves the resolution there. BK-SDM then matches the last cross-attention's ``proj_out``
    of that level on both sides (Tiny: teacher ``down_blocks.2.attentions.1.proj_out`` -> student
    ``down_blocks.2.attentions.0.proj_out``). ``proj_out`` is the transformer's output projection *before* the
    transformer adds its residual input back, the tensor BK-SDM hooks: a 1x1 ``Conv2d`` map (SD 1.x) or, with
    ``use_linear_projection`` (SD 2.x), a ``Linear`` output over flattened tokens; the same on both sides.
    Generalised to any sub-architecture, it does not cover a student whose new innermost level has no usable
    cross-attention on either side (a ``DownBlock2D`` level, or its last attention bypassed: 0 transformer
    layers, where ``proj_out`` only projects the block's own normalised input); asking for it there raises.

``pre_downsampler``
    Matches every down stage *before* its downsampler (the last attention's or, without attention, the last
    ResNet's output), so the outputs agree in resolution on every level whether or not inner stages were removed,
    and it needs no attention anywhere. The mid block is matched when both have one and no level was removed:
    otherwise the student's mid block sits after a shallower level and runs at a finer resolution than the
    parent's, so it has no counterpart. Use it for the architectures ``bk_sdm`` does not cover (the search's
    candidates can be any of them), or to compare against the pairing this project used before.

``auto`` is ``bk_sdm`` where it covers the architecture and ``pre_downsampler`` elsewhere; ``feature_pairing``
says which rule it used. Hooks go on the unwrapped model (DDP prefixes ``module.``; BK-SDM issue #10).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch

FEATURE_PAIRINGS = ("auto", "bk_sdm", "pre_downsampler")


@dataclass(frozen=True)
class FeaturePairing:
    """The matched (student module name, parent module name) pairs and the rule that chose them (never
    ``auto``: ``auto`` resolves to ``bk_sdm`` or ``pre_downsampler``)."""

    pairs: tuple[tuple[str, str], ...]
    rule: str


def feature_pairing(student, parent, rule: str = "auto") -> FeaturePairing:
    """Which student module's output imitates which parent module's, by ``rule`` (one of ``FEATURE_PAIRINGS``).

    Pairs are ordered down stages (outer to inner), then the mid block (``pre_downsampler`` only), then up stages.
    """
    if rule not in FEATURE_PAIRINGS:
        raise ValueError(f"unknown feature pairing {rule!r}; choose one of {', '.join(FEATURE_PAIRINGS)}")
    student, parent = unwrap(student), unwrap(parent)
    n_student, n_parent = len(student.down_blocks), len(parent.down_blocks)
    if n_student > n_parent:
        raise ValueError(f"student has {n_student} levels, its parent only {n_parent}: not a sub-architecture")
    if rule == "auto":
        rule = "pre_downsampler" if _bk_sdm_gap(student, parent) else "bk_sdm"
    elif rule == "bk_sdm" and (gap := _bk_sdm_gap(student, parent)):
        raise ValueError(f"feature pairing 'bk_sdm' does not cover this student: {gap}; "
                         "use `feature_pairing: pre_downsampler`")
    pairs = _bk_sdm_pairs(student, parent) if rule == "bk_sdm" else _pre_downsampler_pairs(student, parent)
    for student_name, parent_name in pairs:
        s_channels = _out_channels(student.get_submodule(student_name))
        p_channels = _out_channels(parent.get_submodule(parent_name))
        if s_channels != p_channels:
            raise ValueError(
                f"student {student_name} outputs {s_channels} channels but parent {parent_name} {p_channels}: "
                "the student is not a sub-architecture of this parent"
            )
    return FeaturePairing(tuple(pairs), rule)


def stage_pairs(student, parent, rule: str = "auto") -> list[tuple[str, str]]:
    """(student module name, parent module name) for every stage whose output is matched (see ``feature_pairing``)."""
    return list(feature_pairing(student, parent, rule).pairs)


def _removed_levels(student, parent) -> int:
    return len(parent.down_blocks) - len(student.down_blocks)


def _lost_downsampler(student, parent, level: int) -> bool:
    return student.down_blocks[level].downsamplers is None and parent.down_blocks[level].downsamplers is not None


def _bk_sdm_gap(student, parent) -> str | None:
    """Why ``bk_sdm`` cannot pair these two, or None where it can."""
    for level in range(len(student.down_blocks)):
        if not _lost_downsampler(student, parent, level):
            continue
        why = (f"its new innermost level down_blocks.{level} lost its downsampler, so BK-SDM matches the last "
               "cross-attention's proj_out there, but")
        for side, model in (("student", student), ("parent", parent)):
            attentions = getattr(model.down_blocks[level], "attentions", None)
            if not attentions:
                return f"{why} the {side}'s down_blocks.{level} has no cross-attention (DownBlock2D)"
            last = len(attentions) - 1
            # A bypassed attention (0 transformer layers) keeps its proj_out, but that only projects the block's
            # normalised input: there is no transformer output to imitate.
            if len(attentions[last].transformer_blocks) == 0:
                return f"{why} the {side}'s down_blocks.{level}.attentions.{last} is bypassed (0 transformer layers)"
    return None


def _bk_sdm_pairs(student, parent) -> list[tuple[str, str]]:
    removed = _removed_levels(student, parent)
    pairs = []
    for level in range(len(student.down_blocks)):
        if _lost_downsampler(student, parent, level):
            pairs.append((_last_proj_out(student, level), _last_proj_out(parent, level)))
        else:
            pairs.append((f"down_blocks.{level}", f"down_blocks.{level}"))
    pairs += [(f"up_blocks.{i}", f"up_blocks.{i + removed}") for i in range(len(student.up_blocks))]
    return pairs


def _last_proj_out(model, level: int) -> str:
    return f"down_blocks.{level}.attentions.{len(model.down_blocks[level].attentions) - 1}.proj_out"


def _pre_downsampler_pairs(student, parent) -> list[tuple[str, str]]:
    removed = _removed_levels(student, parent)
    n_student = len(student.down_blocks)
    # Down stages are matched *before* their downsampler: a student whose inner stages were removed has no
    # downsampler on its new last level, so after it the two outputs would differ in resolution.
    pairs = [(_down_stage_output(student, i), _down_stage_output(parent, i)) for i in range(n_student)]
    if student.mid_block is not None and parent.mid_block is not None and removed == 0:
        pairs.append(("mid_block", "mid_block"))
    pairs += [(f"up_blocks.{i}", f"up_blocks.{i + removed}") for i in range(n_student)]
    return pairs


def _down_stage_output(model, level: int) -> str:
    block = model.down_blocks[level]
    attentions = getattr(block, "attentions", None)
    if attentions is not None and len(attentions):
        return f"down_blocks.{level}.attentions.{len(attentions) - 1}"
    return f"down_blocks.{level}.resnets.{len(block.resnets) - 1}"


def _out_channels(module) -> int:
    """Output channels of a block, a transformer, or a bare projection (Conv2d or, for SD 2.x's proj_out, Linear)."""
    if hasattr(module, "resnets"):
        return module.resnets[-1].out_channels
    if hasattr(module, "out_channels"):
        return module.out_channels
    if hasattr(module, "out_features"):
        return module.out_features
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
