"""Semantic similarity (Phi): cross-attention maps of a candidate vs its parent on the same inputs."""

from .attention_capture import CrossAttentionRecorder, capture_cross_attention
from .semantic import (
    SimilarityProbe,
    attention_maps,
    make_probe,
    map_similarity,
    probe_from_cache,
    semantic_similarity,
    word_token_mask,
    word_tokens_from_ids,
)

__all__ = [
    "CrossAttentionRecorder",
    "SimilarityProbe",
    "attention_maps",
    "capture_cross_attention",
    "make_probe",
    "probe_from_cache",
    "word_tokens_from_ids",
    "map_similarity",
    "semantic_similarity",
    "word_token_mask",
]
