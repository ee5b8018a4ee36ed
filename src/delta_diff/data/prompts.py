"""Prompt sets: validation, tokenizer-length truncation, and the HPS v2 benchmark prompts (when present)."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

MAX_LISTED_PROBLEMS = 10
HPS_STYLES = ("anime", "concept-art", "paintings", "photo")
# Where the hpsv2 package itself keeps them after its (online) download; offline, copy them there or anywhere.
HPS_DEFAULT_HINT = "~/.cache/hpsv2/datasets/benchmark/ (hpsv2's download location)"


class PromptSetError(ValueError):
    """A prompt set is malformed; the message names the set (or file) and the offending index."""


def validate_prompts(prompts: list[str], name: str) -> list[str]:
    """Return ``prompts`` stripped of surrounding whitespace; raise ``PromptSetError`` listing every index
    (0-based) that is not a string or is empty."""
    if isinstance(prompts, (str, bytes)) or not hasattr(prompts, "__iter__"):
        raise PromptSetError(f"prompt set {name!r} must be a list of strings, got {type(prompts).__name__}")
    cleaned, problems = [], []
    for index, prompt in enumerate(prompts):
        if not isinstance(prompt, str):
            problems.append(f"index {index}: expected a string, got {type(prompt).__name__} {prompt!r}")
        elif not prompt.strip():
            problems.append(f"index {index}: empty prompt")
        else:
            cleaned.append(prompt.strip())
    if problems:
        listed = "; ".join(problems[:MAX_LISTED_PROBLEMS])
        more = f" (and {len(problems) - MAX_LISTED_PROBLEMS} more)" if len(problems) > MAX_LISTED_PROBLEMS else ""
        raise PromptSetError(
            f"prompt set {name!r} has {len(problems)} bad prompt(s): {listed}{more}; every prompt must be a "
            "non-empty string"
        )
    return cleaned


def truncate_to_tokenizer(prompts: list[str], tokenizer: Any, name: str) -> tuple[list[str], list[int]]:
    """Truncate prompts longer than ``tokenizer.model_max_length`` tokens (special tokens included) to the text
    the tokenizer keeps, and return ``(prompts, truncated_indices)``.

    Stable Diffusion's pipeline truncates such prompts silently, so a score would be for a prompt the model never
    saw in full; here the truncated text is what gets scored, and one warning says which prompts were cut.
    """
    max_length = getattr(tokenizer, "model_max_length", None)
    if not isinstance(max_length, int) or max_length <= 0:
        raise TypeError(
            f"truncate_to_tokenizer({name!r}) needs a Hugging Face tokenizer with a positive integer "
            f"model_max_length, got {type(tokenizer).__name__} with model_max_length={max_length!r}"
        )
    if not prompts:
        return [], []
    # verbose=False: we report too-long prompts ourselves, once, instead of transformers' per-call warning.
    lengths = [len(ids) for ids in tokenizer(list(prompts), truncation=False, verbose=False)["input_ids"]]
    truncated_indices = [index for index, length in enumerate(lengths) if length > max_length]
    if not truncated_indices:
        return list(prompts), []
    result = list(prompts)
    kept = tokenizer([prompts[i] for i in truncated_indices], truncation=True, max_length=max_length)["input_ids"]
    for index, ids in zip(truncated_indices, kept):
        result[index] = tokenizer.decode(ids, skip_special_tokens=True).strip()
    shown = truncated_indices[:5]
    logger.warning(
        "prompt set %r: %d of %d prompts exceed the tokenizer's %d tokens (special tokens included) and are "
        "truncated to what it keeps, as Stable Diffusion does silently; indices %s%s",
        name,
        len(truncated_indices),
        len(prompts),
        max_length,
        shown,
        " ..." if len(truncated_indices) > len(shown) else "",
    )
    return result, truncated_indices


def _read_style_file(path: Path) -> list[str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise PromptSetError(f"{path} is not valid UTF-8 JSON ({error}); it must be a JSON list of prompts") from None
    if not isinstance(data, list):
        raise PromptSetError(f"{path} holds a JSON {type(data).__name__}; it must be a JSON list of prompt strings")
    if not data:
        raise PromptSetError(f"{path} is an empty list; restore the benchmark's prompts for this style")
    return validate_prompts(data, name=str(path))


def read_hps_benchmark_prompts(folder: str | os.PathLike | None) -> dict:
    """The HPS v2 benchmark prompts, one JSON list per style (``anime.json``, ``concept-art.json``,
    ``paintings.json``, ``photo.json``).

    Returns ``{"available": bool, "reason": str | None, "styles": {style: [prompts]}}``. Absent files are not an
    error (the benchmark cannot be downloaded here): ``available`` is False, ``styles`` empty and ``reason`` says
    what is missing and where to put it. A present but malformed file raises ``PromptSetError``.
    """
    file_names = [f"{style}.json" for style in HPS_STYLES]
    where = f"put {', '.join(file_names)} from the HPS v2 benchmark in it"
    if folder is None:
        return {
            "available": False,
            "reason": (
                f"no HPS v2 benchmark prompts folder is configured; set one (e.g. {HPS_DEFAULT_HINT}) and {where}"
            ),
            "styles": {},
        }
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        return {
            "available": False,
            "reason": f"HPS v2 benchmark prompts folder {folder} does not exist; create it and {where}",
            "styles": {},
        }
    missing = [name for name in file_names if not (folder / name).is_file()]
    if missing:
        return {
            "available": False,
            "reason": f"HPS v2 benchmark prompts folder {folder} lacks {', '.join(missing)}; {where}",
            "styles": {},
        }
    styles = {style: _read_style_file(folder / f"{style}.json") for style in HPS_STYLES}
    return {"available": True, "reason": None, "styles": styles}
