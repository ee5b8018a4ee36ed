import time
from pathlib import Path

import pytest
import torch
from diffusers import UNet2DConditionModel
from kedro.io import DataCatalog
from kedro.io.core import DatasetError, Version

from delta_diff.datasets import DiffusersModelDataset

from tests.conftest import tiny_unet_config


def tiny_model(seed: int) -> UNet2DConditionModel:
    torch.manual_seed(seed)
    return UNet2DConditionModel(**tiny_unet_config(layers_per_block=1))


def first_weight(model) -> torch.Tensor:
    return model.conv_in.weight.detach()


def test_versions_are_kept_and_latest_is_loaded(tmp_path):
    path = str(tmp_path / "unet")
    first, second = tiny_model(0), tiny_model(1)
    DiffusersModelDataset(filepath=path, version=Version(None, None)).save(first)
    time.sleep(0.01)  # versions are millisecond timestamps
    DiffusersModelDataset(filepath=path, version=Version(None, None)).save(second)

    dataset = DiffusersModelDataset(filepath=path, version=Version(None, None))
    versions = dataset.list_versions(full_path=False)
    assert len(versions) == 2
    assert torch.equal(first_weight(dataset.load()), first_weight(second))

    pinned = DiffusersModelDataset(filepath=path, version=Version(versions[-1], None)).load()
    assert torch.equal(first_weight(pinned), first_weight(first))
    assert list((tmp_path / "unet" / versions[0] / "unet").glob("*.safetensors"))


def test_catalog_load_versions_pins_a_version(tmp_path):
    config = {
        "student_unet": {
            "type": "delta_diff.datasets.DiffusersModelDataset",
            "filepath": str(tmp_path / "student_unet"),
            "versioned": True,
        }
    }
    DataCatalog.from_config(config).save("student_unet", tiny_model(0))
    time.sleep(0.01)
    DataCatalog.from_config(config).save("student_unet", tiny_model(1))
    oldest = DataCatalog.from_config(config)["student_unet"].list_versions(full_path=False)[-1]
    pinned = DataCatalog.from_config(config, load_versions={"student_unet": oldest}).load("student_unet")
    assert torch.equal(first_weight(pinned), first_weight(tiny_model(0)))


def test_unversioned_resave_replaces_the_folder(tmp_path):
    dataset = DiffusersModelDataset(filepath=str(tmp_path / "unet"))
    dataset.save(tiny_model(0))
    dataset.save(tiny_model(1))
    assert torch.equal(first_weight(dataset.load()), first_weight(tiny_model(1)))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["unet"]


def test_failed_save_leaves_no_version_behind(tmp_path, monkeypatch):
    model = tiny_model(0)

    def crash(self, save_directory, **kwargs):  # writes half a folder, then dies
        Path(save_directory).mkdir(parents=True)
        (Path(save_directory) / "config.json").write_text("{}")
        raise KeyboardInterrupt("interrupted mid-save")

    monkeypatch.setattr(UNet2DConditionModel, "save_pretrained", crash)
    dataset = DiffusersModelDataset(filepath=str(tmp_path / "unet"), version=Version(None, None))
    with pytest.raises(KeyboardInterrupt):
        dataset.save(model)
    leftovers = [p for p in (tmp_path / "unet").rglob("*") if p.is_dir() and not p.name[0].isdigit()]
    assert leftovers == []
    assert not DiffusersModelDataset(filepath=str(tmp_path / "unet"), version=Version(None, None)).exists()


@pytest.mark.parametrize("as_safetensors_error", [False, True])
@pytest.mark.parametrize("versioned", [True, False])
def test_a_full_disk_is_named_and_earlier_saves_stay_loadable(tmp_path, monkeypatch, versioned, as_safetensors_error):
    import errno

    from safetensors import SafetensorError

    path = str(tmp_path / "unet")
    make = lambda: DiffusersModelDataset(filepath=path, version=Version(None, None) if versioned else None)  # noqa: E731
    make().save(tiny_model(0))
    real_save = UNet2DConditionModel.save_pretrained

    def disk_full(self, save_directory, **kwargs):
        real_save(self, save_directory, **kwargs)  # most of it written, then the disk fills up
        if as_safetensors_error:  # what a full disk really raised in the claim experiment
            raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(UNet2DConditionModel, "save_pretrained", disk_full)
    time.sleep(0.01)
    with pytest.raises(DatasetError, match="No space left on device.*earlier versions .* are untouched"):
        make().save(tiny_model(1))
    monkeypatch.undo()
    assert torch.equal(first_weight(make().load()), first_weight(tiny_model(0)))
    assert not [p for p in (tmp_path / "unet").rglob(".*")]  # no partial folder left
    assert all(any(version.iterdir()) for version in (tmp_path / "unet").iterdir() if version.is_dir())  # nor empty


def test_a_missing_version_says_how_to_produce_it(tmp_path):
    with pytest.raises(DatasetError, match="no saved version of .*kedro run --namespaces stage_<i-1>"):
        DiffusersModelDataset(filepath=str(tmp_path / "stage_1_pipeline"), version=Version(None, None)).load()


