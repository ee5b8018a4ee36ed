"""A versioned Kedro dataset for diffusers model or pipeline folders (``save_pretrained`` / ``from_pretrained``).

Catalog entry::

    teacher_unet:
      type: delta_diff.datasets.DiffusersModelDataset
      filepath: data/06_models/teacher_unet
      model_class: diffusers.UNet2DConditionModel   # or diffusers.StableDiffusionPipeline, ...
      versioned: true

Versions live in ``<filepath>/<version>/<name>/`` like every Kedro versioned dataset, so
``kedro run --load-versions teacher_unet:2026-11-26T10.00.00.000Z`` pins one. Weights are written and read as
safetensors only (no pickle). A save goes to a hidden sibling folder first, is flushed to disk (every file and
folder) and renamed into place when complete, so an interrupted save -- or a power loss after it -- never leaves a
folder that a later load would pick up as the latest version. What a killed save leaves behind is dealt with by the
next save or load of the dataset: its partial folder and a version folder holding nothing else are removed, and an
unversioned re-save killed between its two renames has its previous copy put back (each with a warning).
"""

from __future__ import annotations

import importlib
import logging
import os
import shutil
from pathlib import Path, PurePosixPath
from typing import Any

from kedro.io.core import AbstractVersionedDataset, DatasetError, Version, VersionNotFoundError

from delta_diff.durable_files import fsync_path, fsync_tree, writer_is_gone
from delta_diff.safetensors_header import SafetensorsFileError, read_safetensors_header

logger = logging.getLogger(__name__)


def _import_class(dotted: str) -> type:
    module_name, _, class_name = dotted.rpartition(".")
    try:
        return getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError, ValueError) as error:
        raise DatasetError(
            f"model_class {dotted!r} cannot be imported ({error}); give a dotted path such as "
            "'diffusers.UNet2DConditionModel'"
        ) from None


def check_safetensors_folder(path: Path, pipeline: bool = False) -> None:
    """Raise a ``DatasetError`` naming ``path`` unless it is a model (or, with ``pipeline``, a pipeline) folder
    with its config and safetensors weights."""
    if not path.is_dir():
        raise DatasetError(f"model folder {path} does not exist; run the node that writes it or fix the path")
    if pipeline and not (path / "model_index.json").is_file():
        raise DatasetError(
            f"{path} is not a pipeline folder (no model_index.json); point it at a folder written by "
            "StableDiffusionPipeline.save_pretrained (with unet/, vae/, text_encoder/, tokenizer/, scheduler/)"
        )
    has_config = (path / "config.json").is_file() or (path / "model_index.json").is_file()
    if not has_config:
        raise DatasetError(
            f"{path} holds neither config.json nor model_index.json; it is not a save_pretrained folder"
        )
    weights = sorted(path.rglob("*.safetensors"))
    if not weights:
        pickled = sorted(p.name for p in path.rglob("*.bin")) + sorted(p.name for p in path.rglob("*.ckpt"))
        hint = f" (it has pickled weights {pickled[:3]}: convert them with save_pretrained(safe_serialization=True))" if pickled else ""
        raise DatasetError(f"{path} holds no .safetensors weights{hint}; only safetensors are loaded")
    for file in weights:  # headers only: a truncated or foreign file is named here, not as "Unable to load weights"
        try:
            read_safetensors_header(file)
        except SafetensorsFileError as error:
            raise DatasetError(f"{error}; the model folder {path} is damaged (an interrupted copy or a full disk?): "
                               "restore it from where it came from, or re-run the node that writes it") from None


