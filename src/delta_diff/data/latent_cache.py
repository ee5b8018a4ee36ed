"""What every training step would otherwise recompute: VAE posterior statistics of each image and the caption's
token ids (and optionally the frozen text encoder's hidden states), encoded into ``sharded_cache``'s layout."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from .image_folder import resize_and_centre_crop
from .sharded_cache import CacheLayout, CachePlan, TextMode, TrainingCache, open_training_cache, write_training_cache


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


def token_ids(tokenizer, prompts: list[str]) -> torch.Tensor:
    """The prompts' token ids as SD feeds them to the text encoder: padded/truncated to the tokenizer's length."""
    return tokenizer(prompts, padding="max_length", truncation=True, max_length=tokenizer.model_max_length,
                     return_tensors="pt").input_ids


@torch.no_grad()
def encode_prompts(tokenizer, text_encoder, prompts: list[str], batch_size: int = 512,
                   keep_device: bool = False) -> torch.Tensor:
    """Text-encoder hidden states as SD feeds them to the U-Net (padded/truncated to the tokenizer's length), in
    fp32, on the CPU (for caches) or, with ``keep_device``, where the text encoder is (for a training step)."""
    outputs = []
    for start in range(0, len(prompts), batch_size):
        ids = token_ids(tokenizer, prompts[start: start + batch_size])
        hidden = text_encoder(ids.to(text_encoder.device))[0].float()
        outputs.append(hidden if keep_device else hidden.cpu())
    return torch.cat(outputs)


def plan_training_cache(folder, pipeline, resolution: int, text: TextMode = "token_ids", shard_size: int = 4096,
                        batch_size: int = 256, inputs: dict | None = None, show_progress: bool = True) -> CachePlan:
    """The cache of an image folder for ``pipeline`` (its VAE and text encoder placed where they should encode):
    per row the VAE posterior mean and std (scaled by the VAE's scaling factor: what the U-Net sees) and the
    caption's token ids, plus the text embeddings with ``text="embeddings"``. ``inputs`` are what the cache's key
    is made of (``cache_spec.cache_inputs``); nothing is encoded until the plan is written."""
    vae, tokenizer, text_encoder = pipeline.vae, pipeline.tokenizer, pipeline.text_encoder
    factor = 2 ** (len(vae.config.block_out_channels) - 1)
    if resolution % factor:
        raise ValueError(f"data_prep.cache.resolution {resolution} is not a multiple of the VAE's downsampling "
                         f"factor {factor}")
    layout = CacheLayout(latent_shape=(int(vae.config.latent_channels), resolution // factor, resolution // factor),
                         max_length=int(tokenizer.model_max_length), text_dim=int(text_encoder.config.hidden_size),
                         text=text, shard_size=shard_size)
    captions = folder.captions

    def encode_rows(start: int, stop: int) -> dict[str, torch.Tensor]:
        means, stds = [], []
        for first in range(start, stop, batch_size):
            images = [folder.load_image(i) for i in range(first, min(stop, first + batch_size))]
            mean, std = encode_latents(vae, pil_batch_to_pixels(images, resolution), batch_size)
            means.append(mean)
            stds.append(std)
        rows = {"latent_mean": torch.cat(means), "latent_std": torch.cat(stds),
                "input_ids": token_ids(tokenizer, captions[start:stop])}
        if text == "embeddings":
            rows["text_embeddings"] = encode_prompts(tokenizer, text_encoder, captions[start:stop])
        return rows

    def encode_extras() -> dict[str, torch.Tensor]:
        return {"empty_input_ids": token_ids(tokenizer, [""]),
                "empty_text_embedding": encode_prompts(tokenizer, text_encoder, [""])}

    return CachePlan(inputs=dict(inputs or {}), layout=layout, n_rows=len(folder), encode_rows=encode_rows,
                     encode_extras=encode_extras, show_progress=show_progress)


def build_training_cache(folder, pipeline, resolution: int, root, text: TextMode = "token_ids",
                         shard_size: int = 4096, batch_size: int = 256, inputs: dict | None = None,
                         show_progress: bool = True) -> TrainingCache:
    """Plan, write (only what is missing) and open the cache under ``root``: for scripts and tests; the
    pipeline does the same through the catalog's ``TrainingCacheDataset``."""
    plan = plan_training_cache(folder, pipeline, resolution, text, shard_size, batch_size, inputs, show_progress)
    return open_training_cache(write_training_cache(root, plan))
