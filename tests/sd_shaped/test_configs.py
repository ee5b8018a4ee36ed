"""Component configs: published parameter counts at full width, counted on the meta device (no weights are
allocated), and the structure a reduced width keeps."""

import json
import math

import pytest
import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel

from delta_diff.sd_shaped import SdShapedError, scheduler_config, text_encoder_config, unet_config, vae_config
from delta_diff.sd_shaped.configs import VARIANTS, scaled_channels
from tests.conftest import SD_V1_4_CONFIG


def meta_params(build) -> int:
    with torch.device("meta"):
        return sum(p.numel() for p in build().parameters())


def unet_params(config):
    return meta_params(lambda: UNet2DConditionModel(**config))


def text_params(config):
    return meta_params(lambda: CLIPTextModel(CLIPTextConfig(**config)))


def vae_params(config):
    return meta_params(lambda: AutoencoderKL(**config))


@pytest.mark.parametrize("variant,expected", [("sd-v1-4", 859_520_964), ("sd-v2-1-base", 865_910_724)])
def test_full_width_unet_has_the_published_size(variant, expected):
    assert unet_params(unet_config(variant)) == expected


@pytest.mark.parametrize("variant,expected", [("sd-v1-4", 123_060_480), ("sd-v2-1-base", 340_387_840)])
def test_full_width_text_encoder_has_the_published_size(variant, expected):
    """CLIP ViT-L/14's text tower (v1.4) and OpenCLIP ViT-H's, 23 of its 24 layers (SD 2.x uses the penultimate)."""
    assert text_params(text_encoder_config(variant)) == expected


@pytest.mark.parametrize("variant", VARIANTS)
def test_full_width_vae_has_the_published_size(variant):
    config = vae_config(variant)
    assert vae_params(config) == 83_653_863 and config["scaling_factor"] == 0.18215


def test_packaged_unet_config_is_the_projects_sd_v1_4_config():
    assert unet_config("sd-v1-4") == json.loads(SD_V1_4_CONFIG.read_text())


def test_sd_2_1_base_differs_from_v1_4_only_where_published():
    v1, v2 = unet_config("sd-v1-4"), unet_config("sd-v2-1-base")
    assert {k for k in v1 if v1[k] != v2[k]} == {"attention_head_dim", "cross_attention_dim", "use_linear_projection"}
    assert v2["attention_head_dim"] == [5, 10, 20, 20] and v2["cross_attention_dim"] == 1024
    text = text_encoder_config("sd-v2-1-base")
    assert (text["hidden_size"], text["num_hidden_layers"], text["num_attention_heads"], text["intermediate_size"],
            text["hidden_act"], text["pad_token_id"]) == (1024, 23, 16, 4096, "gelu", 0)
    v1_text = text_encoder_config("sd-v1-4")
    assert (v1_text["bos_token_id"], v1_text["eos_token_id"], v1_text["pad_token_id"]) == (49406, 49407, 49407)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("width_scale", [0.125, 0.3, 0.5])
def test_reduced_width_keeps_structure_and_divisibility(variant, width_scale):
    full, small = unet_config(variant), unet_config(variant, width_scale)
    for key in ("down_block_types", "up_block_types", "mid_block_type", "layers_per_block", "attention_head_dim",
                "cross_attention_dim", "in_channels", "out_channels", "norm_num_groups", "sample_size"):
        assert small[key] == full[key], key
    heads = full["attention_head_dim"]
    heads = heads if isinstance(heads, list) else [heads] * 4
    for channels, n_heads in zip(small["block_out_channels"], heads):
        assert channels % math.lcm(small["norm_num_groups"], n_heads) == 0
    assert small["block_out_channels"] == sorted(small["block_out_channels"])

    vae_full, vae_small = vae_config(variant), vae_config(variant, width_scale)
    assert {k: v for k, v in vae_small.items() if k != "block_out_channels"} == \
        {k: v for k, v in vae_full.items() if k != "block_out_channels"}
    assert all(c % vae_small["norm_num_groups"] == 0 for c in vae_small["block_out_channels"])

    text_full, text_small = text_encoder_config(variant), text_encoder_config(variant, width_scale)
    for key in ("hidden_size", "num_attention_heads", "max_position_embeddings", "vocab_size", "hidden_act",
                "pad_token_id", "eos_token_id"):
        assert text_small[key] == text_full[key], key
    assert 1 <= text_small["num_hidden_layers"] < text_full["num_hidden_layers"]
    assert text_small["intermediate_size"] < text_full["intermediate_size"]


def test_width_rounding_examples():
    assert unet_config("sd-v1-4", 0.125)["block_out_channels"] == [32, 96, 160, 160]
    assert unet_config("sd-v2-1-base", 0.125)["block_out_channels"] == [160, 160, 160, 160]
    assert vae_config("sd-v1-4", 0.125)["block_out_channels"] == [32, 32, 64, 64]
    assert unet_config("sd-v1-4", 0.5)["block_out_channels"] == [160, 320, 640, 640]
    assert scaled_channels(320, 0.01, 32) == 32  # never below one quantum
    small_text = text_encoder_config("sd-v1-4", 0.125)
    assert (small_text["num_hidden_layers"], small_text["intermediate_size"]) == (2, 384)


def test_reduced_v1_4_is_small():
    """Small enough for seconds-long sampling and KD steps on a CPU: the U-Net is under 2 % of SD v1.4's."""
    assert unet_params(unet_config("sd-v1-4", 0.125)) < 17_000_000
    assert vae_params(vae_config("sd-v1-4", 0.125)) < 1_500_000


def test_scheduler_is_sd_v1_4s_pndm():
    config = scheduler_config("sd-v1-4")
    assert config == {"_class_name": "PNDMScheduler", "beta_start": 0.00085, "beta_end": 0.012,
                      "beta_schedule": "scaled_linear", "num_train_timesteps": 1000, "set_alpha_to_one": False,
                      "skip_prk_steps": True, "steps_offset": 1, "clip_sample": False, "prediction_type": "epsilon"}
    assert scheduler_config("sd-v2-1-base")["prediction_type"] == "epsilon"
    assert scheduler_config("sd-v2-1-base", "v_prediction")["prediction_type"] == "v_prediction"


@pytest.mark.parametrize("call,message", [
    (lambda: unet_config("sd-v3"), "unknown variant 'sd-v3'"),
    (lambda: vae_config("sd-v1-4", 0), r"outside \(0, 1\]"),
    (lambda: unet_config("sd-v1-4", 1.5), r"outside \(0, 1\]"),
    (lambda: text_encoder_config("sd-v1-4", float("nan")), r"outside \(0, 1\]"),
    (lambda: unet_config("sd-v1-4", "wide"), "not a number"),
    (lambda: scheduler_config("sd-v1-4", "sample"), "unknown prediction type"),
])
def test_bad_inputs_say_why(call, message):
    with pytest.raises(SdShapedError, match=message):
        call()
