"""A versioned Kedro dataset for image folders in BK-SDM's format (images + ``metadata.csv`` with file_name,text).

Catalog entry::

    world_train_images:
      type: delta_diff.datasets.ImageFolderDataset
      filepath: data/02_intermediate/world_train
      load_args:
        check_images: false      # default true: open and verify every image on load
      versioned: true

``save`` takes an ``ImageFolderContent`` (images + metadata); ``load`` returns a validated ``ImageFolder``.
Writing goes through ``write_image_folder`` (hidden sibling folder, then an atomic rename), so an interrupted save
never leaves a folder that a later load would pick up as the latest version.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

from kedro.io.core import AbstractVersionedDataset, DatasetError, Version

from delta_diff.data.image_folder import ImageFolder, ImageFolderContent, read_image_folder, write_image_folder

__all__ = ["ImageFolderContent", "ImageFolderDataset"]

_LOAD_DEFAULTS = {"check_images": True, "max_caption_chars": None}
_SAVE_DEFAULTS = {"image_subdir": "images"}


def _merge_args(given: dict[str, Any] | None, defaults: dict[str, Any], kind: str, filepath: str) -> dict[str, Any]:
    unknown = sorted(set(given or {}) - set(defaults))
    if unknown:
        raise DatasetError(f"{filepath}: unknown {kind} {unknown}; allowed: {sorted(defaults)}")
    return {**defaults, **(given or {})}


class ImageFolderDataset(AbstractVersionedDataset[ImageFolderContent, ImageFolder]):
    """Save an ``ImageFolderContent`` as an image folder; load it back as a validated ``ImageFolder``."""

    def __init__(
        self,
        *,
        filepath: str,
        load_args: dict[str, Any] | None = None,
        save_args: dict[str, Any] | None = None,
        version: Version | None = None,
        metadata: dict[str, Any] | None = None,
    ):
        super().__init__(filepath=PurePosixPath(Path(filepath).as_posix()), version=version)
        self._load_args = _merge_args(load_args, _LOAD_DEFAULTS, "load_args", filepath)
        self._save_args = _merge_args(save_args, _SAVE_DEFAULTS, "save_args", filepath)
        self.metadata = metadata

    def load(self) -> ImageFolder:
        return read_image_folder(Path(self._get_load_path()), **self._load_args)

    def save(self, data: ImageFolderContent) -> None:
        # Duck-typed so that any object with .images and .metadata (e.g. a node's own dataclass) can be saved.
        if not (hasattr(data, "images") and hasattr(data, "metadata")):
            raise DatasetError(
                f"{self._filepath}: expected an ImageFolderContent(images=..., metadata=...), "
                f"got {type(data).__name__}"
            )
        write_image_folder(Path(self._get_save_path()), list(data.images), data.metadata, **self._save_args)

    def _exists(self) -> bool:
        try:
            path = Path(self._get_load_path())
        except DatasetError:
            return False
        return (path / "metadata.csv").is_file()

    def _describe(self) -> dict[str, Any]:
        return {
            "filepath": self._filepath,
            "load_args": self._load_args,
            "save_args": self._save_args,
            "version": self._version,
        }
