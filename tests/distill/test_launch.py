"""The multi-process path on CPU: two ranks under torchrun (gloo), only rank 0 writes."""

import pytest
import torch

from delta_diff.distill import DistillConfig
from delta_diff.distill.launch import distill_in_processes
from delta_diff.world.components import sd_v1_noise_scheduler

from tests.distill.test_checkpoints import fresh_pair
from tests.distill.test_trainer import tiny_cache


@pytest.mark.slow
def test_two_processes_train_and_rank_zero_saves(tmp_path):
    parent, student = fresh_pair()
    before = [p.detach().clone() for p in student.parameters()]
    config = DistillConfig(steps=3, batch_size=4, learning_rate=1e-3, log_every=1, checkpoint_every=3)
    trained, history = distill_in_processes(parent, student, tiny_cache(), sd_v1_noise_scheduler(), config,
                                            num_processes=2, checkpoint_dir=str(tmp_path / "ckpt"))
    assert [h["step"] for h in history] == [1, 2, 3]
    assert history[0]["samples_per_s"] > 0
    assert any(not torch.equal(a, b) for a, b in zip(before, trained.parameters()))
    (job,) = (tmp_path / "ckpt").iterdir()  # one folder per job fingerprint, written once (rank 0)
    assert (job / "step-000003" / "meta.json").is_file()
