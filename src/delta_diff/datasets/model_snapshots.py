"""A versioned Kedro dataset for a set of diffusers models saved during one training: ``{name: model}``, e.g. the
baseline's student every ``snapshot_every`` steps (``{"step_000150": ..., "step_000300": ...}``).

Catalog entry::

    baseline.curve_unets:
      type: delta_diff.datasets.ModelSnapshotsDataset
      filepath: data/06_models/baseline/curve_unets
      model_class: diffusers.UNet2DConditionModel
      versioned: true

A version is ``<filepath>/<version>/curve_unets/<name>/``, one ``save_pretrained`` folder per name. ``save`` takes
models or folders already written by ``save_pretrained`` (copied, so the trainer's own copies may be pruned later);
the whole set is written beside its final place and renamed in at once, so a failed save leaves no version.
``load`` returns ``{name: loader}`` (call it for the model), like ``PartitionedDataset``, so a caller holds one
model at a time; an empty set is a valid value.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path, PurePosixPath
from typing import Any, Callable

from kedro.io.core import AbstractVersionedDataset, DatasetError, Version, VersionNotFoundError

from delta_diff.durable_files import write_folder_durably

from .diffusers_model import _import_class, check_safetensors_folder

NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


class ModelSnapshotsDataset(AbstractVersionedDataset[dict[str, Any], dict[str, Callable[[], Any]]]):
    def __init__(self, *, filepath: str, model_class: str = "diffusers.UNet2DConditionModel",
                 version: Version | None = None, metadata: dict[str, Any] | None = None):
        super().__init__(filepath=PurePosixPath(Path(filepath).as_posix()), version=version)
        self._model_class_path = model_class
        self._model_class = _import_class(model_class)
        self.metadata = metadata

    def load(self) -> dict[str, Callable[[], Any]]:
        try:
            folder = Path(self._get_load_path())
        except VersionNotFoundError as error:
            raise DatasetError(f"no saved version of {self._filepath} yet ({error}); run the node that writes it "
                               "(the baseline's distillation) first") from None
        if not folder.is_dir():
            raise DatasetError(f"{folder} does not exist; run the node that writes it or pin another version")
        loaders = {}
        for path in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
            check_safetensors_folder(path)
            loaders[path.name] = lambda path=path: self._model_class.from_pretrained(
                str(path), use_safetensors=True, local_files_only=True)
        return loaders

    def save(self, data: dict[str, Any]) -> None:
        if not isinstance(data, dict):
            raise DatasetError(f"{self._filepath}: expected a dict of name -> model or folder, got {type(data).__name__}")
        bad = [name for name in data if not isinstance(name, str) or not NAME.match(name)]
        if bad:
            raise DatasetError(f"{self._filepath}: names {bad} are not plain folder names (letters, digits, _ . -)")
        final = Path(self._get_save_path())
        final.parent.mkdir(parents=True, exist_ok=True)

        def write(partial: Path) -> None:
            partial.mkdir()
            for name, value in data.items():
                if isinstance(value, (str, os.PathLike)):
                    check_safetensors_folder(Path(value))
                    shutil.copytree(value, partial / name)
                elif hasattr(value, "save_pretrained"):
                    value.save_pretrained(str(partial / name), safe_serialization=True)
                else:
                    raise DatasetError(f"{self._filepath}: {name!r} is a {type(value).__name__}, neither a model "
                                       "with save_pretrained nor a save_pretrained folder")

        try:
            write_folder_durably(final, write)
        except BaseException as error:  # an interrupt too: nothing half-written stays
            if final.parent.is_dir() and not any(final.parent.iterdir()):
                final.parent.rmdir()  # no empty version folder left behind
            if isinstance(error, DatasetError) or not isinstance(error, Exception):
                raise
            raise DatasetError(f"could not write {final} ({error}); nothing of it was kept") from error

    def _exists(self) -> bool:
        try:
            return Path(self._get_load_path()).is_dir()
        except DatasetError:
            return False

    def _describe(self) -> dict[str, Any]:
        return {"filepath": self._filepath, "model_class": self._model_class_path, "version": self._version}
