"""Phi, the semantic similarity of a pruned candidate to its parent: how alike their cross-attention maps are,
token by token, on the same noisy latents, prompts and timesteps (DESIGN.md §1, step 2).

Per (prompt, token) we take the Pearson correlation of the two maps over space, then average over tokens and
prompts. Pearson rather than cosine: it compares *where* a word attends and ignores how much attention mass the
word gets overall, which shifts between models (pruned models move mass onto start/padding tokens) without the
spatial meaning changing. Start, end and padding tokens are skipped: they carry no object.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .attention_capture import capture_cross_attention


@dataclass
class SimilarityProbe:
    """Fixed inputs both models see: noisy latents, timesteps, text embeddings and which tokens are words."""

    noisy_latents: torch.Tensor  # N x C x h x w
    timesteps: torch.Tensor  # N
    text_embeddings: torch.Tensor  # N x T x D
    word_tokens: torch.Tensor  # N x T bool: True for tokens of the prompt's words

    def __post_init__(self):
        n = len(self.noisy_latents)
        if n == 0:
            raise ValueError("a similarity probe needs at least one prompt")
        if not (len(self.timesteps) == len(self.text_embeddings) == len(self.word_tokens) == n):
            raise ValueError("probe tensors must all have one row per (prompt, timestep)")
        if not bool(self.word_tokens.any()):
            raise ValueError("no word tokens in the probe's prompts (all empty?)")


def word_token_mask(tokenizer, prompts: list[str]) -> torch.Tensor:
    """True at each prompt's word tokens: not the start token, not the end token, not padding."""
    encoded = tokenizer(prompts, padding="max_length", truncation=True, max_length=tokenizer.model_max_length,
                        return_tensors="pt")
    mask = encoded.attention_mask.bool().clone()
    mask[:, 0] = False
    lengths = encoded.attention_mask.sum(1)
    mask[torch.arange(len(prompts)), lengths - 1] = False  # the end token
    return mask


def word_tokens_from_ids(input_ids: torch.Tensor, special_ids: list[int]) -> torch.Tensor:
    """Word-token mask from token ids (CLIP pads with its end token, so start/end/padding are the special ids)."""
    return ~torch.isin(input_ids, torch.tensor(special_ids))


def probe_from_cache(cache, special_ids: list[int], n: int, timesteps: list[int], noise_scheduler, seed: int,
                     text_encoder=None) -> SimilarityProbe:
    """A probe from ``data_prep``'s cache: the first ``n`` images' latents, each noised at every timestep,
    with their own captions' embeddings (``text_encoder`` encodes them when the cache holds token ids)."""
    from delta_diff.data.memory_cache import as_training_cache

    if n < 1 or not timesteps:
        raise ValueError("similarity probe: n_prompts and timesteps must be non-empty")
    cache = as_training_cache(cache)
    n = min(n, len(cache))
    rows = cache.rows(torch.arange(n))
    text = cache.text_embeddings(rows, text_encoder).cpu()
    generator = torch.Generator().manual_seed(seed)
    index = torch.arange(n).repeat(len(timesteps))
    steps = torch.tensor(timesteps).repeat_interleave(n)
    latents = rows["latent_mean"][index]
    noisy = noise_scheduler.add_noise(latents, torch.randn(latents.shape, generator=generator), steps)
    words = word_tokens_from_ids(rows["input_ids"][index], special_ids)
    return SimilarityProbe(noisy, steps, text[index], words)


def make_probe(tokenizer, text_encoder, prompts: list[str], latents: torch.Tensor, timesteps: list[int],
               noise_scheduler, seed: int) -> SimilarityProbe:
    """One row per (prompt, timestep): ``latents`` (one per prompt, clean, scaled) noised with seeded noise."""
    from delta_diff.data.latent_cache import encode_prompts

    if not prompts:
        raise ValueError("similarity probe: the prompt set is empty")
    generator = torch.Generator().manual_seed(seed)
    rows = [(i, t) for t in timesteps for i in range(len(prompts))]
    index = torch.tensor([i for i, _ in rows])
    steps = torch.tensor([t for _, t in rows])
    noise = torch.randn((len(rows), *latents.shape[1:]), generator=generator)
    noisy = noise_scheduler.add_noise(latents[index], noise, steps)
    embeddings = encode_prompts(tokenizer, text_encoder, prompts)
    return SimilarityProbe(noisy, steps, embeddings[index], word_token_mask(tokenizer, prompts)[index])


@torch.no_grad()
def attention_maps(unet, probe: SimilarityProbe, resolution: int | None = None, batch_size: int = 64) -> torch.Tensor:
    """N x T x R x R mean cross-attention maps of ``unet`` on the probe."""
    latent_shape = tuple(probe.noisy_latents.shape[-2:])
    resolution = resolution or latent_shape[0]
    parts = []
    for start in range(0, len(probe.noisy_latents), batch_size):
        rows = slice(start, start + batch_size)
        with capture_cross_attention(unet, resolution, latent_shape) as recorder:
            unet(probe.noisy_latents[rows].to(unet.device, unet.dtype), probe.timesteps[rows].to(unet.device),
                 encoder_hidden_states=probe.text_embeddings[rows].to(unet.device, unet.dtype))
        parts.append(recorder.maps().cpu())
    return torch.cat(parts)


def map_similarity(reference: torch.Tensor, candidate: torch.Tensor, word_tokens: torch.Tensor) -> float:
    """Mean over word tokens of the spatial Pearson correlation of two N x T x R x R map stacks."""
    a = reference.flatten(2)
    b = candidate.flatten(2)
    a = a - a.mean(-1, keepdim=True)
    b = b - b.mean(-1, keepdim=True)
    denominator = a.norm(dim=-1) * b.norm(dim=-1)
    correlation = (a * b).sum(-1) / denominator.clamp_min(1e-12)
    # A map that is flat in both models is "the same"; flat in only one is "unrelated".
    flat_a, flat_b = a.norm(dim=-1) < 1e-9, b.norm(dim=-1) < 1e-9
    correlation = torch.where(flat_a & flat_b, torch.ones_like(correlation), correlation)
    correlation = torch.where(flat_a ^ flat_b, torch.zeros_like(correlation), correlation)
    return float(correlation[word_tokens].mean())


def semantic_similarity(parent, candidate, probe: SimilarityProbe, parent_maps: torch.Tensor | None = None) -> float:
    """Phi(parent, candidate) in [-1, 1]; 1 when the candidate attends exactly like its parent. Pass
    ``parent_maps`` (from ``attention_maps(parent, probe)``) to reuse them across candidates."""
    reference = parent_maps if parent_maps is not None else attention_maps(parent, probe)
    return map_similarity(reference, attention_maps(candidate, probe), probe.word_tokens)
