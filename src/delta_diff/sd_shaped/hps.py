"""A randomly initialised HPS v2 checkpoint, for runs that score without the real (downloaded) one.

HPS v2's checkpoint is a whole fine-tuned open_clip model saved as ``{"state_dict": ...}``; ``HPSv2Scorer`` builds
the architecture with hpsv2's bundled ``create_model_and_transforms(name, pretrained=None)`` and loads the state
dict with ``weights_only=True``. This writes that format with seeded random weights.

The default architecture is ``ViT-S-32-alt``, the smallest of hpsv2's bundled open_clip configs that uses
CLIP's own tokenizer (43.2M params, 256-d embeddings; ``ViT-S-16-alt`` is 0.8M smaller but sees 4x as many
image patches, about 2.3x slower per image here). It stands in for the real scorer's ViT-H-14 (986M) in CPU
smoke runs: same code path and interface, meaningless scores.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from .errors import SdShapedError

DEFAULT_HPS_MODEL = "ViT-S-32-alt"


def _open_clip():
    try:
        from hpsv2.src import open_clip
    except ImportError:
        raise SdShapedError("a random HPS v2 checkpoint needs the hpsv2x package: pip install --no-deps "
                            "hpsv2x==1.2.0 and the project's [hps] extra (see README, HPS v2)") from None
    return open_clip


def check_hps_model(model_name: str) -> str:
    """``model_name`` if hpsv2's bundled open_clip has a config of that name."""
    available = _open_clip().list_models()
    if model_name not in available:
        raise SdShapedError(f"hpsv2's open_clip has no model config {model_name!r}; e.g. {DEFAULT_HPS_MODEL}, "
                            "ViT-B-32 or ViT-H-14 (the real HPS v2 architecture)")
    return model_name


def check_hps_target(path: str | Path, model_name: str) -> Path:
    """``path`` if a random checkpoint of ``model_name`` can be written there (checked before a long build)."""
    path = Path(path)
    if path.is_dir():
        raise SdShapedError(f"--hps-checkpoint {path} is a folder; give a file path such as {path / 'HPS_random.pt'}")
    check_hps_model(model_name)
    return path


def write_random_hps_checkpoint(path: str | Path, model_name: str = DEFAULT_HPS_MODEL, seed: int = 0) -> Path:
    """Save a seeded random open_clip ``model_name`` as an HPS v2 checkpoint at ``path`` (written to a hidden
    sibling, then renamed, so a reader never sees half a file); returns ``path``."""
    import torch

    path = check_hps_target(path, model_name)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model, _, _ = _open_clip().create_model_and_transforms(model_name, pretrained=None, precision="fp32")
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.writing-{uuid.uuid4().hex[:8]}")
    try:
        torch.save({"state_dict": model.state_dict()}, staging)
        os.replace(staging, path)
    finally:
        staging.unlink(missing_ok=True)
    return path
