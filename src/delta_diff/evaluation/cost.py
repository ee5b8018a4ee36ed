"""U-Net size and compute: parameters, multiply-accumulates per forward, median CPU latency per forward."""

from __future__ import annotations

import statistics
import time

import torch
from torch.utils.flop_counter import FlopCounterMode


def unet_inputs(unet, batch: int = 1, tokens: int = 16, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    size = unet.config.sample_size
    return (torch.randn(batch, unet.config.in_channels, size, size, generator=generator),
            torch.full((batch,), 500), torch.randn(batch, tokens, unet.config.cross_attention_dim, generator=generator))


@torch.no_grad()
def macs_per_forward(unet, tokens: int = 16) -> int:
    """Multiply-accumulates of one forward at batch 1 (PyTorch's FLOP counter counts 2 FLOPs per MAC)."""
    with FlopCounterMode(display=False) as counter:
        unet(*unet_inputs(unet, tokens=tokens))
    return int(counter.get_total_flops() // 2)


@torch.no_grad()
def median_latency_ms(unet, repeats: int = 20, warmup: int = 3, tokens: int = 16) -> float:
    inputs = unet_inputs(unet, tokens=tokens)
    for _ in range(warmup):
        unet(*inputs)
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        unet(*inputs)
        timings.append((time.perf_counter() - start) * 1000)
    return statistics.median(timings)
