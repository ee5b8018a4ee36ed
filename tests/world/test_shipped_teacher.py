"""The teacher and scorer shipped in the repo: they load offline and know their world (a fast competence check;
the full one is the teacher pipeline's ``check_teacher_competence``, numbers in the README)."""

import pytest
import torch
from diffusers import AutoencoderKL, StableDiffusionPipeline, UNet2DConditionModel
from transformers import CLIPTextModel, CLIPTokenizer

from delta_diff.datasets import DiffusersModelDataset
from delta_diff.scoring import AttributeClassifier, WorldScorer
from delta_diff.world import WorldSpec, make_prompt_set, parse_caption
from delta_diff.sd import generate_images

from tests.conftest import PROJECT_ROOT

TEACHER = PROJECT_ROOT / "data" / "06_models" / "embedded_teacher"
SCORER = PROJECT_ROOT / "data" / "06_models" / "world_scorer"


@pytest.fixture(scope="module")
def teacher() -> StableDiffusionPipeline:
    return StableDiffusionPipeline.from_pretrained(TEACHER, local_files_only=True, use_safetensors=True)


@pytest.fixture(scope="module")
def scorer() -> WorldScorer:
    spec = WorldSpec()
    return WorldScorer(AttributeClassifier.from_pretrained(SCORER), lambda p: parse_caption(p, spec))


def test_every_component_loads_offline_on_its_own():
    assert isinstance(CLIPTokenizer.from_pretrained(TEACHER / "tokenizer"), CLIPTokenizer)
    assert isinstance(CLIPTextModel.from_pretrained(TEACHER / "text_encoder", use_safetensors=True), CLIPTextModel)
    assert isinstance(AutoencoderKL.from_pretrained(TEACHER / "vae", use_safetensors=True), AutoencoderKL)
    unet = UNet2DConditionModel.from_pretrained(TEACHER / "unet", use_safetensors=True)
    assert unet.config.down_block_types == ["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"]
    assert unet.config.up_block_types == ["UpBlock2D"] + ["CrossAttnUpBlock2D"] * 3
    assert unet.config.layers_per_block == 2 and unet.mid_block is not None
    assert not list(TEACHER.rglob("*.bin")) and list(TEACHER.rglob("*.safetensors"))


def test_catalog_dataset_loads_the_shipped_teacher():
    pipeline = DiffusersModelDataset(filepath=str(TEACHER), model_class="diffusers.StableDiffusionPipeline").load()
    assert isinstance(pipeline, StableDiffusionPipeline)


def test_teacher_images_match_held_out_prompts_far_above_chance(teacher, scorer):
    prompts = make_prompt_set(WorldSpec(), "eval", 32, seed=5000)
    images = generate_images(teacher, list(prompts.text), list(prompts.seed), steps=25, guidance_scale=4.0,
                             show_progress=False)
    summary = scorer.score(images, list(prompts.text)).summary
    # chance: shape 1/3, colour 1/4; the full check (96 prompts) asks for >= 0.8 each
    assert summary["shape_accuracy"] >= 0.7 and summary["colour_accuracy"] >= 0.7, summary


def test_sampling_is_reproducible(teacher):
    prompt = ["a small red circle at the top left on a white background"]
    first = generate_images(teacher, prompt, [7], steps=5, show_progress=False)[0]
    again = generate_images(teacher, prompt, [7], steps=5, show_progress=False)[0]
    assert list(first.getdata()) == list(again.getdata())
