import copy

import pytest
import torch

from delta_diff.architecture import ArchitectureSpace, preset_genome, prune
from delta_diff.distill import DistillConfig, collect_outputs, distill_student, stage_pairs
from delta_diff.distill.losses import LossWeights, distillation_loss
from delta_diff.world.components import sd_v1_noise_scheduler

from tests.conftest import tiny_unet_config


def tiny_cache(n=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {
        "latent_mean": torch.randn(n, 4, 8, 8, generator=g),
        "latent_std": torch.full((n, 4, 8, 8), 0.05),
        "text_embeddings": torch.randn(n, 5, 16, generator=g),
        "empty_text_embedding": torch.zeros(1, 5, 16),
    }


@pytest.fixture
def parent():
    torch.manual_seed(0)
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(**tiny_unet_config()).eval()


def test_tiny_student_stage_pairs_follow_bk_sdm_mapping(parent):
    space = ArchitectureSpace(dict(parent.config))
    student = prune(parent, preset_genome(space, "bk-sdm-tiny"), space)
    pairs = stage_pairs(student, parent)
    assert ("up_blocks.0", "up_blocks.1") in pairs
    # BK-SDM-Tiny: the student's new last level has no downsampler, so its last attention's proj_out is matched
    assert ("down_blocks.2.attentions.0.proj_out", "down_blocks.2.attentions.1.proj_out") in pairs
    assert not any(s == "mid_block" for s, _ in pairs)
    old = stage_pairs(student, parent, "pre_downsampler")  # the named alternative: before the downsampler
    assert ("down_blocks.2.attentions.0", "down_blocks.2.attentions.1") in old


@pytest.mark.parametrize("removed", [["stage:3"], ["stage:2", "pair:0.1"], ["stage:3", "down_attn:0.0", "up_attn:1.1"]])
def test_every_matched_pair_has_equal_shapes_when_stages_go_but_the_mid_block_stays(parent, removed):
    """Found in a search run: a student without the innermost stage(s) but with a mid block had its mid block
    matched to the parent's, at another resolution, and broadcasting hid it."""
    space = ArchitectureSpace(dict(parent.config))
    genome = tuple(int(u.key in removed) for u in space.units)
    student = prune(parent, genome, space)
    assert student.mid_block is not None
    pairs = stage_pairs(student, parent)
    assert ("mid_block", "mid_block") not in pairs
    x, t, text = torch.randn(2, 4, 8, 8), torch.tensor([3, 700]), torch.randn(2, 5, 16)
    with torch.no_grad(), collect_outputs(parent, [p for _, p in pairs]) as fp, \
            collect_outputs(student, [s for s, _ in pairs]) as fs:
        parent(x, t, text), student(x, t, text)
    assert all(fs[s].shape == fp[p].shape for s, p in pairs)


def test_a_mismatched_feature_pair_is_refused_not_broadcast():
    from delta_diff.distill.losses import feature_loss

    with pytest.raises(ValueError, match="not counterparts"):
        feature_loss({"a": torch.zeros(2, 8, 4, 4)}, {"b": torch.zeros(2, 8, 1, 1)}, [("a", "b")])


def test_output_and_feature_losses_vanish_when_student_is_parent(parent):
    student = copy.deepcopy(parent)
    pairs = stage_pairs(student, parent)
    x, t, text = torch.randn(2, 4, 8, 8), torch.tensor([3, 700]), torch.randn(2, 5, 16)
    names_s, names_p = [s for s, _ in pairs], [p for _, p in pairs]
    with torch.no_grad(), collect_outputs(parent, names_p) as fp, collect_outputs(student, names_s) as fs:
        pp, ps = parent(x, t, text).sample, student(x, t, text).sample
    _, parts = distillation_loss(ps, pp, torch.randn_like(pp), fs, fp, pairs, LossWeights())
    assert parts["out_kd"] == 0.0 and parts["feat_kd"] == 0.0 and parts["task"] > 0


@pytest.mark.parametrize("preset", ["bk-sdm-small", "bk-sdm-tiny"])
def test_a_short_run_lowers_the_kd_loss(parent, preset):
    space = ArchitectureSpace(dict(parent.config))
    student = prune(parent, preset_genome(space, preset), space)
    config = DistillConfig(steps=40, batch_size=8, learning_rate=2e-3, log_every=10, caption_dropout=0.0)
    _, history = distill_student(parent, student, tiny_cache(), sd_v1_noise_scheduler(), config, show_progress=False)
    kd = [h["feat_kd"] + h["out_kd"] for h in history]
    assert kd[-1] < 0.8 * kd[0], kd


def test_bad_inputs_are_named(parent):
    space = ArchitectureSpace(dict(parent.config))
    student = prune(parent, preset_genome(space, "bk-sdm-small"), space)
    scheduler = sd_v1_noise_scheduler()
    with pytest.raises(ValueError, match="larger than the training set"):
        distill_student(parent, student, tiny_cache(n=4), scheduler, DistillConfig(batch_size=8), show_progress=False)
    broken = tiny_cache()
    del broken["latent_std"]
    with pytest.raises(ValueError, match="lacks.*latent_std"):
        distill_student(parent, student, broken, scheduler, DistillConfig(batch_size=8), show_progress=False)
    tiny = prune(parent, preset_genome(space, "bk-sdm-tiny"), space)
    with pytest.raises(ValueError, match="not a sub-architecture"):
        stage_pairs(parent, tiny)  # arguments swapped: a 4-level "student" of a 3-level parent


def test_nan_loss_stops_and_names_the_step(parent, tmp_path):
    space = ArchitectureSpace(dict(parent.config))
    student = prune(parent, preset_genome(space, "bk-sdm-base"), space)
    cache = tiny_cache()
    cache["latent_mean"][:] = float("nan")
    with pytest.raises(FloatingPointError, match="at step 1"):
        distill_student(parent, student, cache, sd_v1_noise_scheduler(), DistillConfig(batch_size=8, steps=3),
                        checkpoint_dir=str(tmp_path / "ck"), show_progress=False)


def test_a_raw_image_folder_is_encoded_on_the_fly(tmp_path):
    """No cache: VAE and text encoder run every step, with BK-SDM's random crop."""
    from diffusers import UNet2DConditionModel

    from delta_diff.data import read_image_folder, write_image_folder
    from delta_diff.distill.batches import FolderBatches
    from delta_diff.world import WorldSpec, make_world_images
    from delta_diff.world.components import (
        TextEncoderConfig, TokenizerConfig, VAEConfig, build_text_encoder, build_vae, train_tokenizer,
    )

    images, metadata = make_world_images(WorldSpec(), "train", 12, seed=0)
    folder = read_image_folder(write_image_folder(tmp_path / "raw", images, metadata))
    tokenizer = train_tokenizer(folder.captions, TokenizerConfig(vocab_size=400, max_length=16))
    text_encoder = build_text_encoder(tokenizer, TextEncoderConfig(hidden_size=16, heads=2))
    vae = build_vae(VAEConfig(block_out_channels=[16, 16, 16], norm_num_groups=8))
    source = FolderBatches(folder, vae, tokenizer, text_encoder, resolution=32, batch_size=4, random_flip=True)
    latents, text = source.batch(torch.tensor([0, 1, 2, 3]), torch.Generator().manual_seed(0))
    assert latents.shape == (4, 4, 8, 8) and text.shape == (4, 16, 16)
    torch.manual_seed(0)
    parent = UNet2DConditionModel(**tiny_unet_config()).eval()
    space = ArchitectureSpace(dict(parent.config))
    student = prune(parent, preset_genome(space, "bk-sdm-small"), space)
    _, history = distill_student(parent, student, source, sd_v1_noise_scheduler(),
                                 DistillConfig(steps=2, batch_size=4, log_every=1), show_progress=False)
    assert [h["step"] for h in history] == [1, 2]


def test_snapshots_are_the_student_at_their_step_and_survive_in_the_job_folder(parent, tmp_path):
    """The baseline's curve: a 4-step run kept at step 2 holds exactly what a 2-step run returns."""
    from delta_diff.distill.trainer import snapshot_folders

    space = ArchitectureSpace(dict(parent.config))
    student = prune(parent, preset_genome(space, "bk-sdm-tiny"), space)
    config = DistillConfig(steps=4, batch_size=8, learning_rate=2e-3, log_every=1, snapshot_every=2)
    long, _ = distill_student(parent, student, tiny_cache(), sd_v1_noise_scheduler(), config,
                              checkpoint_dir=str(tmp_path / "ck"), show_progress=False)
    short, _ = distill_student(parent, student, tiny_cache(), sd_v1_noise_scheduler(),
                               config.model_copy(update={"steps": 2, "snapshot_every": 0}), show_progress=False)
    kept = snapshot_folders(tmp_path / "ck", config, parent, student)
    assert list(kept) == [2]  # not the last step: that is the run's own result
    from diffusers import UNet2DConditionModel

    at_two = UNet2DConditionModel.from_pretrained(kept[2])
    assert all(torch.equal(a, b) for a, b in zip(at_two.state_dict().values(), short.state_dict().values()))
    assert not torch.equal(at_two.conv_in.weight, long.conv_in.weight)
    with pytest.raises(ValueError, match="snapshot_every 2 needs a checkpoint_dir"):
        distill_student(parent, student, tiny_cache(), sd_v1_noise_scheduler(), config, show_progress=False)


def test_a_job_extended_past_its_end_keeps_the_snapshot_of_its_old_last_step(parent, tmp_path):
    """The claim's N = 3 baseline resumes N = 2's finished job at 2 x S: its curve needs the step-2S snapshot, which
    the shorter job never took (its last step is its result). It is taken on resume, from the resumed weights."""
    from delta_diff.distill.trainer import snapshot_folders

    space = ArchitectureSpace(dict(parent.config))
    student = prune(parent, preset_genome(space, "bk-sdm-tiny"), space)
    config = DistillConfig(steps=4, batch_size=8, learning_rate=2e-3, log_every=1, snapshot_every=2)
    short, _ = distill_student(parent, student, tiny_cache(), sd_v1_noise_scheduler(),
                               config.model_copy(update={"steps": 2}), checkpoint_dir=str(tmp_path / "ck"),
                               show_progress=False)
    assert snapshot_folders(tmp_path / "ck", config, parent, student) == {}
    distill_student(parent, student, tiny_cache(), sd_v1_noise_scheduler(), config,
                    checkpoint_dir=str(tmp_path / "ck"), show_progress=False)
    kept = snapshot_folders(tmp_path / "ck", config, parent, student)
    assert list(kept) == [2]
    from diffusers import UNet2DConditionModel

    at_two = UNet2DConditionModel.from_pretrained(kept[2])
    assert all(torch.equal(a, b) for a, b in zip(at_two.state_dict().values(), short.state_dict().values()))


def test_dgkd_targets_imitate_the_parent_the_teacher_or_both(parent, tmp_path):
    """'both' averages the KD terms over the parent and the original teacher: with the teacher being the parent it
    trains as 'parent' (to rounding: autograd sums the two halves' gradients in another order, which Adam's
    normalised steps carry to ~1e-4 of weights moved ~6e-3 here); 'teacher' imitates another model than the
    parent; no teacher is refused."""
    space = ArchitectureSpace(dict(parent.config))
    student = prune(parent, preset_genome(space, "bk-sdm-tiny"), space)
    config = DistillConfig(steps=3, batch_size=8, learning_rate=2e-3, log_every=1)
    run = lambda target, teacher: distill_student(  # noqa: E731
        parent, student, tiny_cache(), sd_v1_noise_scheduler(), config.model_copy(update={"target": target}),
        show_progress=False, teacher=teacher)
    alone, alone_history = run("parent", None)
    both, both_history = run("both", parent)
    largest_difference = lambda a, b: max((x - y).abs().max().item()  # noqa: E731
                                          for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert largest_difference(alone, both) < 2e-4
    assert alone_history[-1]["loss"] == pytest.approx(both_history[-1]["loss"], rel=1e-5)
    torch.manual_seed(5)
    from diffusers import UNet2DConditionModel

    other_teacher = UNet2DConditionModel(**tiny_unet_config()).eval()
    imitating_other, _ = run("teacher", other_teacher)
    assert largest_difference(imitating_other, alone) > 1e-3
    with pytest.raises(ValueError, match="target 'both' needs the original teacher"):
        run("both", None)


def test_one_imitated_model_is_exactly_bk_sdms_loss():
    from delta_diff.distill.losses import averaged_distillation_loss

    g = torch.Generator().manual_seed(0)
    student, parent_pred, target = (torch.randn(2, 4, 8, 8, generator=g) for _ in range(3))
    features_s, features_p = {"a": torch.randn(2, 3, generator=g)}, {"b": torch.randn(2, 3, generator=g)}
    weights = LossWeights()
    one = distillation_loss(student, parent_pred, target, features_s, features_p, [("a", "b")], weights)
    averaged = averaged_distillation_loss(student, target, features_s, [(parent_pred, features_p, [("a", "b")])], weights)
    assert torch.equal(one[0], averaged[0]) and one[1] == averaged[1]
