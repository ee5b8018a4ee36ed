"""Where a distillation batch comes from: ``data_prep``'s cache (default), or a raw image folder encoded on the
fly (VAE + text encoder every step, with BK-SDM's random crop and optional horizontal flip)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image


class CachedBatches:
    """Latents drawn from the cached posterior (mean + std * noise) and the captions' text embeddings: stored
    ones, or, for a cache of token ids, the frozen ``text_encoder`` run on them (on its device, no grad). Rows are
    read from the cache (on disk: just the batch's rows) on the CPU and moved to the generator's device."""

    def __init__(self, cache, batch_size: int, text_encoder=None):
        from delta_diff.data.memory_cache import as_training_cache

        self.cache = as_training_cache(cache)
        self.size = len(self.cache)
        if batch_size > self.size:
            raise ValueError(f"batch_size {batch_size} is larger than the training set ({self.size} items)")
        if self.cache.text_mode == "token_ids" and text_encoder is None:
            raise ValueError("the training cache stores token ids, not text embeddings: distillation needs the "
                             "teacher's text encoder to encode them (pass text_encoder)")
        self.text_encoder = text_encoder
        self._names = ["latent_mean", "latent_std",
                       "text_embeddings" if self.cache.text_mode == "embeddings" else "input_ids"]
        self.text_dim = self.cache.text_dim
        self.empty_text = self.cache.extras()["empty_text_embedding"]

    def __len__(self) -> int:
        return self.size

    def batch(self, index: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        device = generator.device
        rows = self.cache.rows(index.cpu(), self._names)
        mean = rows["latent_mean"].to(device, torch.float32)
        std = rows["latent_std"].to(device, torch.float32)
        text = self.cache.text_embeddings(rows, self.text_encoder).to(device, torch.float32)
        return mean + std * torch.randn(mean.shape, generator=generator, device=device), text


@dataclass
class FolderBatches:
    """A raw image folder (``delta_diff.data.ImageFolder``) encoded every step, as BK-SDM's script does:
    resize the shorter side, random crop to ``resolution``, optional horizontal flip (off by default: the
    embedded world's captions name left and right)."""

    folder: object
    vae: object
    tokenizer: object
    text_encoder: object
    resolution: int
    batch_size: int
    random_flip: bool = False

    def __post_init__(self):
        from delta_diff.data.latent_cache import encode_prompts

        if self.batch_size > len(self.folder):
            raise ValueError(f"batch_size {self.batch_size} is larger than the training set ({len(self.folder)} items)")
        self._encode_prompts = encode_prompts
        self.text_dim = self.text_encoder.config.hidden_size
        if self.vae.device != self.text_encoder.device:
            raise ValueError(f"the VAE is on {self.vae.device} but the text encoder on {self.text_encoder.device}; "
                             "place the pipeline on one device (DevicePolicy.place_frozen)")
        self.empty_text = encode_prompts(self.tokenizer, self.text_encoder, [""])
        self.captions = self.folder.captions

    def __len__(self) -> int:
        return len(self.folder)

    def _augment(self, image: Image.Image, generator: torch.Generator) -> np.ndarray:
        image = image.convert("RGB")
        scale = self.resolution / min(image.size)
        image = image.resize((max(self.resolution, round(image.width * scale)),
                              max(self.resolution, round(image.height * scale))), Image.BILINEAR)
        # Crop and flip draws come from the run's generator (on the training device), then to Python numbers.
        draws = torch.rand(3, generator=generator, device=generator.device).tolist()
        left = int(draws[0] * (image.width - self.resolution + 1))
        top = int(draws[1] * (image.height - self.resolution + 1))
        image = image.crop((left, top, left + self.resolution, top + self.resolution))
        if self.random_flip and draws[2] < 0.5:
            image = image.transpose(Image.FLIP_LEFT_RIGHT)
        return np.asarray(image, dtype=np.float32)

    @torch.no_grad()
    def batch(self, index: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        pixels = np.stack([self._augment(self.folder.load_image(int(i)), generator) for i in index])
        pixels = torch.from_numpy(pixels).permute(0, 3, 1, 2) / 127.5 - 1.0
        posterior = self.vae.encode(pixels.to(self.vae.device, self.vae.dtype)).latent_dist
        mean, std = posterior.mean.float(), posterior.std.float()
        latents = mean + std * torch.randn(mean.shape, generator=generator, device=mean.device)
        text = self._encode_prompts(self.tokenizer, self.text_encoder, [self.captions[int(i)] for i in index],
                                    keep_device=True)
        return latents * float(self.vae.config.scaling_factor), text
