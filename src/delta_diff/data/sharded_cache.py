"""The training cache on disk: VAE posterior statistics and token ids (and, optionally, text embeddings) of every
image-caption pair, in shards, keyed by what they were built from, built shard by shard and read row by row.

Why this shape (issue 14): BK-SDM's 212,776 LAION pairs at 512 px are ~7 GB of fp16 latent statistics and ~25 GB
of fp16 77x768 text embeddings. A cache held in RAM, saved as one file and re-written on every run cannot serve
that; this one:

- is written in shards of ``shard_size`` rows, each one atomically (hidden partial, fsync, rename), so building
  needs one shard's RAM, an interrupted build resumes at the first missing shard, and a missing or truncated
  shard is named and rebuilt alone;
- lives in ``<root>/<key>/``, ``key`` a digest of its inputs (image folder, VAE and text-encoder weights,
  resolution, layout): an unchanged ``data_prep`` finds it complete and writes nothing, a changed input builds a
  new folder beside the old one (``<root>/current.json`` names the newest);
- is read with positioned reads of just the rows a batch needs (no memory map, no full load), so a training
  process's RAM does not grow with the dataset;
- stores latent statistics in fp16: the rounding error (|x| * 2^-11, ~5e-4 for latents of magnitude 1) is far
  below the posterior's own std that every draw adds (benchmarks/cache_scale.py measures both on the world's VAE);
- stores token ids always (the per-word masks of the attention proxy need them) and text-encoder embeddings only
  with ``text="embeddings"``: at SD scale the text encoder costs < 1 % of a distillation step while its
  embeddings are 118 KB per caption (README, "The training cache").

Layout::

    <root>/current.json                        {"key": ...}: what a run loads
    <root>/<key>/spec.json                     inputs, sizes, per-row entries (written first)
    <root>/<key>/extras.safetensors            the empty caption's ids (and embedding)
    <root>/<key>/shard-00000.safetensors ...   latent_mean, latent_std (fp16), input_ids (int32)[, text_embeddings]
    <root>/<key>/complete.json                 written last, with every shard's byte size
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from tqdm.auto import tqdm

from delta_diff.durable_files import write_json_durably, write_safetensors_durably
from delta_diff.safetensors_header import SafetensorsFileError, SafetensorsHeader, read_safetensors_header

logger = logging.getLogger(__name__)

FORMAT = 1
TextMode = Literal["embeddings", "token_ids"]
# safetensors dtype names <-> numpy / torch
_DTYPES = {"F16": (np.float16, torch.float16), "F32": (np.float32, torch.float32), "I32": (np.int32, torch.int32),
           "I64": (np.int64, torch.int64)}
DISK_MARGIN = 1.05  # headers, the shard being written beside its partial, filesystem slack


class TrainingCacheError(ValueError):
    """A training cache is unusable or cannot be built; the message names the file and the fix."""


REBUILD = "rebuild it with `kedro run --pipelines data_prep` (only missing or damaged shards are re-encoded)"


@dataclass(frozen=True)
class CacheLayout:
    """What one row holds, and how rows are grouped in shards."""

    latent_shape: tuple[int, int, int]  # C x h x w
    max_length: int  # tokens per caption
    text_dim: int  # the text encoder's hidden size
    text: TextMode = "token_ids"
    shard_size: int = 4096

    def row_entries(self) -> dict[str, tuple[str, tuple[int, ...]]]:
        """Entry name -> (safetensors dtype, shape of one row)."""
        entries = {"latent_mean": ("F16", self.latent_shape), "latent_std": ("F16", self.latent_shape),
                   "input_ids": ("I32", (self.max_length,))}
        if self.text == "embeddings":
            entries["text_embeddings"] = ("F16", (self.max_length, self.text_dim))
        return entries

    def bytes_per_row(self) -> int:
        return sum(np.dtype(_DTYPES[dtype][0]).itemsize * int(np.prod(shape))
                   for dtype, shape in self.row_entries().values())


@dataclass
class CachePlan:
    """A cache to build: its inputs (which decide its key), layout, and how to encode rows ``[start, stop)``.
    A node returns one; ``write_training_cache`` (through the catalog's dataset) encodes only what is missing,
    the lazy save Kedro's PartitionedDataset uses for the same reason (bounded memory)."""

    inputs: dict[str, Any]
    layout: CacheLayout
    n_rows: int
    encode_rows: Callable[[int, int], dict[str, torch.Tensor]]
    encode_extras: Callable[[], dict[str, torch.Tensor]]
    show_progress: bool = True

    @property
    def key(self) -> str:
        blob = json.dumps({"format": FORMAT, "inputs": self.inputs, "layout": _layout_json(self.layout),
                           "n_rows": self.n_rows}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    @property
    def n_shards(self) -> int:
        return -(-self.n_rows // self.layout.shard_size)

    def shard_rows(self, shard: int) -> tuple[int, int]:
        start = shard * self.layout.shard_size
        return start, min(self.n_rows, start + self.layout.shard_size)


def _layout_json(layout: CacheLayout) -> dict[str, Any]:
    return {"latent_shape": list(layout.latent_shape), "max_length": layout.max_length, "text_dim": layout.text_dim,
            "text": layout.text, "shard_size": layout.shard_size}


def shard_name(shard: int) -> str:
    return f"shard-{shard:05d}.safetensors"


# ---------------------------------------------------------------------------------------------------- writing


def check_free_disk(folder: Path, needed_bytes: int, n_rows: int, bytes_per_row: int, text: TextMode) -> None:
    """Refuse before encoding when the cache cannot fit (the estimate is exact up to the shard headers)."""
    probe = folder
    while not probe.exists():
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if needed_bytes * DISK_MARGIN > free:
        raise TrainingCacheError(
            f"the training cache needs ~{_gb(needed_bytes)} at {folder} ({n_rows:,} rows x {bytes_per_row:,} bytes) "
            f"but only {_gb(free)} is free there: free space or point the training_cache entry of the catalog at a "
            "larger disk" + (", or cache token ids (data_prep.cache.text: token_ids) instead of text embeddings"
                             if text == "embeddings" else ""))


def _gb(n: float) -> str:
    """Bytes for people: 1.23 GB, 45.6 MB, 7.8 KB."""
    for unit, size in (("GB", 1e9), ("MB", 1e6)):
        if n >= size / 10:
            return f"{n / size:.2f} {unit}" if unit == "GB" else f"{n / size:.1f} {unit}"
    return f"{n / 1e3:.1f} KB"


def write_training_cache(root: str | Path, plan: CachePlan) -> Path:
    """Build ``plan`` into ``<root>/<key>/``, encoding only shards that are missing or damaged (each named in the
    log), and point ``<root>/current.json`` at it. Returns the cache folder."""
    root = Path(root)
    folder = root / plan.key
    spec = {"format": FORMAT, "key": plan.key, "inputs": plan.inputs, "layout": _layout_json(plan.layout),
            "n_rows": plan.n_rows, "n_shards": plan.n_shards, "bytes_per_row": plan.layout.bytes_per_row(),
            "entries": {k: [d, list(s)] for k, (d, s) in plan.layout.row_entries().items()}}
    if _complete(folder, spec) is None:
        problems = {s: _shard_problem(folder, s, plan, spec) for s in range(plan.n_shards)}
        todo = [s for s, problem in problems.items() if problem is not None]
        needed = sum(plan.shard_rows(s)[1] - plan.shard_rows(s)[0] for s in todo) * plan.layout.bytes_per_row()
        check_free_disk(folder, needed, plan.n_rows, plan.layout.bytes_per_row(), plan.layout.text)
        folder.mkdir(parents=True, exist_ok=True)
        write_json_durably(spec, folder / "spec.json")
        for leftover in folder.glob(".*.partial-*"):  # a killed build's half-written shard
            leftover.unlink(missing_ok=True)
        done = plan.n_shards - len(todo)
        if done and todo:
            logger.info("training cache %s: %d of %d shards already built; encoding the other %d", folder, done,
                        plan.n_shards, len(todo))
        write_safetensors_durably(plan.encode_extras(), folder / "extras.safetensors")
        for shard in tqdm(todo, desc="caching shards", disable=not plan.show_progress):
            if problems[shard] != "missing":
                logger.warning("training cache: %s; re-encoding it", problems[shard])
            start, stop = plan.shard_rows(shard)
            rows = plan.encode_rows(start, stop)
            write_safetensors_durably(_as_stored(rows, plan.layout, stop - start), folder / shard_name(shard))
        sizes = {shard_name(s): (folder / shard_name(s)).stat().st_size for s in range(plan.n_shards)}
        write_json_durably({**spec, "shard_bytes": sizes}, folder / "complete.json")
        logger.info("training cache %s: %d rows in %d shards, %s", folder, plan.n_rows, plan.n_shards,
                    _gb(sum(sizes.values())))
    else:
        logger.info("training cache %s is complete for these inputs; re-used (nothing re-encoded)", folder)
    current = root / "current.json"
    if not (current.is_file() and json.loads(current.read_text()).get("key") == plan.key):
        write_json_durably({"key": plan.key}, current)
    return folder


def _as_stored(rows: dict[str, torch.Tensor], layout: CacheLayout, count: int) -> dict[str, torch.Tensor]:
    stored = {}
    for name, (dtype, shape) in layout.row_entries().items():
        if name not in rows:
            raise TrainingCacheError(f"the cache plan's encoder returned no {name!r} (it returned {sorted(rows)})")
        tensor = rows[name].detach().cpu().to(_DTYPES[dtype][1])
        if tuple(tensor.shape) != (count, *shape):
            raise TrainingCacheError(f"the cache plan's {name} is {tuple(tensor.shape)}, expected {(count, *shape)}")
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise TrainingCacheError(f"{name} is not finite in fp16 (values beyond +-65504 or NaN from the encoder); "
                                     "check the VAE / text encoder")
        stored[name] = tensor
    return stored


def _complete(folder: Path, spec: dict[str, Any]) -> dict[str, Any] | None:
    """The completion record if ``folder`` holds a whole cache of ``spec`` (every shard present at its size)."""
    marker = folder / "complete.json"
    if not marker.is_file():
        return None
    try:
        record = json.loads(marker.read_text())
    except json.JSONDecodeError:
        return None
    if {k: record.get(k) for k in spec} != spec:
        return None
    sizes = record.get("shard_bytes", {})
    for name, size in sizes.items():
        path = folder / name
        if not path.is_file() or path.stat().st_size != size:
            return None
    return record if len(sizes) == spec["n_shards"] else None


def _shard_problem(folder: Path, shard: int, plan: CachePlan, spec: dict[str, Any]) -> str | None:
    path = folder / shard_name(shard)
    if not path.is_file():
        return "missing"
    try:
        header = _read_header(path)
    except TrainingCacheError as error:
        return str(error)
    start, stop = plan.shard_rows(shard)
    for name, (dtype, shape) in spec["entries"].items():
        found = header.entries.get(name)
        if found is None or found[0] != dtype or tuple(found[1]) != (stop - start, *shape):
            return f"shard {path} does not hold {name} as {dtype} {[stop - start, *shape]}"
    return None


# ---------------------------------------------------------------------------------------------------- reading


def _read_header(path: Path) -> SafetensorsHeader:
    """A shard's header, checked against the file's size (a truncated shard is caught here)."""
    try:
        return read_safetensors_header(path)
    except SafetensorsFileError as error:
        raise TrainingCacheError(f"shard {error}") from None


@dataclass
class TrainingCache:
    """A built cache, read lazily: ``rows(index)`` reads just those rows (fp32 latents, int64 ids, fp32
    embeddings when stored); ``text_embeddings(rows, text_encoder)`` gives the U-Net's conditioning either way."""

    folder: Path
    spec: dict[str, Any]
    _handles: dict[int, tuple[int, SafetensorsHeader]] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return int(self.spec["n_rows"])

    def __getstate__(self):  # picklable for worker processes: the descriptors are reopened there
        return {"folder": self.folder, "spec": self.spec, "_handles": {}}

    def __del__(self):
        for fd, _ in self._handles.values():
            try:
                os.close(fd)
            except OSError:
                pass

    @property
    def key(self) -> str:
        return self.spec["key"]

    @property
    def text_mode(self) -> TextMode:
        return self.spec["layout"]["text"]

    @property
    def text_dim(self) -> int:
        return int(self.spec["layout"]["text_dim"])

    @property
    def inputs(self) -> dict[str, Any]:
        return self.spec["inputs"]

    def _shard(self, shard: int) -> tuple[int, SafetensorsHeader]:
        if shard not in self._handles:
            path = self.folder / shard_name(shard)
            if not path.is_file():
                raise TrainingCacheError(f"training cache shard {path} is missing; {REBUILD}")
            header = _read_header(path)
            self._handles[shard] = (os.open(path, os.O_RDONLY), header)
        return self._handles[shard]

    def rows(self, index, names: list[str] | None = None) -> dict[str, torch.Tensor]:
        index = torch.as_tensor(index, dtype=torch.long).reshape(-1).tolist()
        entries = self.spec["entries"]
        names = list(entries) if names is None else names
        shard_size = int(self.spec["layout"]["shard_size"])
        out = {name: np.empty((len(index), *entries[name][1]), dtype=_DTYPES[entries[name][0]][0]) for name in names}
        for position, row in enumerate(index):
            if not 0 <= row < len(self):
                raise IndexError(f"row {row} of a training cache with {len(self)} rows")
            fd, header = self._shard(row // shard_size)
            local = row % shard_size
            for name in names:
                dtype, _, begin, end = header.entries[name]
                row_bytes = out[name][position].nbytes
                offset = header.data_start + begin + local * row_bytes
                data = os.pread(fd, row_bytes, offset)
                if len(data) != row_bytes:
                    raise TrainingCacheError(f"training cache shard {self.folder / shard_name(row // shard_size)} "
                                             f"is truncated; {REBUILD}")
                out[name][position] = np.frombuffer(data, dtype=out[name].dtype).reshape(out[name].shape[1:])
        return {name: _widen(torch.from_numpy(array)) for name, array in out.items()}

    def extras(self) -> dict[str, torch.Tensor]:
        from safetensors.torch import load_file

        return {k: _widen(v) for k, v in load_file(str(self.folder / "extras.safetensors")).items()}

    def text_embeddings(self, rows: dict[str, torch.Tensor], text_encoder=None) -> torch.Tensor:
        """The rows' caption embeddings: stored ones, or ``text_encoder`` run on their token ids (no grad, on the
        encoder's device and dtype; fp32 out)."""
        if "text_embeddings" in rows:
            return rows["text_embeddings"]
        return encode_token_ids(text_encoder, rows["input_ids"], self.folder)


def encode_token_ids(text_encoder, input_ids: torch.Tensor, where: object = "the training cache") -> torch.Tensor:
    if text_encoder is None:
        raise TrainingCacheError(f"{where} stores token ids, not text embeddings: pass the teacher's text encoder")
    with torch.no_grad():
        return text_encoder(input_ids.to(text_encoder.device))[0].float()


def _widen(tensor: torch.Tensor) -> torch.Tensor:
    """fp16 -> fp32 and int32 -> int64: what the models and tokenizers use."""
    if tensor.dtype == torch.float16:
        return tensor.float()
    if tensor.dtype == torch.int32:
        return tensor.long()
    return tensor


def open_training_cache(folder: str | Path) -> TrainingCache:
    """A cache folder that was built completely (else an error naming what is wrong and how to rebuild)."""
    folder = Path(folder)
    spec_path = folder / "spec.json"
    if not spec_path.is_file():
        raise TrainingCacheError(f"{folder} is not a training cache (no spec.json); {REBUILD}")
    spec = json.loads(spec_path.read_text())
    if spec.get("format") != FORMAT:
        raise TrainingCacheError(f"training cache {folder} has format {spec.get('format')}, this code reads "
                                 f"{FORMAT}; {REBUILD}")
    if _complete(folder, spec) is None:
        damaged = []
        for shard in range(spec["n_shards"]):
            path = folder / shard_name(shard)
            try:
                if not path.is_file():
                    damaged.append(f"{path.name} missing")
                else:
                    _read_header(path)
            except TrainingCacheError as error:
                damaged.append(str(error))
        what = "; ".join(damaged[:5]) or "its build did not finish (no complete.json)"
        raise TrainingCacheError(f"training cache {folder} is incomplete: {what}; {REBUILD}")
    return TrainingCache(folder, spec)


def current_cache_folder(root: str | Path) -> Path | None:
    """The folder ``<root>/current.json`` names (the newest built), or None when nothing was built."""
    pointer = Path(root) / "current.json"
    if not pointer.is_file():
        return None
    return Path(root) / json.loads(pointer.read_text())["key"]
