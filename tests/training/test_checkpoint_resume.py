"""The training loop's checkpoints on a toy model: an interrupted run resumes to the uninterrupted run's weights
and history; the layout is accelerate's files plus the loop's; a checkpoint that fails to load is skipped for the
previous one; a partial folder is ignored and cleaned; another job, another process count and the old layout are
refused; a non-finite loss stops with a message naming the step and the last good checkpoint."""

import json
import logging

import pytest
import torch

from delta_diff.training import CheckpointError, TrainingCheckpoints, TrainingRun, cosine_with_warmup, train

DATA_X = torch.randn(64, 4, generator=torch.Generator().manual_seed(1))
DATA_Y = DATA_X.sum(1, keepdim=True)


class Payload:
    """Any object: unpickling one would run its class's code."""


class Killed(Exception):
    """Stands for the process dying: raised from the metrics logger, after the step's optimizer update."""


def make_run(total_steps: int = 12, ema: bool = True, accumulate: int = 1, poison: int | None = None) -> TrainingRun:
    calls: list[list[int]] = []  # the batches its loss saw
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))

    def loss_fn(step, batch):
        calls.append(batch.tolist())
        # Both random sources a loss uses: the rank's generator, and torch's global RNG (dropout-like draws),
        # which accelerate's random_states restore.
        noise = torch.randn(len(batch), 1, generator=step.generator) * 0.01
        mask = (torch.rand(len(batch), 1) > 0.1).float()
        x = DATA_X[batch].clone()
        if poison is not None and poison in batch.tolist():
            x[:] = float("nan")
        loss = torch.nn.functional.mse_loss(step.model(x) * mask + noise, DATA_Y[batch] * mask)
        return loss, {"part": loss.item() / 2}

    run = TrainingRun(name="toy", model=model, optimizer=torch.optim.Adam(model.parameters(), 1e-2),
                       loss_fn=loss_fn, n_items=64, batch_size=16, total_steps=total_steps, seed=0, noise_seed=1,
                       lr_lambda=lambda s: cosine_with_warmup(s, total_steps, 3), gradient_accumulation=accumulate,
                       ema_decay=0.9 if ema else None)
    run.calls = calls
    return run


def weights(run: TrainingRun) -> list[torch.Tensor]:
    return [p.detach().clone() for p in run.model.parameters()]


def without_timing(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "samples_per_s"} for row in history]


def dies_at(step: int):
    def log_metrics(metrics, at):
        if at == step:
            raise Killed(f"killed at step {at}")
    return log_metrics


def train_until_killed(checkpoints, kill_at: int, total: int = 12, **settings) -> None:
    with pytest.raises(Killed):
        train(make_run(total, **settings), checkpoints, checkpoint_every=4, log_every=1,
              log_metrics=dies_at(kill_at), show_progress=False)


@pytest.fixture(scope="module")
def straight():
    run = make_run(12)
    history = train(run, log_every=1, show_progress=False)
    return weights(run), history


def test_a_run_killed_mid_way_resumes_to_the_uninterrupted_weights_and_history(tmp_path, straight):
    checkpoints = TrainingCheckpoints(tmp_path / "ckpt")
    train_until_killed(checkpoints, kill_at=7)  # after step 7's update, its checkpoint (4) is 3 steps behind
    assert checkpoints.steps() == [4]
    resumed = make_run(12)
    history = train(resumed, checkpoints, checkpoint_every=4, log_every=1, show_progress=False)
    assert len(resumed.calls) == 8  # steps 5-12: it did resume
    assert all(torch.equal(a, b) for a, b in zip(straight[0], weights(resumed)))
    assert without_timing(history) == without_timing(straight[1])  # the same losses, step by step
    assert [h["step"] for h in history] == list(range(1, 13))
    assert checkpoints.steps() == [8, 12]  # keeps the newest two


