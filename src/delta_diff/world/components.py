"""Build the tiny SD-family components from configs: tokenizer, text encoder, VAE, U-Net, scheduler.

The U-Net keeps SD v1's block structure (CrossAttnDown x3 + Down, cross-attention mid block, Up + CrossAttnUp x3,
two layers per block) at toy width, so every unit and preset of the architecture space applies unchanged.
"""

from __future__ import annotations

import torch
from diffusers import AutoencoderKL, DDIMScheduler, DDPMScheduler, StableDiffusionPipeline, UNet2DConditionModel
from pydantic import BaseModel, ConfigDict, Field
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

from delta_diff.config_types import Count, NonNegativeCount

SD_V1_DOWN = ["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"]
SD_V1_UP = ["UpBlock2D"] + ["CrossAttnUpBlock2D"] * 3


class TokenizerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    vocab_size: Count = 600  # 256 byte symbols + specials + merges: enough for every world word to be one token
    max_length: Count = 16


class TextEncoderConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    hidden_size: Count = 64
    layers: NonNegativeCount = 0  # no mixing: each token carries only its word (conf/base/parameters_teacher.yml)
    heads: Count = 4
    seed: int = 0


class VAEConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    block_out_channels: list[Count] = Field([32, 64, 64], min_length=1)  # two downsamplings: 32x32 images -> 8x8 latents
    layers_per_block: Count = 1
    latent_channels: Count = 4
    norm_num_groups: Count = 16


class UNetConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    block_out_channels: list[Count] = Field([32, 64, 64, 64], min_length=2)
    layers_per_block: Count = 2
    attention_head_dim: Count = 8
    norm_num_groups: Count = 16


def train_tokenizer(captions: list[str], config: TokenizerConfig) -> CLIPTokenizer:
    """A CLIP-style BPE tokenizer (lower-cased, ``</w>`` word ends, start/end tokens) learnt from the captions."""
    if not captions:
        raise ValueError("cannot train a tokenizer on no captions")
    base = CLIPTokenizer(model_max_length=config.max_length)
    return _renumbered_word_ends(base.train_new_from_iterator(captions, vocab_size=config.vocab_size))


def _renumbered_word_ends(tokenizer: CLIPTokenizer) -> CLIPTokenizer:
    """The same tokenizer with its one-character word-end tokens ("a</w>", ...) numbered in sorted order.
    tokenizers' BPE trainer numbers those in hash-map order, so every training learns the same tokens and merges
    under other ids (huggingface/tokenizers#1794); the text encoder's embeddings are seeded by id, so a retrained
    tokenizer would give other text embeddings, and a resumed U-Net training would be refused (or, without its
    fingerprint, silently read scrambled captions). Merges name tokens by text, so only the ids move."""
    import json
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:
        tokenizer.save_pretrained(folder)
        path = Path(folder) / "tokenizer.json"
        data = json.loads(path.read_text())
        vocab = data["model"]["vocab"]
        suffix = data["model"].get("end_of_word_suffix") or "</w>"
        word_ends = sorted(t for t in vocab if t.endswith(suffix) and len(t) == len(suffix) + 1)
        ids = sorted(vocab[t] for t in word_ends)
        vocab.update(zip(word_ends, ids))
        path.write_text(json.dumps(data))
        return CLIPTokenizer.from_pretrained(folder, model_max_length=tokenizer.model_max_length)


def build_text_encoder(tokenizer: CLIPTokenizer, config: TextEncoderConfig) -> CLIPTextModel:
    """A small CLIP text transformer with seeded random weights (kept frozen: random features of a learnt
    tokenization are enough for the U-Net to learn to read them, and frozen embeddings can be cached)."""
    text_config = CLIPTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=config.hidden_size,
        intermediate_size=4 * config.hidden_size,
        num_hidden_layers=config.layers,
        num_attention_heads=config.heads,
        max_position_embeddings=tokenizer.model_max_length,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        projection_dim=config.hidden_size,
    )
    with torch.random.fork_rng():  # seeded weights without disturbing the caller's random stream
        torch.manual_seed(config.seed)
        model = CLIPTextModel(text_config)
    return model.eval().requires_grad_(False)


def build_vae(config: VAEConfig, image_channels: int = 3) -> AutoencoderKL:
    n = len(config.block_out_channels)
    return AutoencoderKL(
        in_channels=image_channels,
        out_channels=image_channels,
        down_block_types=["DownEncoderBlock2D"] * n,
        up_block_types=["UpDecoderBlock2D"] * n,
        block_out_channels=list(config.block_out_channels),
        layers_per_block=config.layers_per_block,
        latent_channels=config.latent_channels,
        norm_num_groups=config.norm_num_groups,
        sample_size=32,
    )


def build_unet(config: UNetConfig, cross_attention_dim: int, latent_channels: int, sample_size: int) -> UNet2DConditionModel:
    return UNet2DConditionModel(
        sample_size=sample_size,
        in_channels=latent_channels,
        out_channels=latent_channels,
        down_block_types=SD_V1_DOWN,
        up_block_types=SD_V1_UP,
        block_out_channels=list(config.block_out_channels),
        layers_per_block=config.layers_per_block,
        cross_attention_dim=cross_attention_dim,
        attention_head_dim=config.attention_head_dim,
        norm_num_groups=config.norm_num_groups,
    )


def sd_v1_noise_scheduler() -> DDPMScheduler:
    """SD v1's training schedule (scaled-linear betas 0.00085..0.012, 1000 steps, epsilon prediction)."""
    return DDPMScheduler(
        num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
        clip_sample=False, prediction_type="epsilon",
    )


def assemble_pipeline(tokenizer, text_encoder, vae, unet) -> StableDiffusionPipeline:
    """A stock ``StableDiffusionPipeline`` (DDIM sampling, no safety checker: the world has nothing to filter)."""
    scheduler = DDIMScheduler.from_config(sd_v1_noise_scheduler().config, set_alpha_to_one=False, steps_offset=1)
    return StableDiffusionPipeline(
        vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet, scheduler=scheduler,
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )
