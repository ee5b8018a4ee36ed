import os

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from delta_diff.data import (
    ImageCaptionDataset,
    ImageFolderError,
    read_image_folder,
    write_image_folder,
)
from delta_diff.data import image_folder as image_folder_module


def tiny_images(n: int, size=(6, 4)) -> list[Image.Image]:
    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)) for _ in range(n)]


def tiny_metadata(n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "file_name": [f"images/{i:05d}.png" for i in range(n)],
            "text": [f"a red circle number {i}" for i in range(n)],
            "shape": ["circle"] * n,
            "size": list(range(n)),
        }
    )


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "world"
    write_image_folder(root, tiny_images(3), tiny_metadata(3))
    return root


def rewrite_metadata(root, edit) -> None:
    metadata = pd.read_csv(root / "metadata.csv", keep_default_na=False)
    edit(metadata)
    metadata.to_csv(root / "metadata.csv", index=False)


def test_round_trip_keeps_captions_extra_columns_and_pixels(tmp_path):
    images, metadata = tiny_images(3), tiny_metadata(3)
    metadata.loc[1, "text"] = "null"  # a caption pandas would read as NaN by default
    folder = read_image_folder(write_image_folder(tmp_path / "world", images, metadata))
    assert len(folder) == 3
    assert folder.captions == list(metadata["text"])
    assert list(folder.metadata.columns) == ["file_name", "text", "shape", "size"]
    assert list(folder.metadata["size"]) == [0, 1, 2] and list(folder.metadata["shape"]) == ["circle"] * 3
    assert folder.image_path(2) == tmp_path / "world" / "images" / "00002.png"
    for i, image in enumerate(images):
        loaded = folder.load_image(i)
        assert loaded.mode == "RGB"
        assert np.array_equal(np.asarray(loaded), np.asarray(image))


def test_missing_file_name_column_is_generated(tmp_path):
    metadata = pd.DataFrame({"text": ["one", "two"]})
    folder = read_image_folder(write_image_folder(tmp_path / "f", tiny_images(2), metadata, image_subdir="pix"))
    assert list(folder.metadata["file_name"]) == ["pix/00000.png", "pix/00001.png"]


def test_rewrite_replaces_the_folder(folder):
    write_image_folder(folder, tiny_images(1), tiny_metadata(1))
    assert len(read_image_folder(folder)) == 1
    assert sorted(p.name for p in folder.parent.iterdir()) == ["world"]


def test_missing_folder(tmp_path):
    with pytest.raises(ImageFolderError, match="does not exist"):
        read_image_folder(tmp_path / "nowhere")


def test_missing_metadata(folder):
    (folder / "metadata.csv").unlink()
    with pytest.raises(ImageFolderError, match="has no metadata.csv"):
        read_image_folder(folder)


def test_missing_columns_lists_the_found_ones(folder):
    rewrite_metadata(folder, lambda m: m.rename(columns={"text": "caption"}, inplace=True))
    with pytest.raises(ImageFolderError, match=r"lacks column\(s\) \['text'\].*'caption'"):
        read_image_folder(folder)


def test_empty_caption_names_line_and_file(folder):
    rewrite_metadata(folder, lambda m: m.__setitem__("text", ["ok", "  ", "ok"]))
    with pytest.raises(ImageFolderError) as error:
        read_image_folder(folder)
    assert "line 3 (file_name 'images/00001.png'): empty caption" in str(error.value)


def test_all_problems_are_reported_at_once(folder):
    def break_everything(metadata):
        metadata["text"] = ["", "", "ok"]
        metadata.loc[2, "file_name"] = "images/absent.png"

    rewrite_metadata(folder, break_everything)
    message = str(pytest.raises(ImageFolderError, read_image_folder, folder).value)
    assert "3 problem(s)" in message and "line 2" in message and "absent.png" in message and "Fix:" in message


def test_missing_image(folder):
    (folder / "images" / "00001.png").unlink()
    with pytest.raises(ImageFolderError, match=r"line 3: 'images/00001.png' does not exist"):
        read_image_folder(folder)


def test_corrupt_image(folder):
    (folder / "images" / "00002.png").write_bytes(b"definitely not a png")
    with pytest.raises(ImageFolderError, match=r"line 4: 'images/00002.png' is not a readable image"):
        read_image_folder(folder)
    assert len(read_image_folder(folder, check_images=False)) == 3  # the check can be skipped


