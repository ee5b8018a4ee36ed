"""Building SD-shaped pipeline folders: stock reload and sampling, the stamp cache, atomic replacement, SD 2.1-base
with v-prediction, and (slow) full size."""

import json
import shutil
import time

import numpy as np
import pytest
import torch
from diffusers import StableDiffusionPipeline
from safetensors.torch import load_file

pytest.importorskip("hpsv2")

from delta_diff.sd_shaped import STAMP_NAME, SdShapedError, build_sd_shaped, read_stamp  # noqa: E402
from delta_diff.sd_shaped import build as build_module  # noqa: E402


def quiet(line):
    pass


def sample_64px(pipeline, steps=2):
    generator = torch.Generator().manual_seed(0)
    return pipeline("a photo of a cat", height=64, width=64, num_inference_steps=steps, generator=generator,
                    output_type="np").images


def hidden_siblings(folder):
    return sorted(p.name for p in folder.parent.iterdir() if p.name.startswith(f".{folder.name}."))


def test_reduced_v1_4_reloads_with_stock_diffusers_and_samples(sd_shaped_pipeline_dir):
    pipeline = StableDiffusionPipeline.from_pretrained(sd_shaped_pipeline_dir)
    assert pipeline.safety_checker is None
    assert pipeline.tokenizer("a photo of a cat").input_ids == [49406, 320, 1125, 539, 320, 2368, 49407]
    assert pipeline.text_encoder.config.hidden_size == 768 and pipeline.unet.config.cross_attention_dim == 768
    assert type(pipeline.scheduler).__name__ == "PNDMScheduler"
    assert pipeline.vae.config.scaling_factor == 0.18215
    started = time.perf_counter()
    images = sample_64px(pipeline)
    elapsed = time.perf_counter() - started
    assert images.shape == (1, 64, 64, 3) and np.isfinite(images).all()
    assert elapsed < 30, f"64-px sampling took {elapsed:.1f} s; the reduced pipeline should take seconds"
    assert not list(sd_shaped_pipeline_dir.rglob("*.bin"))  # safetensors only
    for vocab_file in ("tokenizer.json", "vocab.json", "merges.txt"):
        assert (sd_shaped_pipeline_dir / "tokenizer" / vocab_file).is_file()


def test_same_arguments_return_at_once(sd_shaped_pipeline_dir):
    weights = sd_shaped_pipeline_dir / "unet" / "diffusion_pytorch_model.safetensors"
    modified = weights.stat().st_mtime_ns
    started = time.perf_counter()
    assert build_sd_shaped("sd-v1-4", sd_shaped_pipeline_dir, width_scale=0.125, seed=0, report=quiet) \
        == sd_shaped_pipeline_dir
    assert time.perf_counter() - started < 1.0
    assert weights.stat().st_mtime_ns == modified
    assert read_stamp(sd_shaped_pipeline_dir) == {"format_version": 1, "variant": "sd-v1-4", "width_scale": 0.125,
                                                  "seed": 0, "prediction_type": "epsilon"}


def test_same_seed_gives_the_same_weights(sd_shaped_pipeline_dir, tmp_path):
    out = build_sd_shaped("sd-v1-4", tmp_path / "again", width_scale=0.125, seed=0, report=quiet)
    for weights in ("unet/diffusion_pytorch_model.safetensors", "vae/diffusion_pytorch_model.safetensors",
                    "text_encoder/model.safetensors"):
        first, again = load_file(sd_shaped_pipeline_dir / weights), load_file(out / weights)
        assert first.keys() == again.keys() and all(torch.equal(first[k], again[k]) for k in first), weights


def test_other_arguments_rebuild_in_place(sd_shaped_pipeline_dir, tmp_path):
    out = tmp_path / "pipeline"
    shutil.copytree(sd_shaped_pipeline_dir, out)
    before = load_file(out / "unet" / "diffusion_pytorch_model.safetensors")["conv_in.weight"]
    build_sd_shaped("sd-v1-4", out, width_scale=0.125, seed=1, report=quiet)
    assert read_stamp(out)["seed"] == 1
    after = load_file(out / "unet" / "diffusion_pytorch_model.safetensors")["conv_in.weight"]
    assert after.shape == before.shape and not torch.equal(after, before)
    assert hidden_siblings(out) == [".pipeline.lock"]  # no staging or replaced folder left behind


def test_an_interrupted_build_leaves_no_folder(tmp_path, monkeypatch):
    def fail_while_saving(folder, arguments, report):
        (folder / "unet").mkdir(parents=True)
        raise OSError("No space left on device")

    monkeypatch.setattr(build_module, "_write_pipeline", fail_while_saving)
    out = tmp_path / "pipeline"
    with pytest.raises(OSError, match="No space left"):
        build_sd_shaped("sd-v1-4", out, width_scale=0.125, report=quiet)
    assert not out.exists() and hidden_siblings(out) == [".pipeline.lock"]


def test_refuses_to_overwrite_what_it_did_not_build(tmp_path):
    (tmp_path / "notes.txt").write_text("keep me")
    with pytest.raises(SdShapedError, match="not an sd_shaped build"):
        build_sd_shaped("sd-v1-4", tmp_path, width_scale=0.125, report=quiet)
    with pytest.raises(SdShapedError, match="is a file"):
        build_sd_shaped("sd-v1-4", tmp_path / "notes.txt", width_scale=0.125, report=quiet)
    assert (tmp_path / "notes.txt").read_text() == "keep me"


def test_reduced_sd_2_1_base_with_v_prediction(tmp_path):
    out = build_sd_shaped("sd-v2-1-base", tmp_path / "v2", width_scale=0.125, prediction_type="v_prediction",
                          report=quiet)
    pipeline = StableDiffusionPipeline.from_pretrained(out)
    assert pipeline.scheduler.config.prediction_type == "v_prediction"
    assert pipeline.text_encoder.config.hidden_size == 1024 and pipeline.unet.config.cross_attention_dim == 1024
    assert pipeline.unet.config.use_linear_projection
    assert list(pipeline.unet.config.attention_head_dim) == [5, 10, 20, 20]
    assert pipeline.tokenizer.pad_token_id == 0
    assert json.loads((out / STAMP_NAME).read_text())["prediction_type"] == "v_prediction"
    assert np.isfinite(sample_64px(pipeline, steps=1)).all()


@pytest.mark.slow
@pytest.mark.parametrize("variant,unet_params,text_params", [("sd-v1-4", 859_520_964, 123_060_480),
                                                             ("sd-v2-1-base", 865_910_724, 340_387_840)])
def test_full_size_pipeline_builds_reloads_and_samples(variant, unet_params, text_params, tmp_path):
    """Real SD shapes (~4-5 GB of fp32 weights, peak RSS ~5 GB); the folder is deleted afterwards."""
    out = build_sd_shaped(variant, tmp_path / variant, report=quiet)
    try:
        pipeline = StableDiffusionPipeline.from_pretrained(out)
        counts = {name: sum(p.numel() for p in getattr(pipeline, name).parameters())
                  for name in ("unet", "text_encoder", "vae")}
        assert counts == {"unet": unet_params, "text_encoder": text_params, "vae": 83_653_863}
        assert np.isfinite(sample_64px(pipeline, steps=1)).all()
        del pipeline
    finally:
        shutil.rmtree(out, ignore_errors=True)
