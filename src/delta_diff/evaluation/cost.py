"""U-Net size and compute: multiply-accumulates per forward and median latency per forward, on the device and in
the dtype the U-Net is placed on, with the text length its pipeline's tokenizer pads to (77 for SD)."""

from __future__ import annotations

import statistics
import time

import torch
from torch.utils.flop_counter import FlopCounterMode


def unet_inputs(unet, batch: int = 1, tokens: int = 77, seed: int = 0, latent_size: int | None = None):
    """One forward's inputs; ``latent_size`` None: the U-Net's native sample size."""
    device, dtype = unet.device, unet.dtype
    generator = torch.Generator(device=device).manual_seed(seed)
    size = latent_size or unet.config.sample_size
    return (torch.randn(batch, unet.config.in_channels, size, size, generator=generator, device=device, dtype=dtype),
            torch.full((batch,), 500, device=device),
            torch.randn(batch, tokens, unet.config.cross_attention_dim, generator=generator, device=device,
                        dtype=dtype))


@torch.no_grad()
def macs_per_forward(unet, tokens: int = 77, latent_size: int | None = None) -> int:
    """Multiply-accumulates of one forward at batch 1 (PyTorch's FLOP counter counts 2 FLOPs per MAC)."""
    with FlopCounterMode(display=False) as counter:
        unet(*unet_inputs(unet, tokens=tokens, latent_size=latent_size))
    return int(counter.get_total_flops() // 2)


@torch.no_grad()
def median_latency_ms(unet, repeats: int = 20, warmup: int = 3, tokens: int = 77,
                      latent_size: int | None = None) -> float:
    inputs = unet_inputs(unet, tokens=tokens, latent_size=latent_size)
    # CUDA runs asynchronously: wait for the forward to finish before reading the clock.
    synchronize = torch.cuda.synchronize if unet.device.type == "cuda" else (lambda: None)
    for _ in range(warmup):
        unet(*inputs)
    timings = []
    for _ in range(repeats):
        synchronize()
        start = time.perf_counter()
        unet(*inputs)
        synchronize()
        timings.append((time.perf_counter() - start) * 1000)
    return statistics.median(timings)
