"""Files that are either absent or whole, even after a crash or a power loss: written beside their final name,
flushed to disk, renamed into place, and the folder flushed too (a rename is durable only once its folder is).
Used by the training cache, the training checkpoints, the model datasets and the distillation's snapshots.

Leftovers of a process that was killed mid-write (``.<name>.partial-<pid>`` / ``.<name>.previous-<pid>``) are
recognised by their pid no longer running, so a live writer's files are never touched."""

from __future__ import annotations

import json
import os
import shutil
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


def fsync_tree(folder: Path) -> None:
    """Flush every file under ``folder`` and every folder's entries, deepest first (before renaming it in)."""
    for path in sorted(folder.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        fsync_path(path)
    fsync_path(folder)


def pid_of_leftover(path: Path) -> int | None:
    """The writer's pid of a ``.<name>.partial-<pid>`` / ``.<name>.previous-<pid>`` path, else None."""
    head, _, pid = path.name.rpartition("-")
    if not path.name.startswith(".") or not pid.isdigit() or not head.endswith((".partial", ".previous")):
        return None
    return int(pid)


def writer_is_gone(path: Path) -> bool:
    """Whether ``path`` is a leftover whose writing process no longer runs (killed, or crashed)."""
    pid = pid_of_leftover(path)
    if pid is None or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # another user's live process
        return False
    return False


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


def write_folder_durably(final: Path, write: Callable[[Path], None]) -> None:
    """``write(partial)`` fills a hidden partial folder beside ``final``; every file and folder in it is flushed,
    then it is renamed to ``final`` (which must not exist) and the parent flushed. On any failure, an interrupt
    included, the partial folder is removed and ``final`` does not appear."""
    partial = final.with_name(f".{final.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        write(partial)
        fsync_tree(partial)
        os.replace(partial, final)
        fsync_path(final.parent)
    finally:
        shutil.rmtree(partial, ignore_errors=True)


def write_safetensors_durably(tensors: dict, final: Path) -> None:
    from safetensors.torch import save_file

    write_durably(final, lambda partial: save_file({k: v.contiguous() for k, v in tensors.items()}, str(partial)))


def write_json_durably(data: dict[str, Any], final: Path) -> None:
    write_durably(final, lambda partial: partial.write_text(json.dumps(data, indent=1)))
