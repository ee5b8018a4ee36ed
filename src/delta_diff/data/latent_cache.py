"""What every training step would otherwise recompute: VAE posterior statistics of each image and the text
encoder's hidden states for each caption (the text encoder is frozen in SD and BK-SDM distillation alike)."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from .image_folder import resize_and_centre_crop

CACHE_KEYS = ("latent_mean", "latent_std", "text_embeddings", "empty_text_embedding", "input_ids")


def pil_batch_to_pixels(images: list[Image.Image], resolution: int) -> torch.Tensor:
    """RGB images resized (shorter side) and centre-cropped to ``resolution``, as N x 3 x H x W in [-1, 1]."""
    arrays = [np.asarray(resize_and_centre_crop(image.convert("RGB"), resolution), dtype=np.float32) for image in images]
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2) / 127.5 - 1.0


@torch.no_grad()
def encode_latents(vae, pixels: torch.Tensor, batch_size: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """Posterior mean and std of every image, scaled by the VAE's scaling factor (what the U-Net sees)."""
    scale = float(vae.config.scaling_factor)
    means, stds = [], []
    for chunk in pixels.split(batch_size):
        posterior = vae.encode(chunk.to(vae.device, vae.dtype)).latent_dist
        means.append(posterior.mean.float().cpu() * scale)
        stds.append(posterior.std.float().cpu() * scale)
    return torch.cat(means), torch.cat(stds)


@torch.no_grad()
def encode_prompts(tokenizer, text_encoder, prompts: list[str], batch_size: int = 512,
                   keep_device: bool = False) -> torch.Tensor:
    """Text-encoder hidden states as SD feeds them to the U-Net (padded/truncated to the tokenizer's length), in
    fp32, on the CPU (for caches) or, with ``keep_device``, where the text encoder is (for a training step)."""
    outputs = []
    for start in range(0, len(prompts), batch_size):
        ids = tokenizer(prompts[start: start + batch_size], padding="max_length", truncation=True,
                        max_length=tokenizer.model_max_length, return_tensors="pt").input_ids
        hidden = text_encoder(ids.to(text_encoder.device))[0].float()
        outputs.append(hidden if keep_device else hidden.cpu())
    return torch.cat(outputs)


def build_training_cache(folder, pipeline, resolution: int, batch_size: int = 256, show_progress: bool = True,
                         spec: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
    """Latent statistics and text embeddings for every image/caption of an image folder, plus ``spec``
    (``cache_spec``: what it was built from)."""
    means, stds = [], []
    for start in tqdm(range(0, len(folder), batch_size), desc="caching latents", disable=not show_progress):
        images = [folder.load_image(i) for i in range(start, min(len(folder), start + batch_size))]
        mean, std = encode_latents(pipeline.vae, pil_batch_to_pixels(images, resolution), batch_size)
        means.append(mean)
        stds.append(std)
    return {
        **(spec or {}),
        "latent_mean": torch.cat(means).contiguous(),
        "latent_std": torch.cat(stds).contiguous(),
        "text_embeddings": encode_prompts(pipeline.tokenizer, pipeline.text_encoder, folder.captions).contiguous(),
        "empty_text_embedding": encode_prompts(pipeline.tokenizer, pipeline.text_encoder, [""]).contiguous(),
        # token ids let later steps tell word tokens from start/end/padding (cross-attention maps per word)
        "input_ids": pipeline.tokenizer(folder.captions, padding="max_length", truncation=True,
                                        max_length=pipeline.tokenizer.model_max_length, return_tensors="pt").input_ids,
    }
