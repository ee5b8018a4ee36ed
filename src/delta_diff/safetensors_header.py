"""A safetensors file's header, read and checked against the file's size without loading any tensor: a file cut
short (an interrupted copy, a full disk) or one that is not safetensors at all is named before anything loads it
(the library itself would only say "Unable to load weights")."""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path


class SafetensorsFileError(ValueError):
    """The file is truncated or not a safetensors file; the message names it."""


@dataclass
class SafetensorsHeader:
    data_start: int
    entries: dict[str, tuple[str, list[int], int, int]]  # name -> (dtype, shape, begin, end) within the data


def read_safetensors_header(path: Path) -> SafetensorsHeader:
    size = path.stat().st_size
    with open(path, "rb") as handle:
        prefix = handle.read(8)
        if len(prefix) < 8:
            raise SafetensorsFileError(f"{path} is truncated ({size} bytes)")
        (length,) = struct.unpack("<Q", prefix)
        if length > size - 8:
            raise SafetensorsFileError(f"{path} is truncated (its header alone claims {length} bytes)")
        try:
            raw = json.loads(handle.read(length))
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise SafetensorsFileError(f"{path} is not a safetensors file (unreadable header)") from None
    raw.pop("__metadata__", None)
    try:
        entries = {name: (v["dtype"], v["shape"], *v["data_offsets"]) for name, v in raw.items()}
    except (KeyError, TypeError, ValueError):
        raise SafetensorsFileError(f"{path} is not a safetensors file (its header lists no tensors)") from None
    end = max((e[3] for e in entries.values()), default=0)
    if 8 + length + end > size:
        raise SafetensorsFileError(f"{path} is truncated ({size} of {8 + length + end} bytes)")
    return SafetensorsHeader(8 + length, entries)
