"""Training checkpoints: a thin layer over accelerate's ``save_state``/``load_state`` that makes them atomic,
fingerprinted, pruned, and safe to load.

Layout of ``<dir>/step-000200/``:

* written by ``accelerator.save_state``: ``model.safetensors`` (the prepared model's weights) and
  ``optimizer.bin`` from rank 0, ``scaler.pt`` (fp16 only), and from every rank ``random_states_<rank>.pkl``
  (its python, numpy, torch and CUDA generators and accelerate's micro-step counter);
* written here: ``noise_generator_<rank>.safetensors`` from every rank (the rank's own ``torch.Generator``, that
  the loss draws noise, timesteps and dropout from; accelerate knows only the global generators),
  ``trainer_state.pt`` from rank 0 (global batch sampler, LR schedule, EMA, logged history), and, last,
  ``meta.json`` from rank 0 (layout format, step, job fingerprint, number of processes, and every file's size,
  so that a truncated or missing file is found before anything is loaded).

Nothing is unpickled without ``weights_only=True``. accelerate reads its own files so (``accelerate.utils.load``
defaults to it; model weights are safetensors), but it reads objects registered with
``register_for_checkpointing`` with ``weights_only=False``; the trainer's own states are therefore written and
read here instead of being registered. accelerate also swallows a failure to read a rank's random states (it
logs and goes on, which would silently break a bit-exact resume), so that file is checked here first.

A checkpoint is written into a hidden ``.step-000200.partial`` folder, its files and the folder fsynced, then
renamed into place (and the parent folder fsynced), so a ``step-*`` folder is always whole; a partial folder
left by a killed run is ignored, and removed by the next save. Resuming takes the newest checkpoint that loads:
one that fails (truncated weights, a missing file) is skipped for the one before, with a warning naming it. One
of another job (fingerprint), of another number of processes, or in an older layout is refused, not skipped.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
from pathlib import Path
from typing import Any, Protocol

import torch
from safetensors.torch import load_file, save_file

from delta_diff.durable_files import fsync_path

logger = logging.getLogger(__name__)

FORMAT = 2  # 1: the hand-written layout before accelerate (student.safetensors, *.state.pt); its meta had no format
META = "meta.json"
TRAINER_STATE = "trainer_state.pt"
STEP_FOLDER = re.compile(r"^step-(\d{6,})$")


class CheckpointError(RuntimeError):
    pass


class Stateful(Protocol):
    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> Any: ...


class TrainingCheckpoints:
    """The checkpoints of one job in one folder; ``fingerprint`` is what a checkpoint must have been written
    for to be resumed (``job_fingerprint``). ``save`` and ``resume`` are called by every rank."""

    def __init__(self, directory: str | Path, keep: int = 2, fingerprint: str = ""):
        if keep < 1:
            raise ValueError(f"keep_checkpoints must be at least 1, not {keep}")
        self.directory = Path(directory)
        self.keep = keep
        self.fingerprint = fingerprint

    def folder(self, step: int) -> Path:
        return self.directory / f"step-{step:06d}"

    def _folders(self) -> list[int]:
        """Steps of every ``step-*`` folder, complete or not."""
        if not self.directory.is_dir():
            return []
        return sorted(int(m.group(1)) for m in map(STEP_FOLDER.match, (p.name for p in self.directory.iterdir()))
                      if m is not None)

    def steps(self) -> list[int]:
        """Steps of the complete checkpoints (a folder with its meta.json), oldest first."""
        return [s for s in self._folders() if (self.folder(s) / META).is_file()]

    def latest(self) -> int | None:
        steps = self.steps()
        return steps[-1] if steps else None

    def clear(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)

    # -- writing ------------------------------------------------------------------------------------------

    def save(self, accelerator, step: int, states: dict[str, Stateful], generator: torch.Generator) -> Path:
        """Write step ``step``: every rank its own files, rank 0 the shared ones; then rank 0 makes it visible
        in one rename and drops the checkpoints beyond the newest ``keep``. A failure on any rank raises on
        every rank (none is left waiting at the next barrier) and leaves the previous checkpoints as they were."""
        final, partial = self.folder(step), self.directory / f".step-{step:06d}.partial"
        main = accelerator.is_main_process
        accelerator.wait_for_everyone()  # every rank has finished the step before anything is written
        error = None
        if main:
            try:
                self._remove_leftovers()
                partial.mkdir(parents=True)
            except OSError as caught:
                error = caught
        self._agree(accelerator, error, partial, f"prepare {partial}")
        try:
            accelerator.save_state(str(partial), safe_serialization=True)
            rank = accelerator.process_index
            save_file({"state": generator.get_state()}, str(partial / f"noise_generator_{rank}.safetensors"))
            if main:
                torch.save({name: obj.state_dict() for name, obj in states.items()}, partial / TRAINER_STATE)
        except Exception as caught:  # noqa: BLE001 - re-raised on every rank by _agree
            error = caught
        self._agree(accelerator, error, partial, f"write {partial}")
        if main:
            try:
                files = {p.name: p.stat().st_size for p in sorted(partial.iterdir())}
                meta = {"format": FORMAT, "step": step, "fingerprint": self.fingerprint,
                        "num_processes": accelerator.num_processes, "files": files}
                (partial / META).write_text(json.dumps(meta, indent=1))
                for path in partial.iterdir():
                    fsync_path(path)
                fsync_path(partial)  # the folder's entries, before the rename publishes them
                self._publish(partial, final)
                self._prune(step)
            except Exception as caught:  # noqa: BLE001
                error = caught
        self._agree(accelerator, error, partial, f"publish {final}")
        return final

    def _publish(self, partial: Path, final: Path) -> None:
        stale = None
        if final.exists():  # a checkpoint of this step the run did not resume from (it failed to load)
            stale = final.with_name(f".{final.name}.stale")
            shutil.rmtree(stale, ignore_errors=True)
            os.replace(final, stale)
        os.replace(partial, final)
        fsync_path(self.directory)
        if stale is not None:
            shutil.rmtree(stale, ignore_errors=True)

    def _prune(self, step: int) -> None:
        """Keep the newest ``keep`` checkpoints up to ``step``. Later ones belong to a run that this one did not
        resume from (they failed to load); the steps they hold are being trained again."""
        ordered = self._folders()
        kept = [s for s in ordered if s <= step][-self.keep:]
        for old in ordered:
            if old not in kept:
                shutil.rmtree(self.folder(old), ignore_errors=True)

    def _remove_leftovers(self) -> None:
        """Partial (or set-aside) folders of a killed run: never complete, never read."""
        if self.directory.is_dir():
            for path in self.directory.iterdir():
                if path.name.startswith(".step-") and path.name.endswith((".partial", ".stale")):
                    shutil.rmtree(path, ignore_errors=True)

    @staticmethod
    def _agree(accelerator, error: BaseException | None, partial: Path, what: str) -> None:
        """Raise on every rank if any rank failed ``what``; rank 0 removes the partial folder first."""
        failed = [accelerator.process_index] if error is not None else []
        if accelerator.num_processes > 1:
            flags = torch.tensor([float(error is not None)], device=accelerator.device)
            failed = [r for r, f in enumerate(accelerator.gather(flags).cpu().tolist()) if f]
        if not failed:
            return
        if accelerator.is_main_process:
            shutil.rmtree(partial, ignore_errors=True)
        if error is not None:
            raise error
        raise CheckpointError(f"could not {what}: rank(s) {', '.join(map(str, failed))} failed (see their error)")

    # -- reading ------------------------------------------------------------------------------------------

    def resume(self, accelerator, states: dict[str, Stateful], generator: torch.Generator) -> int:
        """Load the newest checkpoint that loads into the prepared model and optimizer, accelerate's random
        states, ``states`` and ``generator`` (this rank's); returns its step, 0 when there is none."""
        candidates = list(reversed(self._folders()))
        skipped: list[str] = []
        for step in candidates:
            folder = self.folder(step)
            problem = self._check(folder, accelerator)  # raises for a checkpoint that must not be resumed
            if problem is None:
                try:
                    self._load(folder, accelerator, states, generator)
                except Exception as error:  # noqa: BLE001 - safetensors, pickle, shape and OS errors alike
                    problem = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
            if self._everyone_loaded(accelerator, problem is None):
                if skipped and accelerator.is_main_process:
                    logger.warning("resuming from %s instead (the newer one(s) could not be loaded)", folder)
                return int(step)
            problem = problem or "another rank could not load it"
            skipped.append(f"{folder.name} ({problem})")
            if accelerator.is_main_process:
                logger.warning("checkpoint %s cannot be loaded (%s); skipping it for the previous one", folder,
                               problem)
        if candidates:
            raise CheckpointError(f"no checkpoint in {self.directory} can be resumed from: {'; '.join(skipped)}. "
                                  "Delete the folder to start over")
        return 0

    def _check(self, folder: Path, accelerator) -> str | None:
        """Why ``folder`` cannot be loaded (it is skipped), or None; raises when it belongs to another job."""
        try:
            meta = json.loads((folder / META).read_text())
        except (OSError, ValueError) as error:
            return f"its {META} is unreadable: {error}"
        if "format" not in meta or any((folder / name).exists() for name in ("student.safetensors", "rng.state.pt")):
            raise CheckpointError(
                f"checkpoint {folder} was written by an older version of delta-diff's trainer (its own layout, "
                f"before accelerate's save_state) and cannot be resumed; delete {self.directory} to start over")
        if meta["format"] != FORMAT:
            raise CheckpointError(f"checkpoint {folder} has layout format {meta['format']}, this version reads "
                                  f"{FORMAT}; delete {self.directory} to start over")
        if meta.get("fingerprint") != self.fingerprint:
            raise CheckpointError(
                f"checkpoint {folder} was written for another configuration or architecture (job "
                f"{meta.get('fingerprint')!r}, this one is {self.fingerprint!r}); delete the folder to start over, "
                "or restore the settings it was made with")
        if meta.get("num_processes") != accelerator.num_processes:
            raise CheckpointError(
                f"checkpoint {folder} was written by {meta.get('num_processes')} process(es) and this run has "
                f"{accelerator.num_processes}: resume with num_processes {meta.get('num_processes')}, or delete "
                f"{self.directory} to start over")
        for name, size in meta["files"].items():
            path = folder / name
            if not path.is_file():
                return f"{name} is missing"
            if path.stat().st_size != size:
                return f"{name} is {path.stat().st_size} bytes, {size} were written (truncated?)"
        return None

    @staticmethod
    def _load(folder: Path, accelerator, states: dict[str, Stateful], generator: torch.Generator) -> None:
        from accelerate.utils import load  # weights_only=True, with numpy's RNG types allowed

        rank = accelerator.process_index
        random_states = load(folder / f"random_states_{rank}.pkl")  # accelerate would skip it silently if bad
        if "torch_manual_seed" not in random_states:
            raise CheckpointError(f"random_states_{rank}.pkl holds no torch random state")
        accelerator.load_state(str(folder))
        trainer_state = torch.load(folder / TRAINER_STATE, map_location="cpu", weights_only=True)
        for name, obj in states.items():
            obj.load_state_dict(trainer_state[name])
        generator.set_state(load_file(str(folder / f"noise_generator_{rank}.safetensors"))["state"])

    @staticmethod
    def _everyone_loaded(accelerator, loaded: bool) -> bool:
        """All ranks resume from the same checkpoint: one that any rank could not load is skipped by all."""
        if accelerator.num_processes == 1:
            return loaded
        flags = torch.tensor([float(loaded)], device=accelerator.device)
        return bool(accelerator.gather(flags).min().item() == 1.0)


def weights_digest(model) -> str:
    """A short digest of a model's weights: the first 64 values of every tensor. Cheap, and any training step
    changes it; used to tell whether saved work (a checkpoint, a surrogate table) was made from these weights."""
    digest = hashlib.sha256()
    for tensor in model.state_dict().values():
        digest.update(tensor.detach().flatten()[:64].float().cpu().numpy().tobytes())
    return digest.hexdigest()


def job_fingerprint(settings: dict, *tensors: torch.Tensor) -> str:
    """What a checkpoint of a training job must agree on to be resumed: its settings (JSON-able) and its data,
    by shape, dtype and up to 65,536 evenly spaced values per tensor (not the first ones: the world's images
    all start with white background)."""
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode())
    for tensor in tensors:
        flat = tensor.detach().reshape(-1)
        sample = flat[:: max(1, flat.numel() // 65536)][:65536]
        digest.update(f"{tuple(tensor.shape)} {tensor.dtype}".encode())
        digest.update(sample.float().cpu().numpy().tobytes())
    return digest.hexdigest()[:16]
