"""The image-folder format BK-SDM trains on (its LAION subsets): image files plus ``metadata.csv``.

Layout::

    root/
      metadata.csv          # columns file_name,text[,any extra columns such as attributes]
      images/00000.png      # file_name is relative to root and may include a subfolder

The synthetic world is written in the same format, so one reader serves a LAION subset and the world alike.
``read_image_folder`` checks the whole folder before returning and reports every problem it finds in one error,
so a broken download is fixed in one pass instead of one crash per row.
"""

from __future__ import annotations

import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd
import torch
from PIL import Image

METADATA_FILE = "metadata.csv"
REQUIRED_COLUMNS = ("file_name", "text")
MAX_LISTED_PROBLEMS = 10
# PNG stores these modes losslessly; anything else (CMYK, YCbCr, ...) is converted to RGB before writing.
_PNG_MODES = {"1", "L", "LA", "P", "RGB", "RGBA", "I", "I;16"}


class ImageFolderError(ValueError):
    """An image folder (or what is about to be written as one) is unusable; the message says why and how to fix it."""


@dataclass
class ImageFolderContent:
    """What a node hands over to be written as an image folder: one image per metadata row, in order."""

    images: list[Image.Image]
    metadata: pd.DataFrame


@dataclass
class ImageFolder:
    """A validated image folder: ``metadata`` has one row per image, ``file_name`` relative to ``root``."""

    root: Path
    metadata: pd.DataFrame

    @property
    def captions(self) -> list[str]:
        return [str(text) for text in self.metadata["text"]]

    def __len__(self) -> int:
        return len(self.metadata)

    def image_path(self, i: int) -> Path:
        return self.root / self.metadata["file_name"].iloc[i]

    def load_image(self, i: int) -> Image.Image:
        with Image.open(self.image_path(i)) as image:
            return image.convert("RGB")  # convert() reads the pixels, so the file can be closed here


def _csv_line(row: int) -> int:
    """The line of ``metadata.csv`` holding 0-based data row ``row`` (line 1 is the header)."""
    return row + 2


def _raise_if_problems(problems: list[str], where: Path, fix: str) -> None:
    if not problems:
        return
    listed = "\n".join(f"  - {problem}" for problem in problems[:MAX_LISTED_PROBLEMS])
    more = len(problems) - MAX_LISTED_PROBLEMS
    if more > 0:
        listed += f"\n  ... and {more} more"
    raise ImageFolderError(f"{where}: {len(problems)} problem(s):\n{listed}\nFix: {fix}")


def _first_non_utf8_line(csv_path: Path) -> str:
    for number, line in enumerate(csv_path.read_bytes().splitlines(), 1):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as error:
            return f"line {number} (byte {error.start + 1}) is not UTF-8: {line[:60]!r}"
    return "it is not UTF-8"


def _read_metadata(csv_path: Path) -> pd.DataFrame:
    try:
        metadata = pd.read_csv(csv_path, encoding="utf-8")
    except UnicodeDecodeError:
        raise ImageFolderError(
            f"{csv_path}: {_first_non_utf8_line(csv_path)}; save the file as UTF-8 (line numbers count the header "
            "as line 1)") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise ImageFolderError(
            f"{csv_path} cannot be parsed as CSV ({error}); it must be a UTF-8 CSV with a header line "
            f"including {','.join(REQUIRED_COLUMNS)}"
        ) from None
    missing = [column for column in REQUIRED_COLUMNS if column not in metadata.columns]
    if missing:
        raise ImageFolderError(
            f"{csv_path} lacks column(s) {missing}; found {list(metadata.columns)}. The header must include "
            f"{','.join(REQUIRED_COLUMNS)} (file_name relative to the folder, text the caption)"
        )
    # Re-read the two key columns as plain strings: pandas would otherwise turn a caption such as "null" or "NA"
    # into NaN, and an empty caption into NaN too (which we want to report as empty, not as a float).
    keys = pd.read_csv(csv_path, usecols=list(REQUIRED_COLUMNS), dtype=str, keep_default_na=False)
    for column in REQUIRED_COLUMNS:
        metadata[column] = keys[column]
    return metadata.reset_index(drop=True)