def test_duplicate_file_name(folder):
    rewrite_metadata(folder, lambda m: m.__setitem__("file_name", ["images/00000.png"] * 2 + ["images/00002.png"]))
    with pytest.raises(ImageFolderError, match=r"'images/00000.png' is listed 2 times \(lines \[2, 3\]\)"):
        read_image_folder(folder)


def test_file_name_outside_folder(folder):
    rewrite_metadata(folder, lambda m: m.__setitem__("file_name", ["../x.png", "images/00001.png", "/abs.png"]))
    message = str(pytest.raises(ImageFolderError, read_image_folder, folder).value)
    assert message.count("stay inside it") == 2


def test_max_caption_chars(folder):
    with pytest.raises(ImageFolderError, match="more than max_caption_chars=5"):
        read_image_folder(folder, max_caption_chars=5)


def test_writer_rejects_bad_content_before_writing(tmp_path):
    with pytest.raises(ImageFolderError, match="2 images but 3 metadata rows"):
        write_image_folder(tmp_path / "f", tiny_images(2), tiny_metadata(3))
    metadata = tiny_metadata(2)
    metadata.loc[0, "text"] = ""
    with pytest.raises(ImageFolderError, match="empty caption"):
        write_image_folder(tmp_path / "f", tiny_images(2), metadata)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("existing", [False, True])
def test_interrupted_write_leaves_nothing_half_written(tmp_path, monkeypatch, existing):
    root = tmp_path / "world"
    if existing:
        write_image_folder(root, tiny_images(3), tiny_metadata(3))
    calls = []
    original_save = Image.Image.save

    def crash_on_second_image(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt("interrupted mid-write")
        return original_save(self, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "save", crash_on_second_image)
    with pytest.raises(KeyboardInterrupt):
        write_image_folder(root, tiny_images(2), tiny_metadata(2))
    assert sorted(p.name for p in tmp_path.iterdir()) == (["world"] if existing else [])
    if existing:
        monkeypatch.undo()
        assert len(read_image_folder(root)) == 3  # the old complete folder is untouched


def test_interrupted_swap_leaves_no_hidden_folders(tmp_path, monkeypatch):
    root = tmp_path / "world"

    def crash(src, dst):
        raise OSError("disk vanished")

    monkeypatch.setattr(image_folder_module.os, "replace", crash)
    with pytest.raises(OSError):
        write_image_folder(root, tiny_images(1), tiny_metadata(1))
    assert os.listdir(tmp_path) == []


def test_dataset_items(tmp_path):
    images = tiny_images(2, size=(12, 8)) + [Image.new("RGB", (4, 4), (255, 0, 0))]
    metadata = tiny_metadata(3)
    dataset = ImageCaptionDataset(read_image_folder(write_image_folder(tmp_path / "f", images, metadata)), 4)
    assert len(dataset) == 3
    item = dataset[0]
    assert item["pixel_values"].shape == (3, 4, 4) and item["pixel_values"].dtype == torch.float32
    assert -1.0 <= item["pixel_values"].min() and item["pixel_values"].max() <= 1.0
    assert item["text"] == "a red circle number 0" and item["index"] == 0
    red = dataset[2]["pixel_values"]
    assert torch.equal(red[0], torch.ones(4, 4)) and torch.equal(red[1], -torch.ones(4, 4))
    batch = next(iter(torch.utils.data.DataLoader(dataset, batch_size=3)))
    assert batch["pixel_values"].shape == (3, 3, 4, 4) and batch["text"][1] == "a red circle number 1"


def test_a_non_utf8_caption_names_its_line(tmp_path):
    folder = tmp_path / "latin1"
    (folder / "images").mkdir(parents=True)
    (folder / "metadata.csv").write_bytes("file_name,text\nimages/0.png,a red circle\nimages/1.png,a café\n".encode("latin-1"))
    with pytest.raises(ImageFolderError, match=r"line 3 \(byte 19\) is not UTF-8: b'images/1.png,a caf\\xe9'; save "
                                               r"the file as UTF-8"):
        read_image_folder(folder)
