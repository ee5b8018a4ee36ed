"""Feature-KD pairing rules: BK-SDM's exact hook lists at SD shapes (meta device, no weights), equal feature shapes
on real tiny U-Nets, and the fallback where BK-SDM's rule does not cover an architecture.

Pairs are compared as lists in ``feature_pairing``'s order: down stages outer to inner, the mid block
(``pre_downsampler`` only), then up stages.
"""

import pytest
import torch
from diffusers import UNet2DConditionModel

from delta_diff.architecture import ArchitectureSpace, count_params, preset_genome, prune
from delta_diff.distill.features import FEATURE_PAIRINGS, FeaturePairing, collect_outputs, feature_pairing, stage_pairs
from delta_diff.search import sample_candidates

from tests.conftest import tiny_unet_config

DOWN_UP = [f"down_blocks.{i}" for i in range(4)] + [f"up_blocks.{i}" for i in range(4)]
# BK-SDM's distillation script at SD v1.4 shapes.
BK_SDM_BASE_SMALL = list(zip(DOWN_UP, DOWN_UP))
BK_SDM_TINY_TEACHER = ["down_blocks.0", "down_blocks.1", "down_blocks.2.attentions.1.proj_out",
                       "up_blocks.1", "up_blocks.2", "up_blocks.3"]
BK_SDM_TINY_STUDENT = ["down_blocks.0", "down_blocks.1", "down_blocks.2.attentions.0.proj_out",
                       "up_blocks.0", "up_blocks.1", "up_blocks.2"]


def on_meta(config: dict) -> UNet2DConditionModel:
    with torch.device("meta"):
        return UNet2DConditionModel.from_config(config)


def meta_preset(config: dict, preset: str) -> UNet2DConditionModel:
    space = ArchitectureSpace(config)
    return on_meta(space.child_config(preset_genome(space, preset)))


@pytest.fixture(scope="module")
def sd_v1_4_teacher(sd_v1_4_config):
    return on_meta(sd_v1_4_config)


@pytest.mark.parametrize("preset", ["bk-sdm-base", "bk-sdm-small"])
def test_bk_sdm_base_and_small_hook_every_whole_block_and_never_the_mid_block(sd_v1_4_config, sd_v1_4_teacher,
                                                                              preset):
    student = meta_preset(sd_v1_4_config, preset)
    for rule in ("auto", "bk_sdm"):
        assert feature_pairing(student, sd_v1_4_teacher, rule) == FeaturePairing(tuple(BK_SDM_BASE_SMALL), "bk_sdm")


@pytest.mark.parametrize("config_fixture", ["sd_v1_4_config", "sd_v2_config"])
def test_bk_sdm_tiny_pairs_the_last_proj_out_where_the_student_lost_its_downsampler(request, config_fixture):
    config = request.getfixturevalue(config_fixture)
    teacher, student = on_meta(config), meta_preset(config, "bk-sdm-tiny")
    for rule in ("auto", "bk_sdm"):
        pairing = feature_pairing(student, teacher, rule)
        assert pairing.rule == "bk_sdm"
        assert list(pairing.pairs) == list(zip(BK_SDM_TINY_STUDENT, BK_SDM_TINY_TEACHER))
    # SD 2.x projects with nn.Linear, SD 1.x with a 1x1 nn.Conv2d: the channel check reads both.
    expected = torch.nn.Linear if config.get("use_linear_projection") else torch.nn.Conv2d
    assert isinstance(student.get_submodule(BK_SDM_TINY_STUDENT[2]), expected)
    assert isinstance(teacher.get_submodule(BK_SDM_TINY_TEACHER[2]), expected)


def test_pre_downsampler_is_the_former_pairing_at_sd_v1_4_shapes(sd_v1_4_config, sd_v1_4_teacher):
    """The pairing this project used before BK-SDM's became the default, written out: down stages before their
    downsampler, the mid block only when both have one and no level was removed."""
    ups = [(f"up_blocks.{i}", f"up_blocks.{i}") for i in range(4)]
    teacher_downs = [f"down_blocks.{i}.attentions.1" for i in range(3)] + ["down_blocks.3.resnets.1"]
    base_downs = [f"down_blocks.{i}.attentions.0" for i in range(3)] + ["down_blocks.3.resnets.0"]
    expected = {
        "teacher": list(zip(teacher_downs, teacher_downs)) + [("mid_block", "mid_block")] + ups,
        "bk-sdm-base": list(zip(base_downs, teacher_downs)) + [("mid_block", "mid_block")] + ups,
        "bk-sdm-small": list(zip(base_downs, teacher_downs)) + ups,
        "bk-sdm-tiny": list(zip(base_downs[:3], teacher_downs[:3]))
        + [(f"up_blocks.{i}", f"up_blocks.{i + 1}") for i in range(3)],
    }
    for preset, pairs in expected.items():
        student = meta_preset(sd_v1_4_config, preset)
        assert feature_pairing(student, sd_v1_4_teacher, "pre_downsampler") == FeaturePairing(
            tuple(pairs), "pre_downsampler"), preset


def assert_features_match(student, parent, pairs, inputs):
    with torch.no_grad(), collect_outputs(parent, [p for _, p in pairs]) as fp, \
            collect_outputs(student, [s for s, _ in pairs]) as fs:
        parent(*inputs), student(*inputs)
    mismatched = [(s, tuple(fs[s].shape), p, tuple(fp[p].shape)) for s, p in pairs if fs[s].shape != fp[p].shape]
    assert not mismatched


def genome_of(space: ArchitectureSpace, removed: list[str]):
    return space.validate(space.from_keys(removed))


