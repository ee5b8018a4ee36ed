"""Generate images with a ``StableDiffusionPipeline`` in batches, one seed per image, with a progress bar; and
sample with another U-Net in a pipeline's tokenizer, text encoder, VAE and scheduler."""

from __future__ import annotations

from contextlib import contextmanager

import torch
from diffusers import StableDiffusionPipeline
from PIL import Image
from tqdm.auto import tqdm


def generate_images(
    pipeline: StableDiffusionPipeline,
    prompts: list[str],
    seeds: list[int],
    steps: int = 25,
    guidance_scale: float = 4.0,
    batch_size: int = 16,
    show_progress: bool = True,
    resolution: int | None = None,
) -> list[Image.Image]:
    """Same prompt + seed -> same image, whatever the batch it falls in (one generator per image, made on the
    pipeline's device, where its initial latents are drawn). The pipeline's models must all be on one device
    (``DevicePolicy.place_frozen``); a mixed pipeline would fail deep inside diffusers."""
    if len(prompts) != len(seeds):
        raise ValueError(f"{len(prompts)} prompts for {len(seeds)} seeds")
    pipeline.set_progress_bar_config(disable=True)
    devices = {module.device for module in (pipeline.unet, pipeline.vae, pipeline.text_encoder)}
    if len(devices) > 1:
        raise ValueError(f"the pipeline's U-Net, VAE and text encoder are on {sorted(map(str, devices))}: place "
                         "them on one device (DevicePolicy.place_frozen) before sampling")
    device = pipeline.unet.device
    # None: the U-Net's native size (512 px for SD v1); smaller sizes make CPU runs at SD's shapes affordable.
    size = resolution or pipeline.unet.config.sample_size * pipeline.vae_scale_factor
    multiple = pipeline.vae_scale_factor * 2 ** (len(pipeline.unet.config.down_block_types) - 1)
    if size % multiple:
        raise ValueError(f"cannot sample {size} px images with this pipeline: the size must be a multiple of "
                         f"{multiple} (VAE factor x U-Net downsampling)")
    images: list[Image.Image] = []
    for start in tqdm(range(0, len(prompts), batch_size), desc="sampling", disable=not show_progress):
        batch_prompts = prompts[start: start + batch_size]
        generators = [torch.Generator(device=device).manual_seed(int(s)) for s in seeds[start: start + batch_size]]
        with torch.no_grad():
            out = pipeline(batch_prompts, num_inference_steps=steps, guidance_scale=guidance_scale,
                           generator=generators, height=size, width=size, output_type="pil")
        images.extend(out.images)
    return images


@contextmanager
def unet_swapped_in(pipeline: StableDiffusionPipeline, unet):
    """``pipeline`` sampling with ``unet`` for the duration of the block (a candidate or student in its parent's
    tokenizer, text encoder, VAE and scheduler); the original U-Net is put back even after an error."""
    original = pipeline.unet
    if unet.device != original.device:
        raise ValueError(f"cannot sample with a U-Net on {unet.device} in a pipeline on {original.device}")
    pipeline.unet = unet
    try:
        yield pipeline
    finally:
        pipeline.unet = original
