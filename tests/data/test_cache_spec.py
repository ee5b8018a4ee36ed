"""A training cache records what it was built from; a cache of another text encoder or resolution is named."""

import torch
from diffusers import StableDiffusionPipeline

from delta_diff.data import read_image_folder, write_image_folder
from delta_diff.data.cache_spec import cache_inputs, cache_problem
from delta_diff.data.latent_cache import build_training_cache
from delta_diff.world import WorldSpec, make_world_images

from tests.conftest import PROJECT_ROOT

TEACHER = PROJECT_ROOT / "data" / "06_models" / "embedded_teacher"


def _build(folder, teacher, root, resolution=32):
    return build_training_cache(folder, teacher, resolution, root, inputs=cache_inputs(folder, teacher, resolution),
                                show_progress=False).folder


def test_a_cache_fits_the_teacher_it_was_built_with_and_nothing_else(tmp_path):
    images, metadata = make_world_images(WorldSpec(), "train", 6, seed=0)
    write_image_folder(tmp_path / "images", images, metadata)
    folder = read_image_folder(tmp_path / "images")
    teacher = StableDiffusionPipeline.from_pretrained(TEACHER, use_safetensors=True)
    good = _build(folder, teacher, tmp_path / "cache")
    assert cache_problem(good, TEACHER, 32) is None
    assert "was built at 32 px but data_prep.cache.resolution is 64" in cache_problem(good, TEACHER, 64)

    torch.manual_seed(5)
    for parameter in teacher.text_encoder.parameters():
        parameter.data.normal_()
    other = _build(folder, teacher, tmp_path / "cache")
    assert other != good  # other inputs, another key
    assert "built by another text encoder than the teacher's" in cache_problem(other, TEACHER, 32)

    (good / "complete.json").unlink()
    assert "is incomplete" in cache_problem(good, TEACHER, 32)
    assert "is not a training cache" in cache_problem(tmp_path, TEACHER, 32)


def test_the_key_follows_the_image_folder(tmp_path):
    images, metadata = make_world_images(WorldSpec(), "train", 4, seed=0)
    write_image_folder(tmp_path / "images", images, metadata)
    teacher = StableDiffusionPipeline.from_pretrained(TEACHER, use_safetensors=True)
    before = cache_inputs(read_image_folder(tmp_path / "images"), teacher, 32)
    edited = metadata.copy()
    edited.loc[0, "text"] = "a different caption"
    edited.to_csv(tmp_path / "images" / "metadata.csv", index=False)
    after = cache_inputs(read_image_folder(tmp_path / "images"), teacher, 32)
    assert before["folder_digest"] != after["folder_digest"]
    assert {k: v for k, v in before.items() if k != "folder_digest"} == \
        {k: v for k, v in after.items() if k != "folder_digest"}
