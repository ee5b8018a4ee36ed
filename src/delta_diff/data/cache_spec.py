"""What a training cache is built from (its key), and whether a built cache belongs to a run's teacher.

The inputs are the image folder (its captions, file names and file sizes: cheap at LAION size, and any re-download,
edit or removal changes them), the VAE's and text encoder's weight digests, the tokenizer and the resolution. The
digests are taken of the models as loaded from the teacher's folder (before any half-precision placement), so the
check at the start of a run, which loads the same folder's text encoder, computes the same value.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from .sharded_cache import REBUILD, TrainingCacheError, open_training_cache


def folder_digest(folder) -> str:
    """Digest of an ``ImageFolder``'s rows: file name, caption and the file's size for every row."""
    digest = hashlib.sha256()
    for file_name, text in zip(folder.metadata["file_name"], folder.captions):
        size = (folder.root / file_name).stat().st_size
        digest.update(json.dumps([file_name, text, size]).encode())
    return digest.hexdigest()[:16]


def tokenizer_digest(tokenizer) -> str:
    vocab = sorted(tokenizer.get_vocab().items())
    blob = json.dumps([vocab, int(tokenizer.model_max_length), tokenizer.pad_token], default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def cache_inputs(folder, pipeline, resolution: int) -> dict[str, Any]:
    """The cache key's inputs (call it before the models are placed in half precision)."""
    from delta_diff.training import weights_digest

    return {"image_folder": str(Path(folder.root).resolve()), "n_images": len(folder),
            "folder_digest": folder_digest(folder), "resolution": int(resolution),
            "vae_digest": weights_digest(pipeline.vae), "text_encoder_digest": weights_digest(pipeline.text_encoder),
            "tokenizer_digest": tokenizer_digest(pipeline.tokenizer)}


def cache_problem(cache_folder: str | Path, teacher_folder: str | Path, resolution: int) -> str | None:
    """Why the cache in ``cache_folder`` was not built for this teacher and resolution (or is unusable), or None.
    Reads the cache's spec and shard headers, and the teacher's text encoder (its weights decide the embeddings)."""
    from transformers import CLIPTextModel

    from delta_diff.training import weights_digest

    try:
        cache = open_training_cache(cache_folder)
    except TrainingCacheError as error:
        return str(error)
    inputs = cache.inputs
    teacher_folder = Path(teacher_folder)
    hidden = json.loads((teacher_folder / "text_encoder" / "config.json").read_text())["hidden_size"]
    if cache.text_dim != hidden:
        return (f"training cache {cache_folder} was built by a {cache.text_dim}-d text encoder but the teacher's "
                f"({teacher_folder}) is {hidden}-d; {REBUILD}")
    if inputs.get("resolution") != resolution:
        return (f"training cache {cache_folder} was built at {inputs.get('resolution')} px but "
                f"data_prep.cache.resolution is {resolution}; {REBUILD}, or set the resolution back to "
                f"{inputs.get('resolution')}")
    encoder = CLIPTextModel.from_pretrained(teacher_folder / "text_encoder", use_safetensors=True)
    if weights_digest(encoder) != inputs.get("text_encoder_digest"):
        return (f"training cache {cache_folder} was built by another text encoder than the teacher's "
                f"({teacher_folder / 'text_encoder'}); {REBUILD}")
    return None
