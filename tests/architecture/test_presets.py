import pytest
import torch
from diffusers import UNet2DConditionModel

from delta_diff.architecture import ArchitectureError, ArchitectureSpace, count_params, preset_genome

# BK-SDM (Kim et al., 2023), Table 1 / model cards; teacher = SD v1.4's U-Net.
SD_V1_4_COUNTS = {
    "teacher": 859_520_964,
    "bk-sdm-base": 579_384_964,
    "bk-sdm-small": 482_346_884,
    "bk-sdm-tiny": 323_384_964,
}


@pytest.mark.parametrize("name,expected", SD_V1_4_COUNTS.items())
def test_presets_give_bk_sdm_counts_from_sd_v1_4(sd_v1_4_config, name, expected):
    space = ArchitectureSpace(sd_v1_4_config)
    assert count_params(space.child_config(preset_genome(space, name))) == expected


def test_preset_configs_are_stock_diffusers(sd_v1_4_config):
    space = ArchitectureSpace(sd_v1_4_config)
    config = space.child_config(preset_genome(space, "bk-sdm-tiny"))
    assert config["layers_per_block"] == 1
    assert config["mid_block_type"] is None
    assert config["down_block_types"] == ["CrossAttnDownBlock2D"] * 3
    assert config["up_block_types"] == ["CrossAttnUpBlock2D"] * 3
    assert config["transformer_layers_per_block"] == 1 and config["reverse_transformer_layers_per_block"] is None


@pytest.mark.parametrize("name", ["bk-sdm-base", "bk-sdm-small", "bk-sdm-tiny"])
def test_presets_apply_to_sd_v2_configs(sd_v2_config, name):
    space = ArchitectureSpace(sd_v2_config)
    config = space.child_config(preset_genome(space, name))
    expected_heads = [5, 10, 20, 20] if name != "bk-sdm-tiny" else [5, 10, 20]
    assert config["attention_head_dim"] == expected_heads
    assert config["cross_attention_dim"] == 1024 and config["use_linear_projection"] is True
    with torch.device("meta"):
        model = UNet2DConditionModel.from_config(config)
    assert sum(p.numel() for p in model.parameters()) == count_params(config)
    assert count_params(config) < count_params(sd_v2_config)


def test_tiny_preset_saves_and_loads_with_stock_diffusers(tiny_unet, unet_inputs, tmp_path):
    from delta_diff.architecture import prune

    space = ArchitectureSpace(dict(tiny_unet.config))
    child = prune(tiny_unet, preset_genome(space, "bk-sdm-tiny"), space)
    child.save_pretrained(tmp_path)
    assert (tmp_path / "diffusion_pytorch_model.safetensors").is_file()
    loaded = UNet2DConditionModel.from_pretrained(tmp_path, use_safetensors=True)
    with torch.no_grad():
        torch.testing.assert_close(loaded(*unet_inputs).sample, child(*unet_inputs).sample)


def test_unknown_preset_names_the_choices(sd_v1_4_config):
    space = ArchitectureSpace(sd_v1_4_config)
    with pytest.raises(ArchitectureError, match="bk-sdm-tiny"):
        preset_genome(space, "bk-sdm-huge")


def test_tiny_preset_refuses_a_parent_without_a_droppable_stage(sd_v1_4_config):
    config = dict(sd_v1_4_config, block_out_channels=[320, 640, 1280, 2560])
    space = ArchitectureSpace(config)
    with pytest.raises(ArchitectureError, match="innermost stage"):
        preset_genome(space, "bk-sdm-tiny")