class DiffusersModelDataset(AbstractVersionedDataset[Any, Any]):
    """Save and load a diffusers ``ModelMixin`` or ``DiffusionPipeline`` as a ``save_pretrained`` folder."""

    def __init__(
        self,
        *,
        filepath: str,
        model_class: str = "diffusers.UNet2DConditionModel",
        load_args: dict[str, Any] | None = None,
        save_args: dict[str, Any] | None = None,
        version: Version | None = None,
        metadata: dict[str, Any] | None = None,
    ):
        super().__init__(filepath=PurePosixPath(Path(filepath).as_posix()), version=version)
        self._model_class_path = model_class
        self._model_class = _import_class(model_class)
        self._load_args = {"use_safetensors": True, "local_files_only": True, **(load_args or {})}
        if self._load_args["use_safetensors"] is not True:
            raise DatasetError(f"{filepath}: load_args.use_safetensors must stay true (pickled weights are unsafe)")
        self._save_args = {**(save_args or {}), "safe_serialization": True}
        self.metadata = metadata

    def load(self) -> Any:
        self._clean_leftovers()
        try:
            path = Path(self._get_load_path())
        except VersionNotFoundError as error:
            raise DatasetError(
                f"no saved version of {self._filepath} yet ({error}). It is written by the node that produces it: "
                "for a path stage's parent, run the stage before it first (`kedro run --namespaces stage_<i-1>`, or "
                "the whole path with `kedro run --only-missing-outputs`); or pin an existing version with "
                "--load-versions"
            ) from None
        from diffusers import DiffusionPipeline

        check_safetensors_folder(path, pipeline=issubclass(self._model_class, DiffusionPipeline))
        return self._model_class.from_pretrained(str(path), **self._load_args)

    def save(self, data: Any) -> None:
        if not hasattr(data, "save_pretrained"):
            raise DatasetError(
                f"{self._filepath}: expected a diffusers model or pipeline with save_pretrained, got {type(data).__name__}"
            )
        self._clean_leftovers()
        final = Path(self._get_save_path())
        new_version_folder = not final.parent.exists()  # a versioned save's <version>/ folder, made here
        final.parent.mkdir(parents=True, exist_ok=True)
        partial = final.with_name(f".{final.name}.partial-{os.getpid()}")
        previous = final.with_name(f".{final.name}.previous-{os.getpid()}")
        shutil.rmtree(partial, ignore_errors=True)
        try:
            data.save_pretrained(str(partial), **self._save_args)
            fsync_tree(partial)  # on disk before it gets its final name: a power loss cannot leave it half-written
            if final.exists():  # unversioned re-save: swap folders so a complete one is always in place
                os.replace(final, previous)
            os.replace(partial, final)  # atomic on one filesystem: the folder appears complete or not at all
            fsync_path(final.parent)
        except Exception as error:  # disk full, permissions: nothing half-written stays, earlier versions untouched
            # (safetensors reports a full disk as its own SafetensorError, not as an OSError)
            if previous.exists() and not final.exists():
                os.replace(previous, final)  # an unversioned re-save failed after the swap: put the old one back
            shutil.rmtree(partial, ignore_errors=True)
            if new_version_folder and final.parent.is_dir() and not any(final.parent.iterdir()):
                final.parent.rmdir()  # no empty version folder left behind either
            reason = getattr(error, "strerror", None) or str(error)
            storage = isinstance(error, OSError) or "os error" in reason or "No space left" in reason
            raise DatasetError(
                f"could not write {final} ({reason}); nothing of it was kept and earlier versions under "
                f"{self._filepath} are untouched. "
                + ("Free disk space or fix permissions, then rerun" if storage else "Fix the cause, then rerun")
                + " with `kedro run --only-missing-outputs` to keep what already finished"
            ) from error
        finally:
            shutil.rmtree(partial, ignore_errors=True)
            shutil.rmtree(previous, ignore_errors=True)

    def _exists(self) -> bool:
        try:
            path = Path(self._get_load_path())
        except DatasetError:
            return False
        return path.is_dir()

    def _clean_leftovers(self) -> None:
        """Undo what a killed save of this dataset left (its writer's pid no longer runs): partial folders,
        version folders holding nothing but those, and an unversioned re-save's previous copy (put back)."""
        root = Path(str(self._filepath))
        name = root.name
        folders = [root.parent] if self._version is None else \
            [v for v in (root.iterdir() if root.is_dir() else []) if v.is_dir() and not v.name.startswith(".")]
        for folder in folders:
            for leftover in sorted(folder.glob(f".{name}.*-*")):
                if not writer_is_gone(leftover):
                    continue
                final = folder / name
                if ".previous-" in leftover.name and not final.exists():
                    os.replace(leftover, final)
                    logger.warning("%s: a re-save was killed between its two renames; put the previous copy back "
                                   "from %s", final, leftover.name)
                else:
                    shutil.rmtree(leftover, ignore_errors=True)
                    logger.warning("%s: removed %s, left by a save that was killed", folder, leftover.name)
            if self._version is not None and folder != root.parent and not any(folder.iterdir()):
                folder.rmdir()  # a version folder whose save was killed: nothing of it is left
                logger.warning("%s: removed the empty version folder %s (its save was killed)", root, folder.name)
    def _describe(self) -> dict[str, Any]:
        return {"filepath": self._filepath, "model_class": self._model_class_path, "version": self._version}
