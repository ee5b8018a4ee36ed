"""Kedro-free data access: BK-SDM's image-folder format and prompt sets."""

from .image_folder import (
    ImageCaptionDataset,
    ImageFolder,
    ImageFolderContent,
    ImageFolderError,
    read_image_folder,
    write_image_folder,
)
from .prompts import (
    HPS_STYLES,
    PromptSetError,
    read_hps_benchmark_prompts,
    truncate_to_tokenizer,
    validate_prompts,
)

__all__ = [
    "HPS_STYLES",
    "ImageCaptionDataset",
    "ImageFolder",
    "ImageFolderContent",
    "ImageFolderError",
    "PromptSetError",
    "read_hps_benchmark_prompts",
    "read_image_folder",
    "truncate_to_tokenizer",
    "validate_prompts",
    "write_image_folder",
]