def test_folder_without_safetensors_is_refused(tmp_path):
    folder = tmp_path / "unet"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "diffusion_pytorch_model.bin").write_bytes(b"pickle")
    with pytest.raises(DatasetError, match=r"no \.safetensors weights.*diffusion_pytorch_model\.bin"):
        DiffusersModelDataset(filepath=str(folder)).load()


def test_missing_folder_and_bad_class_are_named(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        DiffusersModelDataset(filepath=str(tmp_path / "nothing")).load()
    with pytest.raises(DatasetError, match="diffusers.NoSuchModel"):
        DiffusersModelDataset(filepath=str(tmp_path / "x"), model_class="diffusers.NoSuchModel")
    with pytest.raises(DatasetError, match="use_safetensors"):
        DiffusersModelDataset(filepath=str(tmp_path / "x"), load_args={"use_safetensors": False})


def test_a_unet_folder_is_not_taken_for_a_pipeline(tmp_path):
    tiny_model(0).save_pretrained(tmp_path / "unet_only")
    dataset = DiffusersModelDataset(filepath=str(tmp_path / "unet_only"), model_class="diffusers.StableDiffusionPipeline")
    with pytest.raises(DatasetError, match="not a pipeline folder"):
        dataset.load()


KILLED_SAVE = """
import os, signal, sys
from pathlib import Path
import torch
from diffusers import UNet2DConditionModel
from kedro.io.core import Version
from delta_diff.datasets import DiffusersModelDataset
sys.path.insert(0, {root!r})
from tests.conftest import tiny_unet_config

torch.manual_seed(1)
model = UNet2DConditionModel(**tiny_unet_config(layers_per_block=1))
where = {where!r}
if where == "mid-write":
    real = UNet2DConditionModel.save_pretrained
    def dies_half_way(self, directory, **kwargs):
        Path(directory).mkdir(parents=True)
        (Path(directory) / "config.json").write_text("{{}}")
        os.kill(os.getpid(), signal.SIGKILL)
    UNet2DConditionModel.save_pretrained = dies_half_way
else:  # between the unversioned re-save's two renames: the old copy moved aside, the new one not yet in
    real_replace, calls = os.replace, []
    def dies_after_first(src, dst):
        real_replace(src, dst)
        calls.append(dst)
        if len(calls) == 1:
            os.kill(os.getpid(), signal.SIGKILL)
    os.replace = dies_after_first
DiffusersModelDataset(filepath={path!r}, version=None if where == "between-renames" else Version(None, None)).save(model)
"""


def kill_a_save(tmp_path, where):
    import subprocess
    import sys

    from tests.conftest import PROJECT_ROOT

    script = KILLED_SAVE.format(root=str(PROJECT_ROOT), where=where, path=str(tmp_path / "unet"))
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == -9, result.stderr[-2000:]  # SIGKILL, as the kill -9


def test_a_save_killed_mid_write_leaves_no_version_and_the_next_save_cleans_up(tmp_path, caplog):
    DiffusersModelDataset(filepath=str(tmp_path / "unet"), version=Version(None, None)).save(tiny_model(0))
    time.sleep(0.01)
    kill_a_save(tmp_path, "mid-write")
    orphans = [v for v in (tmp_path / "unet").iterdir() if not (v / "unet").exists()]
    assert len(orphans) == 1 and [p.name.split("-")[0] for p in orphans[0].iterdir()] == [".unet.partial"]
    dataset = DiffusersModelDataset(filepath=str(tmp_path / "unet"), version=Version(None, None))
    assert torch.equal(first_weight(dataset.load()), first_weight(tiny_model(0)))  # the killed one is not latest
    assert "removed the empty version folder" in caplog.text
    assert all((v / "unet").is_dir() for v in (tmp_path / "unet").iterdir())  # the orphan is gone


def test_an_unversioned_resave_killed_between_its_renames_gets_its_previous_copy_back(tmp_path, caplog):
    DiffusersModelDataset(filepath=str(tmp_path / "unet")).save(tiny_model(0))
    kill_a_save(tmp_path, "between-renames")
    assert not (tmp_path / "unet").exists()  # only the hidden previous copy is left...
    model = DiffusersModelDataset(filepath=str(tmp_path / "unet")).load()  # ...and the next load puts it back
    assert torch.equal(first_weight(model), first_weight(tiny_model(0)))
    assert "put the previous copy back" in caplog.text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["unet"]


def test_a_truncated_weights_file_is_named_as_truncated(tmp_path):
    dataset = DiffusersModelDataset(filepath=str(tmp_path / "unet"))
    dataset.save(tiny_model(0))
    weights = tmp_path / "unet" / "diffusion_pytorch_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1000])  # an interrupted copy
    with pytest.raises(DatasetError, match=r"diffusion_pytorch_model.safetensors is truncated \(\d+ of \d+ bytes\); "
                                           r"the model folder .* is damaged"):
        dataset.load()
