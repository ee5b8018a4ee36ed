"""Offline SD-shaped pipelines: stock ``StableDiffusionPipeline`` folders at SD v1.4 / SD 2.1-base shapes (or a
reduced width) with seeded random weights, CLIP's real tokenizer and optionally a random HPS v2 checkpoint.
Kedro-free; ``python -m delta_diff.sd_shaped --help``."""

from .build import FORMAT_VERSION, STAMP_NAME, build_arguments, build_sd_shaped, read_stamp
from .configs import VARIANTS, scheduler_config, text_encoder_config, unet_config, vae_config
from .errors import SdShapedError
from .hps import DEFAULT_HPS_MODEL, write_random_hps_checkpoint
from .tokenizer import clip_tokenizer, write_vocab_files

__all__ = [
    "DEFAULT_HPS_MODEL",
    "FORMAT_VERSION",
    "STAMP_NAME",
    "VARIANTS",
    "SdShapedError",
    "build_arguments",
    "build_sd_shaped",
    "clip_tokenizer",
    "read_stamp",
    "scheduler_config",
    "text_encoder_config",
    "unet_config",
    "vae_config",
    "write_random_hps_checkpoint",
    "write_vocab_files",
]
