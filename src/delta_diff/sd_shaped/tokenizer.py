"""CLIP's real BPE tokenizer, converted offline from open_clip's ``bpe_simple_vocab_16e6.txt.gz``.

The gzip file (shipped inside the hpsv2x package, under ``hpsv2/src/open_clip/``) holds one header line and then
BPE merges, most frequent first. CLIP keeps the first 49,152 - 256 - 2 = 48,894 of them, so that the vocabulary
(256 byte characters, the same 256 ending a word, one token per merge, two special tokens) has 49,408 entries.
The ids follow from the order alone: the byte characters in byte-to-unicode order (0..255), the same with
``</w>`` (256..511), the joined merges (512..49405), ``<|startoftext|>`` (49406) and ``<|endoftext|>`` (49407).

Written here from that rule (DESIGN.md §7) into the two files a ``CLIPTokenizer`` is made from, ``vocab.json``
and ``merges.txt`` (``#version: 0.2`` and then the merges, as Hugging Face's CLIP tokenizers ship them).
"""

from __future__ import annotations

import gzip
import importlib.resources
import json
from pathlib import Path

from .errors import SdShapedError

CONTEXT_LENGTH = 77
VOCAB_SIZE = 49_408
N_MERGES = 49_152 - 256 - 2
START_OF_TEXT, END_OF_TEXT = "<|startoftext|>", "<|endoftext|>"
END_OF_WORD = "</w>"
# SD v1 pads with <|endoftext|>; SD 2.x's tokenizer pads with "!" (id 0), as open_clip pads with zeros.
PAD_TOKENS = {"sd-v1-4": END_OF_TEXT, "sd-v2-1-base": "!"}
BPE_RESOURCE = ("hpsv2", "src/open_clip/bpe_simple_vocab_16e6.txt.gz")


def byte_characters() -> list[str]:
    """The 256 characters that stand for the bytes 0..255 in byte-level BPE, in vocabulary order.

    Bytes that are printable Latin-1 (``!``..``~``, ``¡``..``¬``, ``®``..``ÿ``) stand for themselves and come
    first, in byte order; the other 68 bytes (controls, space, soft hyphen...) follow in byte order, written as
    the code points 256, 257, ... so that no token contains whitespace or control characters.
    """
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    n_other = 256 - len(printable)
    return [chr(b) for b in printable] + [chr(256 + i) for i in range(n_other)]


def default_bpe_path() -> Path:
    """open_clip's BPE file inside the installed hpsv2x package (hpsv2 1.2.0's own wheel lacks it)."""
    try:
        path = Path(str(importlib.resources.files(BPE_RESOURCE[0]).joinpath(BPE_RESOURCE[1])))
    except ModuleNotFoundError:
        raise SdShapedError("the CLIP tokenizer is converted from hpsv2x's open_clip BPE file: pip install "
                            "--no-deps hpsv2x==1.2.0 (see README, HPS v2)") from None
    if not path.is_file():
        raise SdShapedError(f"{path} is missing: install hpsv2x (which ships it), not hpsv2")
    return path


def read_merges(bpe_path: str | Path | None = None) -> list[str]:
    """The 48,894 merges CLIP uses, each as ``"left right"``."""
    bpe_path = Path(bpe_path) if bpe_path is not None else default_bpe_path()
    with gzip.open(bpe_path, "rt", encoding="utf-8") as handle:
        lines = handle.read().split("\n")
    merges = lines[1:1 + N_MERGES]  # line 0 is the header ("#version: ...")
    if len(merges) != N_MERGES or any(len(merge.split()) != 2 for merge in merges):
        raise SdShapedError(f"{bpe_path} does not hold {N_MERGES} BPE merges after its header line")
    return merges


def clip_vocab(merges: list[str]) -> dict[str, int]:
    """Token -> id for CLIP's vocabulary built from its merges."""
    characters = byte_characters()
    tokens = characters + [c + END_OF_WORD for c in characters] + ["".join(m.split()) for m in merges]
    tokens += [START_OF_TEXT, END_OF_TEXT]
    vocab = {token: i for i, token in enumerate(tokens)}
    if len(vocab) != VOCAB_SIZE:  # a duplicate token would silently shift every later id
        raise SdShapedError(f"the BPE merges give {len(vocab)} distinct tokens, expected {VOCAB_SIZE}")
    return vocab


def write_vocab_files(folder: str | Path, bpe_path: str | Path | None = None) -> tuple[Path, Path]:
    """Write ``vocab.json`` and ``merges.txt`` into ``folder``; returns their paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    merges = read_merges(bpe_path)
    vocab_file, merges_file = folder / "vocab.json", folder / "merges.txt"
    vocab_file.write_text(json.dumps(clip_vocab(merges), ensure_ascii=False), encoding="utf-8")
    merges_file.write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    return vocab_file, merges_file


def clip_tokenizer(variant: str, bpe_path: str | Path | None = None):
    """The variant's ``CLIPTokenizer`` (77 tokens, its pad token), made from freshly written vocab files.

    transformers 5 builds a ``CLIPTokenizer`` from ``vocab.json`` + ``merges.txt`` through ``from_pretrained`` on
    their folder (its constructor takes the vocabulary itself, not file names).
    """
    import tempfile

    from transformers import CLIPTokenizer

    if variant not in PAD_TOKENS:
        raise SdShapedError(f"unknown variant {variant!r}; choose one of {', '.join(sorted(PAD_TOKENS))}")
    with tempfile.TemporaryDirectory() as folder:
        write_vocab_files(folder, bpe_path)
        return CLIPTokenizer.from_pretrained(folder, model_max_length=CONTEXT_LENGTH, pad_token=PAD_TOKENS[variant])
