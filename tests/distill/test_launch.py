"""The multi-process path on CPU: two ranks under torchrun (gloo), only rank 0 writes."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from delta_diff.distill import DistillConfig
from delta_diff.distill.launch import distill_in_processes, write_job
from delta_diff.sd import DevicePolicy
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


@pytest.mark.slow
def test_two_ranks_resume_each_its_own_stream_bit_exactly(tmp_path):
    """Interrupted after 2 of 4 steps and resumed, two gloo ranks end with exactly the weights of an uninterrupted
    4-step run: each rank restored its own noise and RNG state (restoring rank 0's on both would change rank 1's
    noise and so the averaged gradients), and the global batch stream continued where it stopped."""
    config = DistillConfig(steps=4, batch_size=4, learning_rate=1e-3, log_every=1, checkpoint_every=2, warmup_steps=3)
    parent, student = fresh_pair()
    whole, whole_history = distill_in_processes(parent, student, tiny_cache(), sd_v1_noise_scheduler(), config,
                                                num_processes=2, checkpoint_dir=str(tmp_path / "whole"))
    first = config.model_copy(update={"steps": 2})
    distill_in_processes(parent, student, tiny_cache(), sd_v1_noise_scheduler(), first, num_processes=2,
                         checkpoint_dir=str(tmp_path / "split"))
    resumed, history = distill_in_processes(parent, student, tiny_cache(), sd_v1_noise_scheduler(), config,
                                            num_processes=2, checkpoint_dir=str(tmp_path / "split"))
    assert [h["step"] for h in history] == [1, 2, 3, 4]
    assert all(torch.equal(a, b) for a, b in zip(whole.state_dict().values(), resumed.state_dict().values()))
    # warm-up counts optimizer steps, once per step whatever the number of ranks: lr after step k is min(1, (k+1)/3)
    assert [round(h["lr"] / 1e-3, 4) for h in whole_history] == [0.6667, 1.0, 1.0, 1.0]


def _batches_per_rank(work_dir: Path, config: DistillConfig, checkpoint_dir: Path) -> list[list[list[int]]]:
    """Two ranks distil under torchrun; returns, per rank, the cache items of each micro-batch it trained on."""
    parent, student = fresh_pair()
    work_dir.mkdir()
    write_job(work_dir, parent, student, tiny_cache(), sd_v1_noise_scheduler(), config, str(checkpoint_dir),
              "distill", DevicePolicy(device="cpu"))
    script = Path(__file__).with_name("record_rank_batches.py")
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           str(script), str(work_dir)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return [json.loads((work_dir / f"batches-{rank}.json").read_text()) for rank in (0, 1)]


@pytest.mark.slow
def test_each_rank_trains_its_own_shard_and_continues_its_own_batches_after_a_resume(tmp_path):
    """Per rank, the batches seen before an interruption and after the resume are the uninterrupted run's; each
    global batch is split between the ranks, and over an epoch (32 items, 2 ranks x 4 x 2 micro-batches a step,
    2 steps) together they train on every item once."""
    config = DistillConfig(steps=4, batch_size=4, gradient_accumulation=2, learning_rate=1e-3, log_every=1,
                           checkpoint_every=2)
    whole = _batches_per_rank(tmp_path / "whole", config, tmp_path / "ckpt-whole")
    before = _batches_per_rank(tmp_path / "before", config.model_copy(update={"steps": 2}), tmp_path / "ckpt")
    after = _batches_per_rank(tmp_path / "after", config, tmp_path / "ckpt")
    for rank in (0, 1):
        assert len(before[rank]) == 4 and len(after[rank]) == 4  # 2 steps x 2 micro-batches each
        assert before[rank] + after[rank] == whole[rank]
    for shard_0, shard_1 in zip(whole[0], whole[1]):
        assert len(shard_0) == len(shard_1) == 4 and not set(shard_0) & set(shard_1)
    first_epoch = [i for rank in (0, 1) for shard in whole[rank][:4] for i in shard]
    assert sorted(first_epoch) == list(range(32))


def test_the_ranks_shards_partition_each_global_batch():
    from delta_diff.training import BatchSampler

    world, batch = 2, 4
    sampler = BatchSampler(20, batch * world, seed=0)
    for _ in range(5):  # across an epoch boundary
        global_batch = sampler.next()
        shards = [global_batch[r * batch: (r + 1) * batch] for r in range(world)]
        assert sorted(torch.cat(shards).tolist()) == sorted(global_batch.tolist()) and len(set(global_batch.tolist())) == 8


@pytest.mark.slow
def test_a_non_finite_loss_on_one_rank_stops_both_with_one_message(tmp_path):
    """One poisoned item: only the rank whose shard holds it sees a NaN loss; both ranks stop (none waits forever
    in the next all-reduce) and the error names the rank."""
    cache = tiny_cache()
    cache["latent_mean"][5] = float("nan")  # one item of 32: within the first epoch (4 steps of 2 x 4)
    parent, student = fresh_pair()
    config = DistillConfig(steps=4, batch_size=4, log_every=1, checkpoint_every=100)
    with pytest.raises(RuntimeError, match=r"loss became nan on rank [01] of 2 at step [1-4]; stopped without saving"):
        distill_in_processes(parent, student, cache, sd_v1_noise_scheduler(), config, num_processes=2,
                             checkpoint_dir=str(tmp_path / "ckpt"))
