import pytest
import torch

from delta_diff.training import BatchSampler, TrainingCheckpoints, TrainingRun, train
from delta_diff.training.checkpoint import CheckpointError


def make_run(total_steps: int) -> TrainingRun:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    data_x = torch.randn(64, 4, generator=torch.Generator().manual_seed(1))
    data_y = data_x.sum(1, keepdim=True)

    def loss_fn(batch):
        noise = torch.randn(len(batch), 1) * 0.01  # draws from the global RNG: resume must restore it
        return torch.nn.functional.mse_loss(model(data_x[batch]) + noise, data_y[batch]), {}

    return TrainingRun(name="toy", models={"toy": model}, optimizer=torch.optim.Adam(model.parameters(), 1e-2),
                       sampler=BatchSampler(64, 16, seed=0), loss_fn=loss_fn, total_steps=total_steps)


def weights(run: TrainingRun) -> list[torch.Tensor]:
    return [p.detach().clone() for p in run.models["toy"].parameters()]


def test_interrupted_training_resumes_to_the_same_weights(tmp_path):
    straight = make_run(12)
    train(straight, show_progress=False)

    checkpoints = TrainingCheckpoints(tmp_path / "ckpt")
    first_half = make_run(8)  # "interrupted" after step 8 (its last checkpoint)
    train(first_half, checkpoints, checkpoint_every=4, show_progress=False)
    assert checkpoints.steps() == [4, 8]

    resumed = make_run(12)
    history = train(resumed, checkpoints, checkpoint_every=4, show_progress=False)
    for a, b in zip(weights(straight), weights(resumed)):
        torch.testing.assert_close(a, b)
    assert history[-1]["step"] == 12
    assert checkpoints.steps() == [8, 12]  # keeps the newest two


def test_a_half_written_checkpoint_is_never_picked_up(tmp_path):
    checkpoints = TrainingCheckpoints(tmp_path / "ckpt")
    train(make_run(4), checkpoints, checkpoint_every=4, show_progress=False)
    (tmp_path / "ckpt" / ".step-000008.partial").mkdir()
    (tmp_path / "ckpt" / "step-000012").mkdir()  # no meta.json: not complete
    assert checkpoints.latest() == 4


def test_a_corrupt_checkpoint_names_itself(tmp_path):
    checkpoints = TrainingCheckpoints(tmp_path / "ckpt")
    train(make_run(4), checkpoints, checkpoint_every=4, show_progress=False)
    (tmp_path / "ckpt" / "step-000004" / "toy.safetensors").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="step-000004"):
        train(make_run(8), checkpoints, show_progress=False)
