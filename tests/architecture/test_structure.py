import json

import pytest

from delta_diff.architecture import ArchitectureError, load_unet_config, parse_structure, structure_to_config


def test_sd_v1_4_structure(sd_v1_4_config):
    structure = parse_structure(sd_v1_4_config)
    assert [lvl.channels for lvl in structure.levels] == [320, 640, 1280, 1280]
    assert [lvl.has_attention for lvl in structure.levels] == [True, True, True, False]
    assert all(lvl.depth == 2 and len(lvl.up_attn) == 3 for lvl in structure.levels)
    assert structure.mid_attn == 1


def test_structure_round_trips_to_the_same_config(sd_v1_4_config):
    config = structure_to_config(sd_v1_4_config, parse_structure(sd_v1_4_config))
    for key in ("down_block_types", "up_block_types", "block_out_channels", "layers_per_block"):
        assert config[key] == sd_v1_4_config[key]
    assert config["mid_block_type"] == "UNetMidBlock2DCrossAttn"


@pytest.mark.parametrize(
    "change,message",
    [
        ({"_class_name": "UNet2DModel"}, "not an SD-family"),
        ({"down_block_types": ["CrossAttnDownBlock2D", "SimpleCrossAttnDownBlock2D", "DownBlock2D", "DownBlock2D"]}, "SimpleCrossAttn"),
        ({"up_block_types": ["UpBlock2D"] * 4}, "does not mirror"),
        ({"mid_block_type": "UNetMidBlock2DSimpleCrossAttn"}, "mid_block_type"),
        ({"block_out_channels": [320, 640]}, "mirrors them"),
    ],
)
def test_non_sd_family_configs_are_rejected(sd_v1_4_config, change, message):
    with pytest.raises(ArchitectureError, match=message):
        parse_structure(dict(sd_v1_4_config, **change))


def test_missing_key_is_named(sd_v1_4_config):
    config = {k: v for k, v in sd_v1_4_config.items() if k != "block_out_channels"}
    with pytest.raises(ArchitectureError, match="block_out_channels"):
        parse_structure(config)


def test_load_unet_config_accepts_file_unet_folder_and_pipeline_folder(tmp_path, sd_v1_4_config):
    (tmp_path / "pipe" / "unet").mkdir(parents=True)
    (tmp_path / "pipe" / "unet" / "config.json").write_text(json.dumps(sd_v1_4_config))
    assert load_unet_config(tmp_path / "pipe") == sd_v1_4_config
    assert load_unet_config(tmp_path / "pipe" / "unet") == sd_v1_4_config
    assert load_unet_config(tmp_path / "pipe" / "unet" / "config.json") == sd_v1_4_config


def test_load_unet_config_errors_name_the_path(tmp_path):
    with pytest.raises(ArchitectureError, match="no U-Net config at"):
        load_unet_config(tmp_path / "nowhere")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(ArchitectureError, match="broken.json is not valid JSON"):
        load_unet_config(broken)
    listed = tmp_path / "list.json"
    listed.write_text("[1, 2]")
    with pytest.raises(ArchitectureError, match="expected an object"):
        load_unet_config(listed)
