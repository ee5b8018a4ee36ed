import time

import pytest
import torch
from kedro.io.core import DatasetError, Version

from delta_diff.datasets import SafetensorsDataset


def test_versions_are_kept_and_latest_is_loaded(tmp_path):
    path = str(tmp_path / "latents.safetensors")
    first = {"latents": torch.arange(6.0).reshape(2, 3), "ids": torch.tensor([1, 2], dtype=torch.int64)}
    second = {"latents": torch.zeros(4, 3, dtype=torch.float16)}
    SafetensorsDataset(filepath=path, version=Version(None, None)).save(first)
    time.sleep(0.01)  # versions are millisecond timestamps
    SafetensorsDataset(filepath=path, version=Version(None, None)).save(second)

    dataset = SafetensorsDataset(filepath=path, version=Version(None, None))
    versions = dataset.list_versions(full_path=False)
    assert len(versions) == 2
    latest = dataset.load()
    assert list(latest) == ["latents"] and torch.equal(latest["latents"], second["latents"])

    pinned = SafetensorsDataset(filepath=path, version=Version(versions[-1], None)).load()
    assert torch.equal(pinned["latents"], first["latents"]) and torch.equal(pinned["ids"], first["ids"])
    hidden = [p for p in (tmp_path / "latents.safetensors").rglob(".*")]
    assert hidden == []


def test_unversioned_resave_views_and_shared_storage(tmp_path):
    dataset = SafetensorsDataset(filepath=str(tmp_path / "t.safetensors"))
    base = torch.randn(4, 4, requires_grad=True)
    dataset.save({"t": base.t(), "same": base, "also_same": base})  # a non-contiguous view and shared storage
    loaded = dataset.load()
    assert torch.equal(loaded["t"], base.detach().t()) and torch.equal(loaded["also_same"], base.detach())
    dataset.save({"x": torch.ones(1)})
    assert list(dataset.load()) == ["x"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.safetensors"]


def test_errors(tmp_path):
    dataset = SafetensorsDataset(filepath=str(tmp_path / "t.safetensors"))
    assert not dataset.exists()
    with pytest.raises(DatasetError, match="does not exist"):
        dataset.load()
    (tmp_path / "t.safetensors").write_bytes(b"\x00" * 3 + b"pickle, not safetensors")
    with pytest.raises(DatasetError, match="not a readable safetensors file"):
        dataset.load()
    with pytest.raises(DatasetError, match="expected a dict"):
        dataset.save([torch.ones(1)])
    with pytest.raises(DatasetError, match="'b': ndarray"):
        import numpy as np

        dataset.save({"a": torch.ones(1), "b": np.ones(1)})
    with pytest.raises(DatasetError, match="unknown load_args"):
        SafetensorsDataset(filepath=str(tmp_path / "x.safetensors"), load_args={"map_location": "cpu"})
