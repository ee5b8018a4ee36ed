import time
from pathlib import Path

import pytest
import torch
from diffusers import UNet2DConditionModel
from kedro.io.core import DatasetError, Version

from delta_diff.datasets import ModelSnapshotsDataset

from tests.conftest import tiny_unet_config


def tiny_model(seed: int) -> UNet2DConditionModel:
    torch.manual_seed(seed)
    return UNet2DConditionModel(**tiny_unet_config(layers_per_block=1))


def dataset(tmp_path) -> ModelSnapshotsDataset:
    return ModelSnapshotsDataset(filepath=str(tmp_path / "curve_unets"), version=Version(None, None))


def test_models_and_folders_are_saved_as_one_version_and_loaded_lazily(tmp_path):
    folder = tmp_path / "trainer_snapshot"
    tiny_model(1).save_pretrained(str(folder))
    dataset(tmp_path).save({"step_000002": tiny_model(0), "step_000004": folder})
    loaders = dataset(tmp_path).load()
    assert list(loaders) == ["step_000002", "step_000004"] and all(callable(f) for f in loaders.values())
    assert torch.equal(loaders["step_000004"]().conv_in.weight, tiny_model(1).conv_in.weight)
    assert folder.is_dir()  # copied: the trainer's own snapshot stays where it was
    time.sleep(0.01)
    dataset(tmp_path).save({})  # an empty set is a value too, a version of its own
    assert dataset(tmp_path).load() == {} and len(list((tmp_path / "curve_unets").iterdir())) == 2


def test_a_failed_save_leaves_no_version(tmp_path, monkeypatch):
    def crash(self, save_directory, **kwargs):
        Path(save_directory).mkdir(parents=True)
        raise KeyboardInterrupt("interrupted mid-save")

    monkeypatch.setattr(UNet2DConditionModel, "save_pretrained", crash)
    with pytest.raises(KeyboardInterrupt):
        dataset(tmp_path).save({"step_000002": tiny_model(0)})
    assert not dataset(tmp_path).exists() and not any((tmp_path / "curve_unets").rglob("*"))


def test_bad_values_are_named(tmp_path):
    with pytest.raises(DatasetError, match="'step_1' is a int"):
        dataset(tmp_path).save({"step_1": 3})
    with pytest.raises(DatasetError, match="not plain folder names"):
        dataset(tmp_path).save({"../up": tiny_model(0)})
    with pytest.raises(DatasetError, match="does not exist"):
        dataset(tmp_path).save({"step_1": tmp_path / "nowhere"})
    with pytest.raises(DatasetError, match="no saved version"):
        dataset(tmp_path).load()
