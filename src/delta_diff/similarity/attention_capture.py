"""Capture cross-attention (``attn2``) probability maps of a diffusers U-Net, DAAM-style.

diffusers' default processors (SDPA) never materialise attention probabilities, so for the duration of a capture
every ``attn2`` processor is wrapped in a recorder. The recorder computes the probabilities from the module's own
projections (``to_q``/``to_k``/``get_attention_scores``) and then calls the *original* processor, so the U-Net's
output is exactly what it would have been. The original processors are restored on exit, even after an error.

Aggregation (Tang et al., 2022, "What the DAAM"): per call, mean over heads, reshape the query axis to the
block's spatial grid, upsample to one common resolution; then average over all cross-attention layers and calls.
Works for any number of blocks, so a pruned candidate and its parent are compared on the same grid.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F


class _RecordingProcessor:
    def __init__(self, original, recorder: CrossAttentionRecorder):
        self.original = original
        self.recorder = recorder

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, **kwargs):
        if encoder_hidden_states is not None:
            self.recorder.record(attn, hidden_states, encoder_hidden_states, attention_mask, temb)
        return self.original(attn, hidden_states, encoder_hidden_states, attention_mask, temb, **kwargs)


class CrossAttentionRecorder:
    """Accumulates the mean cross-attention map per text token: ``maps()`` -> batch x tokens x R x R."""

    def __init__(self, resolution: int, latent_shape: tuple[int, int]):
        self.resolution = resolution
        self.latent_shape = latent_shape
        self._sum: torch.Tensor | None = None
        self._count = 0

    @torch.no_grad()
    def record(self, attn, hidden_states, encoder_hidden_states, attention_mask, temb) -> None:
        if attn.spatial_norm is not None:
            hidden_states = attn.spatial_norm(hidden_states, temb)
        if hidden_states.ndim == 4:
            b, c, h, w = hidden_states.shape
            hidden_states = hidden_states.view(b, c, h * w).transpose(1, 2)
        batch, queries, _ = hidden_states.shape
        if attn.group_norm is not None:
            hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)
        context = encoder_hidden_states
        if attn.norm_cross:
            context = attn.norm_encoder_hidden_states(context)
        mask = attn.prepare_attention_mask(attention_mask, context.shape[1], batch)
        query = attn.head_to_batch_dim(attn.to_q(hidden_states))
        key = attn.head_to_batch_dim(attn.to_k(context))
        probs = attn.get_attention_scores(query, key, mask)  # (batch*heads) x queries x tokens
        heads = probs.shape[0] // batch
        height, width = self._grid(queries)
        maps = probs.float().view(batch, heads, height, width, -1).mean(1).permute(0, 3, 1, 2)
        maps = F.interpolate(maps, size=(self.resolution, self.resolution), mode="bilinear", align_corners=False)
        self._sum = maps if self._sum is None else self._sum + maps
        self._count += 1

    def _grid(self, queries: int) -> tuple[int, int]:
        lh, lw = self.latent_shape
        factor = math.sqrt(lh * lw / queries)  # every block is the latent grid downsampled by a power of two
        height, width = round(lh / factor), round(lw / factor)
        if height * width != queries:
            raise ValueError(f"cannot place {queries} attention queries on a grid of latent shape {self.latent_shape}")
        return height, width

    @property
    def calls(self) -> int:
        return self._count

    def maps(self) -> torch.Tensor:
        if self._sum is None:
            raise RuntimeError("no cross-attention was recorded: does this U-Net have any cross-attention left?")
        return self._sum / self._count


@contextmanager
def capture_cross_attention(unet, resolution: int, latent_shape: tuple[int, int]) -> Iterator[CrossAttentionRecorder]:
    """Within the block, every forward pass of ``unet`` adds its ``attn2`` maps to the yielded recorder."""
    recorder = CrossAttentionRecorder(resolution, latent_shape)
    originals = dict(unet.attn_processors)
    wrapped = {
        name: _RecordingProcessor(processor, recorder) if ".attn2." in name or name.endswith("attn2.processor") else processor
        for name, processor in originals.items()
    }
    unet.set_attn_processor(wrapped)
    try:
        yield recorder
    finally:
        unet.set_attn_processor(originals)