def test_the_layout_is_accelerates_files_plus_the_loops_own(tmp_path):
    checkpoints = TrainingCheckpoints(tmp_path / "ckpt", keep=3, fingerprint="job-1")
    train(make_run(8), checkpoints, checkpoint_every=4, show_progress=False)
    folder = tmp_path / "ckpt" / "step-000008"
    names = {p.name for p in folder.iterdir()}
    assert names == {"model.safetensors", "optimizer.bin", "random_states_0.pkl",  # accelerate's save_state
                     "noise_generator_0.safetensors", "trainer_state.pt", "meta.json"}  # the loop's
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["step"] == 8 and meta["fingerprint"] == "job-1" and meta["num_processes"] == 1
    assert meta["files"] == {p.name: p.stat().st_size for p in folder.iterdir() if p.name != "meta.json"}
    # Nothing of the loop's needs unpickling beyond plain containers and tensors.
    state = torch.load(folder / "trainer_state.pt", weights_only=True)
    assert set(state) == {"sampler", "lr_schedule", "history", "ema"}
    assert checkpoints.steps() == [4, 8]


@pytest.mark.parametrize("damage", ["truncate weights", "delete optimizer", "truncate random states"])
def test_a_checkpoint_that_fails_to_load_is_skipped_for_the_previous_one(tmp_path, straight, caplog, damage):
    checkpoints = TrainingCheckpoints(tmp_path / "ckpt")
    train_until_killed(checkpoints, kill_at=10)
    assert checkpoints.steps() == [4, 8]
    newest = tmp_path / "ckpt" / "step-000008"
    if damage == "truncate weights":
        data = (newest / "model.safetensors").read_bytes()
        (newest / "model.safetensors").write_bytes(data[: len(data) // 2])
    elif damage == "delete optimizer":
        (newest / "optimizer.bin").unlink()
    else:
        (newest / "random_states_0.pkl").write_bytes(b"")
    resumed = make_run(12)
    with caplog.at_level(logging.WARNING, logger="delta_diff.training.checkpoint"):
        history = train(resumed, checkpoints, checkpoint_every=4, log_every=1, show_progress=False)
    assert any("step-000008" in r.getMessage() and "skipping" in r.getMessage() for r in caplog.records)
    assert [h["step"] for h in history] == list(range(1, 13)) and len(resumed.calls) == 8  # from step 4
    assert all(torch.equal(a, b) for a, b in zip(straight[0], weights(resumed)))
    assert checkpoints.steps() == [8, 12]  # the broken step 8 was written again


def test_a_corrupt_state_file_is_never_unpickled(tmp_path, caplog):
    """A trainer_state.pt holding an arbitrary object (not tensors and containers) is refused by weights_only
    loading and the checkpoint skipped, instead of running whatever it would construct."""
    checkpoints = TrainingCheckpoints(tmp_path / "ckpt")
    train(make_run(8), checkpoints, checkpoint_every=4, show_progress=False)
    newest = tmp_path / "ckpt" / "step-000008"
    torch.save({"sampler": Payload()}, newest / "trainer_state.pt")
    meta = json.loads((newest / "meta.json").read_text())
    meta["files"]["trainer_state.pt"] = (newest / "trainer_state.pt").stat().st_size
    (newest / "meta.json").write_text(json.dumps(meta))
    with caplog.at_level(logging.WARNING, logger="delta_diff.training.checkpoint"):
        train(make_run(8), checkpoints, checkpoint_every=4, show_progress=False)
    assert any("step-000008" in r.getMessage() and "Unpickling" in r.getMessage() for r in caplog.records)


def test_when_no_checkpoint_loads_the_run_stops_naming_them(tmp_path):
    checkpoints = TrainingCheckpoints(tmp_path / "ckpt", keep=1)
    train(make_run(4), checkpoints, checkpoint_every=4, show_progress=False)
    (tmp_path / "ckpt" / "step-000004" / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match=r"no checkpoint .* step-000004 \(model.safetensors is 7 bytes"):
        train(make_run(8), checkpoints, show_progress=False)


def test_a_partial_folder_left_by_a_kill_is_ignored_and_cleaned(tmp_path, straight):
    checkpoints = TrainingCheckpoints(tmp_path / "ckpt")
    train_until_killed(checkpoints, kill_at=6)
    partial = tmp_path / "ckpt" / ".step-000008.partial"  # killed while writing step 8
    partial.mkdir()
    (partial / "model.safetensors").write_bytes(b"half")
    assert checkpoints.latest() == 4
    resumed = make_run(12)
    train(resumed, checkpoints, checkpoint_every=4, show_progress=False)
    assert len(resumed.calls) == 8 and all(torch.equal(a, b) for a, b in zip(straight[0], weights(resumed)))
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["step-000008", "step-000012"]


def test_another_job_another_process_count_and_the_old_layout_are_refused(tmp_path):
    directory = tmp_path / "ckpt"
    train(make_run(4), TrainingCheckpoints(directory, fingerprint="job-1"), checkpoint_every=4, show_progress=False)
    with pytest.raises(CheckpointError, match="another configuration"):
        train(make_run(8), TrainingCheckpoints(directory, fingerprint="job-2"), show_progress=False)

    meta_path = directory / "step-000004" / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "num_processes": 2}))
    with pytest.raises(CheckpointError, match="written by 2 process\\(es\\) and this run has 1"):
        train(make_run(8), TrainingCheckpoints(directory, fingerprint="job-1"), show_progress=False)

    old = tmp_path / "old" / "step-000200"  # what the trainers wrote before accelerate's save_state
    old.mkdir(parents=True)
    (old / "student.safetensors").write_bytes(b"")
    (old / "meta.json").write_text(json.dumps({"step": 200, "fingerprint": "job-1"}))
    with pytest.raises(CheckpointError, match="older version .* delete"):
        train(make_run(8), TrainingCheckpoints(tmp_path / "old", fingerprint="job-1"), show_progress=False)


