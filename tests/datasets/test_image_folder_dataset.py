import time

import numpy as np
import pandas as pd
import pytest
from kedro.io import DataCatalog
from kedro.io.core import DatasetError, Version
from PIL import Image

from delta_diff.data import ImageFolder, ImageFolderContent, ImageFolderError
from delta_diff.datasets import ImageFolderDataset


def content(caption: str, n: int = 2) -> ImageFolderContent:
    images = [Image.new("RGB", (4, 4), (i * 40, 0, 0)) for i in range(n)]
    return ImageFolderContent(images=images, metadata=pd.DataFrame({"text": [f"{caption} {i}" for i in range(n)]}))


def test_versions_are_kept_and_latest_is_loaded(tmp_path):
    path = str(tmp_path / "world")
    ImageFolderDataset(filepath=path, version=Version(None, None)).save(content("first"))
    time.sleep(0.01)  # versions are millisecond timestamps
    ImageFolderDataset(filepath=path, version=Version(None, None)).save(content("second", n=3))

    dataset = ImageFolderDataset(filepath=path, version=Version(None, None))
    versions = dataset.list_versions(full_path=False)
    assert len(versions) == 2
    latest = dataset.load()
    assert isinstance(latest, ImageFolder) and latest.captions == ["second 0", "second 1", "second 2"]
    assert np.asarray(latest.load_image(1))[0, 0].tolist() == [40, 0, 0]

    pinned = ImageFolderDataset(filepath=path, version=Version(versions[-1], None)).load()
    assert pinned.captions == ["first 0", "first 1"]
    assert (tmp_path / "world" / versions[0] / "world" / "metadata.csv").is_file()


def test_catalog_entry_with_load_args(tmp_path):
    config = {
        "world": {
            "type": "delta_diff.datasets.ImageFolderDataset",
            "filepath": str(tmp_path / "world"),
            "load_args": {"check_images": False},
            "save_args": {"image_subdir": "pix"},
        }
    }
    catalog = DataCatalog.from_config(config)
    catalog.save("world", content("a"))
    (tmp_path / "world" / "pix" / "00000.png").write_bytes(b"not a png")
    assert catalog.load("world").captions == ["a 0", "a 1"]  # check_images off: the corrupt file is not opened
    checked = ImageFolderDataset(filepath=str(tmp_path / "world"))
    with pytest.raises(DatasetError, match="is not a readable image"):
        checked.load()


def test_errors(tmp_path):
    with pytest.raises(DatasetError, match="unknown load_args"):
        ImageFolderDataset(filepath=str(tmp_path / "w"), load_args={"check_image": False})
    dataset = ImageFolderDataset(filepath=str(tmp_path / "w"))
    assert not dataset.exists()
    with pytest.raises(DatasetError, match="does not exist"):
        dataset.load()
    with pytest.raises(DatasetError, match="expected an ImageFolderContent"):
        dataset.save([Image.new("RGB", (2, 2))])
    with pytest.raises(DatasetError, match="0 images but 1 metadata rows") as error:
        dataset.save(ImageFolderContent(images=[], metadata=pd.DataFrame({"text": ["orphan caption"]})))
    assert isinstance(error.value.__cause__, ImageFolderError)
    with pytest.raises(DatasetError, match="Did not find any versions"):
        ImageFolderDataset(filepath=str(tmp_path / "v"), version=Version(None, None)).load()
