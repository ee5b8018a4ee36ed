"""A versioned Kedro dataset for one ``.safetensors`` file holding a ``dict[str, torch.Tensor]``.

Catalog entry::

    teacher_latents:
      type: delta_diff.datasets.SafetensorsDataset
      filepath: data/03_primary/teacher_latents.safetensors
      versioned: true

Tensors only (no pickle). A save writes a hidden sibling file and ``os.replace``-s it into place, so a reader
never sees a half-written file.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath
from typing import Any

import torch
from kedro.io.core import AbstractVersionedDataset, DatasetError, Version
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file


def _independent_tensors(data: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Contiguous, detached tensors with no two sharing storage: safetensors refuses shared storage (tied weights,
    views of one buffer), so later sharers are copied."""
    seen_storages: set[int] = set()
    result = {}
    for key, value in data.items():
        tensor = value.detach().contiguous()
        storage = tensor.untyped_storage().data_ptr()
        if storage in seen_storages and tensor.numel() > 0:
            tensor = tensor.clone()
        seen_storages.add(tensor.untyped_storage().data_ptr())
        result[key] = tensor
    return result


class SafetensorsDataset(AbstractVersionedDataset[dict, dict]):
    """Save and load a ``dict[str, torch.Tensor]`` as a single safetensors file."""

    def __init__(
        self,
        *,
        filepath: str,
        load_args: dict[str, Any] | None = None,
        version: Version | None = None,
        metadata: dict[str, Any] | None = None,
    ):
        super().__init__(filepath=PurePosixPath(Path(filepath).as_posix()), version=version)
        unknown = sorted(set(load_args or {}) - {"device"})
        if unknown:
            raise DatasetError(f"{filepath}: unknown load_args {unknown}; allowed: ['device']")
        self._load_args = {"device": "cpu", **(load_args or {})}
        self.metadata = metadata

    def load(self) -> dict[str, torch.Tensor]:
        path = Path(self._get_load_path())
        if not path.is_file():
            raise DatasetError(f"safetensors file {path} does not exist; run the node that writes it or fix the path")
        try:
            return load_file(path, **self._load_args)
        except SafetensorError as error:
            raise DatasetError(
                f"{path} is not a readable safetensors file ({error}); re-create it with this dataset "
                "(or safetensors.torch.save_file)"
            ) from None

    def save(self, data: dict[str, torch.Tensor]) -> None:
        if not isinstance(data, dict):
            raise DatasetError(f"{self._filepath}: expected a dict[str, torch.Tensor], got {type(data).__name__}")
        bad = [f"{key!r}: {type(value).__name__}" for key, value in data.items()
               if not isinstance(key, str) or not isinstance(value, torch.Tensor)]
        if bad:
            raise DatasetError(
                f"{self._filepath}: every key must be a str and every value a torch.Tensor; bad entries {bad[:5]}"
            )
        final = Path(self._get_save_path())
        final.parent.mkdir(parents=True, exist_ok=True)
        partial = final.with_name(f".{final.name}.partial-{os.getpid()}")
        try:
            save_file(_independent_tensors(data), partial)
            os.replace(partial, final)  # atomic on one filesystem
        finally:
            partial.unlink(missing_ok=True)

    def _exists(self) -> bool:
        try:
            path = Path(self._get_load_path())
        except DatasetError:
            return False
        return path.is_file()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": self._filepath, "load_args": self._load_args, "version": self._version}