def _escapes_root(file_name: str) -> bool:
    path = PurePosixPath(file_name.replace("\\", "/"))
    return path.is_absolute() or ".." in path.parts


def _metadata_problems(metadata: pd.DataFrame, max_caption_chars: int | None) -> list[str]:
    problems = []
    names = metadata["file_name"]
    for row, (file_name, text) in enumerate(zip(names, metadata["text"])):
        where = f"line {_csv_line(row)} (file_name {file_name!r})"
        if not file_name.strip():
            problems.append(f"line {_csv_line(row)}: empty file_name")
        elif _escapes_root(file_name):
            problems.append(f"{where}: file_name must be relative to the folder and stay inside it")
        if not text.strip():
            problems.append(f"{where}: empty caption in column text")
        elif max_caption_chars is not None and len(text) > max_caption_chars:
            problems.append(
                f"{where}: caption has {len(text)} characters, more than max_caption_chars={max_caption_chars}"
            )
    for file_name, rows in metadata.groupby("file_name", sort=False).groups.items():
        if len(rows) > 1 and file_name.strip():
            lines = [_csv_line(row) for row in rows]
            problems.append(f"file_name {file_name!r} is listed {len(rows)} times (lines {lines}); each image once")
    return problems


def _file_problems(root: Path, metadata: pd.DataFrame, check_images: bool) -> list[str]:
    problems = []
    for row, file_name in enumerate(metadata["file_name"]):
        if not file_name.strip() or _escapes_root(file_name):
            continue  # already reported by _metadata_problems
        path = root / file_name
        where = f"line {_csv_line(row)}: {file_name!r}"
        if not path.is_file():
            problems.append(f"{where} does not exist in {root}")
            continue
        if check_images:
            try:
                with Image.open(path) as image:
                    image.verify()  # checks the file's structure without decoding every pixel
            except Exception as error:  # PIL raises many types for bad files; all mean "not a readable image"
                problems.append(f"{where} is not a readable image ({type(error).__name__}: {error})")
    return problems


def read_image_folder(
    root: str | os.PathLike, *, check_images: bool = True, max_caption_chars: int | None = None
) -> ImageFolder:
    """Read and validate an image folder; raise one ``ImageFolderError`` listing every problem found.

    ``check_images`` opens and verifies every image (slower; turn it off for a folder this code just wrote).
    ``max_caption_chars`` rejects captions longer than that many characters (``None``: no limit).
    """
    root = Path(root)
    if not root.is_dir():
        raise ImageFolderError(
            f"image folder {root} does not exist; create it (images + {METADATA_FILE}) or fix the path"
        )
    csv_path = root / METADATA_FILE
    if not csv_path.is_file():
        raise ImageFolderError(
            f"{root} has no {METADATA_FILE}; add one with a header including {','.join(REQUIRED_COLUMNS)} "
            "and one row per image"
        )
    metadata = _read_metadata(csv_path)
    if len(metadata) == 0:  # found by a new user: an empty set trained nothing and wrote prompt sets without prompts
        raise ImageFolderError(f"{csv_path} has a header but no rows; add one row per image (file_name,text)")
    problems = _metadata_problems(metadata, max_caption_chars) + _file_problems(root, metadata, check_images)
    _raise_if_problems(
        problems,
        csv_path,
        f"edit {csv_path} (line numbers count the header as line 1) or restore the missing/corrupt images, "
        "or regenerate the folder",
    )
    return ImageFolder(root=root, metadata=metadata)


def _with_file_names(metadata: pd.DataFrame, count: int, image_subdir: str) -> pd.DataFrame:
    metadata = metadata.reset_index(drop=True).copy()
    if "file_name" not in metadata.columns:
        metadata.insert(0, "file_name", [f"{image_subdir}/{i:05d}.png" for i in range(count)])
    return metadata


