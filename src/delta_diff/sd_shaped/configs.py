"""The component configs of SD v1.4 and SD 2.1-base, at full or reduced width, as plain dicts.

Full width gives the published shapes: the U-Net, text encoder and VAE of SD v1.4 are the reference configs
shipped in ``configs/`` (CompVis/stable-diffusion-v1-4's files); SD 2.1-base differs from v1.4 in its U-Net config
(per-block heads 5/10/20/20, 1024-d cross attention, linear projections), its text encoder (OpenCLIP ViT-H's text
tower written as a ``CLIPTextModel``) and its tokenizer's pad token; its VAE and scheduler values are v1.4's.

Width scale ``F`` (0 < F <= 1) keeps every block type, ``layers_per_block``, the mid block, the latent and text
interfaces (4 latent channels, 77 tokens, 768-/1024-d text) and scales channels:

* U-Net: each ``block_out_channels[i]`` becomes the multiple of ``q_i = lcm(norm_num_groups, heads_i)`` nearest
  to ``F * channels`` (halves round up), at least ``q_i``, so its GroupNorms (32 groups) and attention heads
  (``attention_head_dim`` is diffusers' name for the head count) still divide it. F = 0.125 gives
  [32, 96, 160, 160] for v1.4 (q = 32) and [160, 160, 160, 160] for 2.1-base (q = lcm(32, 5/10/20) = 160).
* VAE: the same rule with ``q = norm_num_groups`` (its mid attention has one head): F = 0.125 gives
  [32, 32, 64, 64].
* Text encoder: width, heads, positions and vocabulary stay (the U-Net cross-attends to that width and the real
  tokenizer needs the whole vocabulary); below F = 1 it has ``max(1, round(F * layers))`` layers and an MLP of
  the multiple of 64 nearest ``F * intermediate_size`` (at least 64): 2 layers x 384 (v1.4) and 3 layers x 512
  (2.1-base) at F = 0.125.

At F = 1 every rule returns the published value. The param counts are checked on the meta device in the tests.
"""

from __future__ import annotations

import copy
import json
import math
from importlib import resources
from typing import Any

from .errors import SdShapedError

VARIANTS = ("sd-v1-4", "sd-v2-1-base")
DEFAULT_PREDICTION_TYPE = {"sd-v1-4": "epsilon", "sd-v2-1-base": "epsilon"}
PREDICTION_TYPES = ("epsilon", "v_prediction")
# The real tokenizer's special ids (the reference text-encoder config still holds the legacy 0/2/1); SD 2.x pads
# with "!" (id 0), SD v1 with <|endoftext|>.
BOS_ID, EOS_ID = 49406, 49407
PAD_ID = {"sd-v1-4": EOS_ID, "sd-v2-1-base": 0}

# SD 2.1-base's U-Net and text tower, as they differ from SD v1.4's (stabilityai/stable-diffusion-2-1-base).
_V2_UNET = {"attention_head_dim": [5, 10, 20, 20], "cross_attention_dim": 1024, "use_linear_projection": True}
_V2_TEXT = {"hidden_size": 1024, "intermediate_size": 4096, "num_hidden_layers": 23, "num_attention_heads": 16,
            "hidden_act": "gelu", "projection_dim": 512}
# SD v1.4's scheduler_config.json (PNDM), in reference/README.md.
_SCHEDULER = {"_class_name": "PNDMScheduler", "beta_start": 0.00085, "beta_end": 0.012,
              "beta_schedule": "scaled_linear", "num_train_timesteps": 1000, "set_alpha_to_one": False,
              "skip_prk_steps": True, "steps_offset": 1, "clip_sample": False, "prediction_type": "epsilon"}
_TEXT_MLP_QUANTUM = 64


def _reference(name: str) -> dict[str, Any]:
    return json.loads(resources.files(__package__).joinpath("configs", name).read_text())


def check_variant(variant: str) -> str:
    if variant not in VARIANTS:
        raise SdShapedError(f"unknown variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    return variant


def check_width_scale(width_scale: float) -> float:
    try:
        width_scale = float(width_scale)
    except (TypeError, ValueError):
        raise SdShapedError(f"width scale {width_scale!r} is not a number") from None
    if not 0.0 < width_scale <= 1.0:  # also rejects nan
        raise SdShapedError(f"width scale {width_scale} is outside (0, 1]; 1 is full size, e.g. 0.125 for tests")
    return width_scale


def _round_half_up(x: float) -> int:
    return math.floor(x + 0.5)


def scaled_channels(channels: int, width_scale: float, quantum: int) -> int:
    """``channels * width_scale`` rounded to the nearest multiple of ``quantum`` (halves up), at least ``quantum``."""
    return quantum * max(1, _round_half_up(channels * width_scale / quantum))


def unet_config(variant: str, width_scale: float = 1.0) -> dict[str, Any]:
    """``UNet2DConditionModel`` config of the variant (diffusers' keys)."""
    check_variant(variant)
    width_scale = check_width_scale(width_scale)
    config = _reference("sd-v1-4-unet-config.json")
    if variant == "sd-v2-1-base":
        config.update(copy.deepcopy(_V2_UNET))
    channels = config["block_out_channels"]
    heads = config["attention_head_dim"]
    heads = heads if isinstance(heads, list) else [heads] * len(channels)
    config["block_out_channels"] = [
        scaled_channels(c, width_scale, math.lcm(config["norm_num_groups"], h)) for c, h in zip(channels, heads)]
    return config


def vae_config(variant: str, width_scale: float = 1.0) -> dict[str, Any]:
    """``AutoencoderKL`` config (SD's VAE for both variants; scaling_factor 0.18215)."""
    check_variant(variant)
    width_scale = check_width_scale(width_scale)
    config = _reference("sd-v1-4-vae-config.json")
    config["block_out_channels"] = [scaled_channels(c, width_scale, config["norm_num_groups"])
                                    for c in config["block_out_channels"]]
    return config


def text_encoder_config(variant: str, width_scale: float = 1.0) -> dict[str, Any]:
    """``CLIPTextConfig`` keyword arguments: CLIP ViT-L/14's text tower (v1.4) or OpenCLIP ViT-H's (2.1-base)."""
    check_variant(variant)
    width_scale = check_width_scale(width_scale)
    config = _reference("sd-v1-4-text-encoder-config.json")
    if variant == "sd-v2-1-base":
        config.update(_V2_TEXT)
    config.update(bos_token_id=BOS_ID, eos_token_id=EOS_ID, pad_token_id=PAD_ID[variant])
    if width_scale < 1.0:
        config["num_hidden_layers"] = max(1, _round_half_up(config["num_hidden_layers"] * width_scale))
        config["intermediate_size"] = scaled_channels(config["intermediate_size"], width_scale, _TEXT_MLP_QUANTUM)
    return config


def scheduler_config(variant: str, prediction_type: str | None = None) -> dict[str, Any]:
    """``PNDMScheduler`` config: SD v1.4's values with the variant's (or the given) prediction type."""
    check_variant(variant)
    prediction_type = prediction_type or DEFAULT_PREDICTION_TYPE[variant]
    if prediction_type not in PREDICTION_TYPES:
        raise SdShapedError(f"unknown prediction type {prediction_type!r}; choose one of {', '.join(PREDICTION_TYPES)}")
    return {**_SCHEDULER, "prediction_type": prediction_type}
