"""Write a stock ``StableDiffusionPipeline`` folder with seeded random weights at SD v1.4 / 2.1-base shapes.

The folder is what ``save_pretrained`` writes (safetensors, no safety checker), so every consumer loads it with
plain ``StableDiffusionPipeline.from_pretrained``. It is built in a hidden sibling and renamed into place only
when complete, under a lock on a hidden sibling file, so an interrupted or concurrent build never leaves (or
reads) a half-written folder. ``sd_shaped_stamp.json`` inside it records the build arguments: asking again for
the same arguments returns at once, other arguments into the same folder rebuild it.
"""

from __future__ import annotations

import fcntl
import json
import shutil
import time
import uuid
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

from .configs import (
    check_variant,
    check_width_scale,
    scheduler_config,
    text_encoder_config,
    unet_config,
    vae_config,
)
from .errors import SdShapedError
from .tokenizer import clip_tokenizer, write_vocab_files

# Bump when the same arguments would now give a different folder (configs, init, layout): old stamps then miss.
FORMAT_VERSION = 1
STAMP_NAME = "sd_shaped_stamp.json"


def build_arguments(variant: str, width_scale: float = 1.0, seed: int = 0,
                    prediction_type: str | None = None) -> dict:
    """The checked, resolved arguments a build is stamped with (defaults filled in)."""
    check_variant(variant)
    width_scale = check_width_scale(width_scale)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise SdShapedError(f"seed {seed!r} is not a non-negative integer")
    prediction_type = scheduler_config(variant, prediction_type)["prediction_type"]
    return {"format_version": FORMAT_VERSION, "variant": variant, "width_scale": width_scale, "seed": seed,
            "prediction_type": prediction_type}


def read_stamp(folder: str | Path) -> dict | None:
    """The stamp of a finished build in ``folder``, or None when there is none (or it is unreadable)."""
    try:
        return json.loads((Path(folder) / STAMP_NAME).read_text())
    except (OSError, ValueError):
        return None


def build_sd_shaped(variant: str, out: str | Path, width_scale: float = 1.0, seed: int = 0,
                    prediction_type: str | None = None, report: Callable[[str], None] = print) -> Path:
    """Build (or find already built) the SD-shaped pipeline in ``out``; returns ``out``.

    ``report`` receives one line per step (full size takes minutes on a CPU). ``out`` may be new, an earlier
    build of this function (rebuilt when its arguments differ) or an empty folder; anything else is refused
    rather than overwritten.
    """
    arguments = build_arguments(variant, width_scale, seed, prediction_type)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise SdShapedError(f"--out {out} is a file; give a folder")
    if read_stamp(out) == arguments:
        report(f"{out} already holds this build ({_describe(arguments)})")
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with _build_lock(out):
        if read_stamp(out) == arguments:  # built by another process while this one waited for the lock
            report(f"{out} already holds this build ({_describe(arguments)})")
            return out
        if out.is_dir() and read_stamp(out) is None and any(out.iterdir()):
            raise SdShapedError(f"--out {out} is a non-empty folder that is not an sd_shaped build; "
                                "give a new or empty folder")
        _remove_leftovers(out)
        staging = out.with_name(f".{out.name}.building-{uuid.uuid4().hex[:8]}")
        try:
            started = time.perf_counter()
            _write_pipeline(staging, arguments, report)
            (staging / STAMP_NAME).write_text(json.dumps(arguments, indent=2) + "\n")
            _swap_into_place(staging, out)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
        report(f"built {out} in {time.perf_counter() - started:.1f} s")
    return out


def _describe(arguments: dict) -> str:
    return (f"{arguments['variant']}, width scale {arguments['width_scale']:g}, seed {arguments['seed']}, "
            f"{arguments['prediction_type']}")


@contextmanager
def _build_lock(out: Path):
    """An exclusive lock per output folder, so concurrent builds of one folder run one after the other."""
    lock_path = out.with_name(f".{out.name}.lock")
    with open(lock_path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _remove_leftovers(out: Path) -> None:
    """Staging and replaced folders of builds that were killed; only called while holding the folder's lock."""
    for pattern in (f".{out.name}.building-*", f".{out.name}.replaced-*"):
        for leftover in out.parent.glob(pattern):
            shutil.rmtree(leftover, ignore_errors=True)


def _swap_into_place(staging: Path, out: Path) -> None:
    """Rename the finished build to ``out``; an older build there is moved aside first, then deleted."""
    replaced = None
    if out.exists():
        replaced = out.with_name(f".{out.name}.replaced-{uuid.uuid4().hex[:8]}")
        out.rename(replaced)
    staging.rename(out)
    if replaced is not None:
        shutil.rmtree(replaced, ignore_errors=True)


def _param_count(model) -> str:
    return f"{sum(p.numel() for p in model.parameters()):,} params"


def _write_pipeline(folder: Path, arguments: dict, report: Callable[[str], None]) -> None:
    import torch
    from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    variant, width_scale = arguments["variant"], arguments["width_scale"]
    report(f"building {_describe(arguments)} into {folder}")
    tokenizer = clip_tokenizer(variant)
    # One seeded stream for all three models, in a fixed order, without disturbing the caller's global RNG.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(arguments["seed"])
        text_encoder = CLIPTextModel(CLIPTextConfig(**text_encoder_config(variant, width_scale))).eval()
        report(f"  text encoder: {_param_count(text_encoder)}")
        vae = AutoencoderKL(**vae_config(variant, width_scale)).eval()
        report(f"  VAE: {_param_count(vae)}")
        unet = UNet2DConditionModel(**unet_config(variant, width_scale)).eval()
        report(f"  U-Net: {_param_count(unet)}")
    scheduler = PNDMScheduler.from_config(scheduler_config(variant, arguments["prediction_type"]))
    pipeline = StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                       scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                       requires_safety_checker=False)
    report(f"  saving to {folder}")
    pipeline.save_pretrained(folder, safe_serialization=True)
    # transformers 5 saves only tokenizer.json; the vocab.json + merges.txt that SD folders ship are written too,
    # so tools that read those (older transformers, open_clip-style loaders) find them.
    write_vocab_files(folder / "tokenizer")