def _check_content(images: list[Image.Image], metadata: pd.DataFrame, root: Path) -> None:
    if "text" not in metadata.columns:
        raise ImageFolderError(
            f"cannot write {root}: metadata has no text column (found {list(metadata.columns)}); add the captions"
        )
    # Check the rows as read_image_folder will, before any pixel is written; line N = data row N-2.
    as_read = metadata[list(REQUIRED_COLUMNS)].fillna("").astype(str)
    problems = _metadata_problems(as_read, max_caption_chars=None)
    for row, (file_name, image) in enumerate(zip(metadata["file_name"], images)):
        if not isinstance(image, Image.Image):
            problems.append(f"line {_csv_line(row)}: expected a PIL image, got {type(image).__name__}")
        if not isinstance(file_name, str) or not file_name.lower().endswith(".png"):
            problems.append(
                f"line {_csv_line(row)}: file_name {file_name!r} must end in .png (images are written as PNG)"
            )
    _raise_if_problems(
        problems, root, "fix the images or the metadata (line N of metadata.csv is data row N-2) before writing"
    )


def write_image_folder(
    root: str | os.PathLike,
    images: list[Image.Image],
    metadata: pd.DataFrame,
    image_subdir: str = "images",
) -> Path:
    """Write ``images`` as PNGs named by ``metadata.file_name`` (generated as ``<image_subdir>/00000.png``, ...
    when the column is absent) plus ``metadata.csv``, and return ``root``.

    The rows are checked first as ``read_image_folder`` would; everything is written to a hidden sibling folder,
    then renamed to ``root``; an existing ``root`` is swapped out only once the new folder is complete. So
    ``root`` is always either the old complete folder or the new complete one, never half-written.
    """
    root = Path(root)
    if len(images) != len(metadata):
        raise ImageFolderError(
            f"cannot write {root}: {len(images)} images but {len(metadata)} metadata rows; give one row per image"
        )
    metadata = _with_file_names(metadata, len(images), image_subdir)
    _check_content(images, metadata, root)
    root.parent.mkdir(parents=True, exist_ok=True)
    token = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    partial = root.with_name(f".{root.name}.partial-{token}")
    previous = root.with_name(f".{root.name}.previous-{token}")
    try:
        for file_name, image in zip(metadata["file_name"], images):
            path = partial / file_name
            path.parent.mkdir(parents=True, exist_ok=True)
            if image.mode not in _PNG_MODES:
                image = image.convert("RGB")
            image.save(path, format="PNG")
        metadata.to_csv(partial / METADATA_FILE, index=False)
        if root.exists():
            os.replace(root, previous)
        os.replace(partial, root)  # atomic on one filesystem: root appears complete or not at all
    finally:
        shutil.rmtree(partial, ignore_errors=True)
        shutil.rmtree(previous, ignore_errors=True)
    return root


def resize_and_centre_crop(image: Image.Image, resolution: int) -> Image.Image:
    """BK-SDM's training transform: bilinear resize of the shorter side to ``resolution``, then a centre crop."""
    width, height = image.size
    if (width, height) == (resolution, resolution):
        return image  # the world's images are already at resolution: skip the work
    scale = resolution / min(width, height)
    new_size = (max(resolution, round(width * scale)), max(resolution, round(height * scale)))
    image = image.resize(new_size, Image.Resampling.BILINEAR)
    left = (new_size[0] - resolution) // 2
    top = (new_size[1] - resolution) // 2
    return image.crop((left, top, left + resolution, top + resolution))


class ImageCaptionDataset(torch.utils.data.Dataset):
    """Items ``{"pixel_values": float CxHxW in [-1, 1], "text": caption, "index": row}`` for diffusion training."""

    def __init__(self, folder: ImageFolder, resolution: int):
        if resolution <= 0:
            raise ValueError(f"resolution must be a positive number of pixels, got {resolution}")
        self.folder = folder
        self.resolution = resolution
        self._captions = folder.captions  # one list up front: DataFrame lookups per item are slow

    def __len__(self) -> int:
        return len(self.folder)

    def __getitem__(self, index: int) -> dict:
        image = resize_and_centre_crop(self.folder.load_image(index), self.resolution)
        pixels = torch.from_numpy(np.asarray(image, dtype=np.uint8).copy()).permute(2, 0, 1)
        return {
            "pixel_values": pixels.float().div_(127.5).sub_(1.0),  # [0, 255] -> [-1, 1] like Normalize([0.5], [0.5])
            "text": self._captions[index],
            "index": index,
        }
