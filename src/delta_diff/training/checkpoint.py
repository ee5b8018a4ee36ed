"""Periodic training checkpoints that an interrupted run resumes from and that are never left half-written.

Layout: ``<dir>/step-000200/{<model>.safetensors, <name>.state.pt, meta.json}``. A checkpoint is written into a
hidden ``.partial`` folder and renamed into place when complete, so the newest ``step-*`` folder is always whole.
Model weights are safetensors; optimizer/EMA/RNG states (tensors and numbers only) are ``torch.save``d and read
back with ``weights_only=True``.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file


class CheckpointError(RuntimeError):
    pass


class TrainingCheckpoints:
    def __init__(self, directory: str | Path, keep: int = 2):
        self.directory = Path(directory)
        self.keep = keep

    def steps(self) -> list[int]:
        if not self.directory.is_dir():
            return []
        found = []
        for child in self.directory.iterdir():
            if child.name.startswith("step-") and (child / "meta.json").is_file():
                found.append(int(child.name.removeprefix("step-")))
        return sorted(found)

    def latest(self) -> int | None:
        steps = self.steps()
        return steps[-1] if steps else None

    def save(self, step: int, models: dict[str, torch.nn.Module], states: dict[str, Any], meta: dict | None = None):
        final = self.directory / f"step-{step:06d}"
        partial = self.directory / f".step-{step:06d}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        try:
            for name, model in models.items():
                tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
                save_file(tensors, str(partial / f"{name}.safetensors"))
            for name, state in states.items():
                torch.save(state, partial / f"{name}.state.pt")
            (partial / "meta.json").write_text(json.dumps({"step": step, **(meta or {})}))
            shutil.rmtree(final, ignore_errors=True)
            os.replace(partial, final)
        finally:
            shutil.rmtree(partial, ignore_errors=True)
        for old in self.steps()[: -self.keep]:
            shutil.rmtree(self.directory / f"step-{old:06d}", ignore_errors=True)

    def load(self, step: int, models: dict[str, torch.nn.Module], state_names: list[str]) -> tuple[dict, dict]:
        folder = self.directory / f"step-{step:06d}"
        try:
            for name, model in models.items():
                model.load_state_dict(load_file(str(folder / f"{name}.safetensors")))
            states = {n: torch.load(folder / f"{n}.state.pt", weights_only=True) for n in state_names}
            meta = json.loads((folder / "meta.json").read_text())
        except Exception as error:  # safetensors, pickle and OS errors all mean the same: unusable checkpoint
            raise CheckpointError(
                f"checkpoint {folder} cannot be resumed from ({error}); delete it to restart from the one before"
            ) from None
        return states, meta

    def clear(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


def weights_digest(model) -> str:
    """A short digest of a model's weights: the first 64 values of every tensor. Cheap, and any training step
    changes it; used to tell whether saved work (a checkpoint, a surrogate table) was made from these weights."""
    import hashlib

    digest = hashlib.sha256()
    for tensor in model.state_dict().values():
        digest.update(tensor.detach().flatten()[:64].float().cpu().numpy().tobytes())
    return digest.hexdigest()
