"""Distillation checkpoints: resume gives the uninterrupted result; a crash mid-write keeps the previous one;
another configuration starts over beside it; a checkpoint whose recorded job differs is refused."""

import pytest
import torch
from diffusers import UNet2DConditionModel

from delta_diff.architecture import ArchitectureSpace, preset_genome, prune
from delta_diff.distill import DistillConfig, distill_student
from delta_diff.sd import DevicePolicy
from delta_diff.training import TrainingCheckpoints
from delta_diff.training.checkpoint import CheckpointError
from delta_diff.world.components import sd_v1_noise_scheduler

from tests.conftest import tiny_unet_config
from tests.distill.test_trainer import tiny_cache


def fresh_pair():
    torch.manual_seed(0)
    parent = UNet2DConditionModel(**tiny_unet_config()).eval()
    space = ArchitectureSpace(dict(parent.config))
    return parent, prune(parent, preset_genome(space, "bk-sdm-small"), space)


def run(steps, checkpoint_dir=None, **overrides):
    parent, student = fresh_pair()
    settings = dict(steps=steps, batch_size=8, learning_rate=1e-3, checkpoint_every=3, log_every=3)
    config = DistillConfig(**{**settings, **overrides})
    student, history = distill_student(parent, student, tiny_cache(), sd_v1_noise_scheduler(), config,
                                       checkpoint_dir=checkpoint_dir, show_progress=False)
    return student, history


def test_resume_continues_at_the_right_step_with_the_same_result(tmp_path):
    straight, _ = run(6)
    run(3, checkpoint_dir=str(tmp_path))  # "killed" after its step-3 checkpoint
    resumed, history = run(6, checkpoint_dir=str(tmp_path))
    assert [h["step"] for h in history] == [3, 6]
    for a, b in zip(straight.parameters(), resumed.parameters()):
        torch.testing.assert_close(a, b)


def test_a_crash_while_writing_a_checkpoint_keeps_the_previous_one(tmp_path, monkeypatch):
    run(3, checkpoint_dir=str(tmp_path))
    import delta_diff.training.checkpoint as checkpoint_module

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint_module, "save_file", crash)
    with pytest.raises(OSError, match="disk full"):
        run(6, checkpoint_dir=str(tmp_path))
    monkeypatch.undo()
    (job,) = tmp_path.iterdir()
    checkpoints = TrainingCheckpoints(job)
    assert checkpoints.steps() == [3] and not [p for p in job.iterdir() if p.name.startswith(".")]
    _, history = run(6, checkpoint_dir=str(tmp_path))  # and it still resumes from it
    assert [h["step"] for h in history] == [3, 6]


def test_another_configuration_starts_over_and_leaves_the_first_jobs_checkpoints(tmp_path):
    run(3, checkpoint_dir=str(tmp_path))
    (first,) = tmp_path.iterdir()
    changed, _ = run(6, checkpoint_dir=str(tmp_path), learning_rate=1e-2)
    from_scratch, _ = run(6, learning_rate=1e-2)
    for a, b in zip(from_scratch.parameters(), changed.parameters()):
        torch.testing.assert_close(a, b)
    assert len(list(tmp_path.iterdir())) == 2 and TrainingCheckpoints(first).steps() == [3]


def test_a_checkpoint_whose_recorded_job_differs_is_refused(tmp_path):
    import shutil

    run(3, checkpoint_dir=str(tmp_path))
    (first,) = tmp_path.iterdir()
    run(3, checkpoint_dir=str(tmp_path / "other"), learning_rate=1e-2)
    (second,) = (tmp_path / "other").iterdir()
    shutil.rmtree(second)
    shutil.copytree(first, second)  # someone copied another job's checkpoint into this job's folder
    with pytest.raises(CheckpointError, match="another configuration"):
        run(6, checkpoint_dir=str(tmp_path / "other"), learning_rate=1e-2)


def test_the_job_fingerprint_ignores_where_a_model_was_loaded_from(tmp_path):
    """A stage's student is loaded from a new catalog version on every run; its resume must not depend on that."""
    from delta_diff.distill.trainer import fingerprint

    parent, student = fresh_pair()
    student.save_pretrained(tmp_path / "v1")
    student.save_pretrained(tmp_path / "v2")
    first = UNet2DConditionModel.from_pretrained(tmp_path / "v1")
    second = UNet2DConditionModel.from_pretrained(tmp_path / "v2")
    assert first.config["_name_or_path"] != second.config["_name_or_path"]
    config = DistillConfig()
    assert fingerprint(config, parent, first, DevicePolicy()) == fingerprint(config, parent, second, DevicePolicy())
    assert fingerprint(config, parent, first) != fingerprint(config.model_copy(update={"learning_rate": 1.0}), parent, first)
