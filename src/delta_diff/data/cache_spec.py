"""What a training cache was built from, stored inside it, so a run can refuse a cache that does not belong to
its teacher before any node runs: the text encoder's and VAE's weight digests and the image resolution.

The digests are taken of the models as loaded from the teacher's folder (before any half-precision placement),
so the check at the start of a run, which loads the same folder's text encoder, computes the same value.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

SPEC_KEYS = ("resolution", "text_encoder_digest", "vae_digest")


def _encode(text: str) -> torch.Tensor:
    return torch.tensor(list(text.encode("ascii")), dtype=torch.uint8)


def _decode(tensor: torch.Tensor) -> str:
    return bytes(tensor.tolist()).decode("ascii")


def cache_spec(text_encoder, vae, resolution: int) -> dict[str, torch.Tensor]:
    """The cache entries that record its inputs (call it before the models are placed in half precision)."""
    from delta_diff.training import weights_digest

    return {"resolution": torch.tensor(int(resolution)), "text_encoder_digest": _encode(weights_digest(text_encoder)),
            "vae_digest": _encode(weights_digest(vae))}


def cache_problem(cache_file: str | Path, teacher_folder: str | Path, resolution: int) -> str | None:
    """Why the cache at ``cache_file`` was not built for this teacher and resolution, or None. Reads the cache's
    header and small entries only, and the teacher's text encoder (its weights decide the embeddings)."""
    from safetensors import safe_open
    from transformers import CLIPTextModel

    from delta_diff.training import weights_digest

    rebuild = "rebuild it with `kedro run --pipelines data_prep` (in this environment)"
    with safe_open(str(cache_file), framework="pt") as handle:
        keys = set(handle.keys())
        if not set(SPEC_KEYS) <= keys:
            return f"training cache {cache_file} does not record what it was built from (made by an older version); {rebuild}"
        text_dim = handle.get_slice("text_embeddings").get_shape()[-1]
        built_at = int(handle.get_tensor("resolution"))
        text_digest = _decode(handle.get_tensor("text_encoder_digest"))
    teacher_folder = Path(teacher_folder)
    hidden = json.loads((teacher_folder / "text_encoder" / "config.json").read_text())["hidden_size"]
    if text_dim != hidden:
        return (f"training cache {cache_file} holds {text_dim}-d text embeddings but the teacher's text encoder "
                f"({teacher_folder}) is {hidden}-d: it was built by another text encoder; {rebuild}")
    if built_at != resolution:
        return (f"training cache {cache_file} was built at {built_at} px but data_prep.cache.resolution is "
                f"{resolution}; {rebuild}, or set the resolution back to {built_at}")
    encoder = CLIPTextModel.from_pretrained(teacher_folder / "text_encoder", use_safetensors=True)
    if weights_digest(encoder) != text_digest:
        return (f"training cache {cache_file} was built by another text encoder than the teacher's "
                f"({teacher_folder / 'text_encoder'}); {rebuild}")
    return None