def test_a_non_finite_loss_stops_naming_the_step_and_the_last_good_checkpoint(tmp_path):
    checkpoints = TrainingCheckpoints(tmp_path / "ckpt")
    train(make_run(4), checkpoints, checkpoint_every=4, show_progress=False)
    with pytest.raises(FloatingPointError, match=r"toy: loss became nan at step \d+; stopped without saving\. "
                                                 r"The last good checkpoint is step 4"):
        train(make_run(40, poison=3), checkpoints, checkpoint_every=100, show_progress=False)
    assert checkpoints.steps() == [4]


def test_schedules_count_optimizer_steps_under_gradient_accumulation():
    run = make_run(6, accumulate=2)
    history = train(run, log_every=1, show_progress=False)
    assert [round(h["lr"] / 1e-2, 6) for h in history] == [round(cosine_with_warmup(s, 6, 3), 6) for s in range(1, 7)]
    assert all(h["samples_per_s"] > 0 for h in history)


def test_a_snapshot_sees_the_weights_the_run_would_return_then_and_leaves_training_alone():
    """Every snapshot_every steps before the last, with the EMA's weights swapped in (and swapped back out)."""
    from delta_diff.training.loop import constant_lr

    def run_for(steps):
        run = make_run(total_steps=steps)
        run.lr_lambda = constant_lr  # the same schedule whatever the length, so step 4 of 12 is a 4-step run
        return run

    seen = {}
    snapshotted = run_for(12)
    train(snapshotted, show_progress=False, snapshot_every=4,
          on_snapshot=lambda step, model: seen.setdefault(step, [p.detach().clone() for p in model.parameters()]))
    assert sorted(seen) == [4, 8]
    four = run_for(4)
    train(four, show_progress=False)
    assert all(torch.equal(a, b) for a, b in zip(seen[4], weights(four)))  # the EMA's, as the 4-step run returns
    plain = run_for(12)
    train(plain, show_progress=False)
    assert all(torch.equal(a, b) for a, b in zip(weights(snapshotted), weights(plain)))