@pytest.mark.parametrize("preset", ["teacher", "bk-sdm-base", "bk-sdm-small", "bk-sdm-tiny"])
def test_every_rule_pairs_equal_shapes_on_the_presets(tiny_unet, unet_inputs, preset):
    space = ArchitectureSpace(dict(tiny_unet.config))
    student = prune(tiny_unet, preset_genome(space, preset), space)
    assert feature_pairing(student, tiny_unet).rule == "bk_sdm"
    for rule in FEATURE_PAIRINGS:
        assert_features_match(student, tiny_unet, stage_pairs(student, tiny_unet, rule), unet_inputs)


def test_every_rule_pairs_equal_shapes_on_sampled_candidates(tiny_unet, unet_inputs):
    """Search candidates are any sub-architecture: some bk_sdm covers, some (a bypassed last attention on a new
    innermost level) only pre_downsampler does. This seed draws both kinds."""
    space = ArchitectureSpace(dict(tiny_unet.config))
    budget = int(0.5 * count_params(space.parent_config))
    used = []
    for genome in sample_candidates(space, budget, n=4, seed=0):
        student = prune(tiny_unet, genome, space)
        auto = feature_pairing(student, tiny_unet)
        used.append(auto.rule)
        assert auto == feature_pairing(student, tiny_unet, auto.rule)
        if auto.rule == "pre_downsampler":
            with pytest.raises(ValueError, match="use `feature_pairing: pre_downsampler`"):
                feature_pairing(student, tiny_unet, "bk_sdm")
        for rule in ("auto", "pre_downsampler") + (("bk_sdm",) if auto.rule == "bk_sdm" else ()):
            assert_features_match(student, tiny_unet, stage_pairs(student, tiny_unet, rule), unet_inputs)
    assert set(used) == {"bk_sdm", "pre_downsampler"}, used


@pytest.mark.parametrize("removed", [["stage:3"], ["stage:2", "pair:0.1"], ["stage:3", "down_attn:0.0", "up_attn:1.1"]])
def test_bk_sdm_covers_stage_removal_with_the_mid_block_kept(tiny_unet, unet_inputs, removed):
    space = ArchitectureSpace(dict(tiny_unet.config))
    student = prune(tiny_unet, genome_of(space, removed), space)
    innermost = len(student.down_blocks) - 1
    pairing = feature_pairing(student, tiny_unet)
    assert pairing.rule == "bk_sdm"
    assert pairing.pairs[innermost] == (f"down_blocks.{innermost}.attentions.1.proj_out",
                                        f"down_blocks.{innermost}.attentions.1.proj_out")
    assert not any("mid_block" in pair for pair in pairing.pairs)
    assert_features_match(student, tiny_unet, pairing.pairs, unet_inputs)


def assert_falls_back(student, parent, inputs, named: str):
    """``auto`` says it used pre_downsampler; ``bk_sdm`` refuses, naming the module and the way out."""
    auto = feature_pairing(student, parent)
    assert auto == feature_pairing(student, parent, "pre_downsampler")
    assert auto.rule == "pre_downsampler"
    assert_features_match(student, parent, auto.pairs, inputs)
    with pytest.raises(ValueError, match=rf"{named}.*use `feature_pairing: pre_downsampler`"):
        feature_pairing(student, parent, "bk_sdm")


def test_a_bypassed_last_attention_on_the_new_innermost_level_falls_back(tiny_unet, unet_inputs):
    space = ArchitectureSpace(dict(tiny_unet.config))
    student = prune(tiny_unet, genome_of(space, ["stage:3", "down_attn:2.1"]), space)
    assert_falls_back(student, tiny_unet, unet_inputs, r"student's down_blocks\.2\.attentions\.1 is bypassed")


def test_a_parent_whose_last_attention_is_bypassed_falls_back(tiny_unet, unet_inputs):
    """A path stage's parent may itself have lost attention: the student keeps attention 0 of the level, but the
    parent's last one (1) is bypassed, so it has no transformer output to imitate."""
    space = ArchitectureSpace(dict(tiny_unet.config))
    parent = prune(tiny_unet, genome_of(space, ["down_attn:2.1"]), space)
    parent_space = ArchitectureSpace(dict(parent.config))
    student = prune(parent, genome_of(parent_space, ["stage:3", "pair:2.1"]), parent_space)
    assert_falls_back(student, parent, unet_inputs, r"parent's down_blocks\.2\.attentions\.1 is bypassed")


def test_a_new_innermost_level_without_attention_falls_back(unet_inputs):
    torch.manual_seed(0)
    parent = UNet2DConditionModel(**tiny_unet_config(
        down_block_types=["CrossAttnDownBlock2D"] * 2 + ["DownBlock2D"] * 2,
        up_block_types=["UpBlock2D"] * 2 + ["CrossAttnUpBlock2D"] * 2,
    )).eval()
    space = ArchitectureSpace(dict(parent.config))
    student = prune(parent, genome_of(space, ["stage:3"]), space)
    assert_falls_back(student, parent, unet_inputs, r"down_blocks\.2 has no cross-attention \(DownBlock2D\)")


def test_unknown_rule_and_mismatched_channels_are_refused(tiny_unet):
    with pytest.raises(ValueError, match="unknown feature pairing 'bk-sdm'.*auto, bk_sdm, pre_downsampler"):
        stage_pairs(tiny_unet, tiny_unet, "bk-sdm")
    narrow = on_meta(tiny_unet_config(block_out_channels=[8, 16, 16, 16]))
    for rule in FEATURE_PAIRINGS:
        with pytest.raises(ValueError, match=r"student down_blocks\.0\S* outputs 8 channels.*not a sub-architecture"):
            stage_pairs(narrow, tiny_unet, rule)
