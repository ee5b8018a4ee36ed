"""Generate images with a ``StableDiffusionPipeline`` in batches, one seed per image, with a progress bar."""

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
) -> list[Image.Image]:
    """Same prompt + seed -> same image, whatever the batch it falls in (one generator per image)."""
    if len(prompts) != len(seeds):
        raise ValueError(f"{len(prompts)} prompts for {len(seeds)} seeds")
    pipeline.set_progress_bar_config(disable=True)
    size = pipeline.unet.config.sample_size * pipeline.vae_scale_factor
    images: list[Image.Image] = []
    for start in tqdm(range(0, len(prompts), batch_size), desc="sampling", disable=not show_progress):
        batch_prompts = prompts[start: start + batch_size]
        generators = [torch.Generator().manual_seed(int(s)) for s in seeds[start: start + batch_size]]
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
    pipeline.unet = unet
    try:
        yield pipeline
    finally:
        pipeline.unet = original


def image_grid(images: list[Image.Image], captions: list[str] | None = None, columns: int = 8, scale: int = 3):
    """A labelled grid (matplotlib figure) for reports and the README."""
    import matplotlib.pyplot as plt

    rows = (len(images) + columns - 1) // columns
    figure, axes = plt.subplots(rows, columns, figsize=(columns * 1.9, rows * 2.2), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i, image in enumerate(images):
        ax = axes.flat[i]
        ax.imshow(image.resize((image.width * scale, image.height * scale), Image.NEAREST))
        if captions:
            ax.set_title(_wrap(captions[i]), fontsize=6)
    figure.tight_layout()
    return figure


def _wrap(text: str, width: int = 26) -> str:
    words, lines, line = text.split(), [], ""
    for word in words:
        if len(line) + len(word) + 1 > width and line:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return "\n".join(lines + [line])
