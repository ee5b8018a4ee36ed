"""The teacher's U-Net and VAE and the world scorer on the one loop: a run killed mid-way and resumed ends with
exactly the weights of the uninterrupted run (small models from configs, tiny random data, CPU)."""

import pytest
import torch

from delta_diff.scoring.train_world_scorer import ScorerTrainingConfig, train_attribute_classifier
from delta_diff.training import CheckpointError
from delta_diff.world.components import UNetConfig, VAEConfig
from delta_diff.world.train_unet import UNetTrainingConfig, train_text_conditional_unet
from delta_diff.world.train_vae import VAETrainingConfig, train_vae

DATA = torch.Generator().manual_seed(7)
LATENTS = torch.randn(16, 4, 8, 8, generator=DATA)
TEXT = torch.randn(16, 5, 16, generator=DATA)
PIXELS = torch.rand(16, 3, 16, 16, generator=DATA) * 2 - 1
LABELS = {"shape": torch.randint(0, 3, (16,), generator=DATA), "colour": torch.randint(0, 4, (16,), generator=DATA)}
VOCABULARY = {"shape": ["circle", "square", "triangle"], "colour": ["red", "green", "blue", "yellow"]}
TINY_UNET = UNetConfig(block_out_channels=[8, 8, 8, 8], layers_per_block=1, attention_head_dim=4, norm_num_groups=4)
TINY_VAE = VAEConfig(block_out_channels=[8, 8], norm_num_groups=4)


class Killed(Exception):
    pass


def dies_at(step: int):
    def log_metrics(metrics, at):
        if at == step:
            raise Killed(f"killed after step {at}")
    return log_metrics


def unet(config, checkpoint_dir=None, log_metrics=None, latents=LATENTS):
    return train_text_conditional_unet(latents, torch.full_like(latents, 0.1), TEXT, torch.zeros(1, 5, 16),
                                       TINY_UNET, config, checkpoint_dir, log_metrics)


def vae(config, checkpoint_dir=None, log_metrics=None):
    return train_vae(PIXELS, TINY_VAE, config, checkpoint_dir, log_metrics)


def scorer(config, checkpoint_dir=None, log_metrics=None):
    return train_attribute_classifier(PIXELS, PIXELS.flip(-1), LABELS, VOCABULARY, config, log_metrics,
                                      checkpoint_dir=checkpoint_dir)


CASES = {
    # steps 6, checkpoints at 2 and 4, killed after step 5: the resumed run replays step 5
    "unet": (unet, UNetTrainingConfig(steps=6, batch_size=4, warmup_steps=2, ema_decay=0.9, checkpoint_every=2,
                                      log_every=1)),
    "vae": (vae, VAETrainingConfig(steps=6, batch_size=4, warmup_steps=2, checkpoint_every=2, log_every=1)),
    "scorer": (scorer, ScorerTrainingConfig(steps=6, batch_size=8, width=8, checkpoint_every=2, log_every=1)),
}


@pytest.mark.parametrize("trainer", list(CASES))
def test_a_killed_and_resumed_training_ends_with_the_uninterrupted_weights(tmp_path, trainer):
    fit, config = CASES[trainer]
    straight, straight_history = fit(config)
    with pytest.raises(Killed):
        fit(config, str(tmp_path / "ckpt"), dies_at(5))
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["step-000002", "step-000004"]
    resumed, history = fit(config, str(tmp_path / "ckpt"))
    assert [h["step"] for h in history] == list(range(1, 7))
    assert [h["loss"] for h in history] == [h["loss"] for h in straight_history]
    assert all(torch.equal(a, b) for a, b in zip(straight.state_dict().values(), resumed.state_dict().values()))
    if trainer == "vae":
        assert resumed.config.scaling_factor == straight.config.scaling_factor


def test_more_steps_continue_a_finished_teacher_run_but_other_settings_or_data_are_refused(tmp_path):
    _, config = CASES["unet"]
    unet(config.model_copy(update={"steps": 2}), str(tmp_path / "ckpt"))
    _, history = unet(config.model_copy(update={"steps": 3}), str(tmp_path / "ckpt"))
    assert [h["step"] for h in history] == [1, 2, 3]
    with pytest.raises(CheckpointError, match="another configuration"):
        unet(config.model_copy(update={"steps": 2, "learning_rate": 0.5}), str(tmp_path / "ckpt"))
    with pytest.raises(CheckpointError, match="another configuration"):  # other training data
        unet(config.model_copy(update={"steps": 2}), str(tmp_path / "ckpt"), latents=LATENTS + 1)


def test_a_non_finite_teacher_loss_stops_naming_the_step():
    _, config = CASES["unet"]
    with pytest.raises(FloatingPointError, match=r"unet: loss became nan at step 1; stopped without saving"):
        unet(config, latents=torch.full_like(LATENTS, float("nan")))


def test_a_teacher_run_named_by_its_sources_resumes_on_latents_with_other_last_bits_but_not_on_other_sources(
        tmp_path):
    # Another machine's VAE kernels give latents that differ in their last bits; the images and weights they were
    # computed from are the same, and they name the job.
    _, config = CASES["unet"]
    pixels = torch.arange(48, dtype=torch.float32).reshape(1, 3, 4, 4)

    def fit(latents, vae_digest, steps):
        return train_text_conditional_unet(latents, torch.full_like(latents, 0.1), TEXT, torch.zeros(1, 5, 16),
                                           TINY_UNET, config.model_copy(update={"steps": steps}),
                                           str(tmp_path / "ckpt"), made_from=({"vae": vae_digest}, (pixels,)))

    fit(LATENTS, "vae-a", 2)
    other_machine = LATENTS * (1 + 1e-7) + 1e-9
    assert not torch.equal(other_machine, LATENTS)
    _, history = fit(other_machine, "vae-a", 3)
    assert [h["step"] for h in history] == [1, 2, 3]
    with pytest.raises(CheckpointError, match="another configuration"):
        fit(LATENTS, "vae-b", 4)
    with pytest.raises(CheckpointError, match="another configuration"):  # without its sources: named by latents
        unet(config.model_copy(update={"steps": 4}), str(tmp_path / "ckpt"))
