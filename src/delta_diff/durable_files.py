"""Files that are either absent or whole, even after a crash or a power loss: written beside their final name,
flushed to disk, renamed into place, and the folder flushed too (a rename is durable only once its folder is).
Used by the training cache and the training checkpoints."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any


def fsync_path(path: Path) -> None:
    """Flush a file's contents, or a folder's entries, to disk."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def write_durably(final: Path, write: Callable[[Path], None]) -> None:
    """``write(partial)`` writes the file at a hidden partial path; it then replaces ``final`` durably. An
    interrupted write leaves ``final`` as it was (and no partial, unless the process was killed)."""
    partial = final.with_name(f".{final.name}.partial-{os.getpid()}")
    try:
        write(partial)
        fsync_path(partial)
        os.replace(partial, final)
        fsync_path(final.parent)
    finally:
        partial.unlink(missing_ok=True)


def write_safetensors_durably(tensors: dict, final: Path) -> None:
    from safetensors.torch import save_file

    write_durably(final, lambda partial: save_file({k: v.contiguous() for k, v in tensors.items()}, str(partial)))


def write_json_durably(data: dict[str, Any], final: Path) -> None:
    write_durably(final, lambda partial: partial.write_text(json.dumps(data, indent=1)))
