"""A training cache records what it was built from; a cache of another text encoder or resolution is named."""

import torch
from diffusers import StableDiffusionPipeline
from safetensors.torch import save_file

from delta_diff.data.cache_spec import cache_problem, cache_spec

from tests.conftest import PROJECT_ROOT

TEACHER = PROJECT_ROOT / "data" / "06_models" / "embedded_teacher"


def _cache(spec: dict, text_dim: int = 64) -> dict:
    return {**spec, "latent_mean": torch.zeros(2, 4, 8, 8), "latent_std": torch.ones(2, 4, 8, 8),
            "text_embeddings": torch.zeros(2, 16, text_dim), "empty_text_embedding": torch.zeros(1, 16, text_dim),
            "input_ids": torch.zeros(2, 16, dtype=torch.long)}


def test_a_cache_fits_the_teacher_it_was_built_with_and_nothing_else(tmp_path):
    teacher = StableDiffusionPipeline.from_pretrained(TEACHER, use_safetensors=True)
    good = cache_spec(teacher.text_encoder, teacher.vae, 32)
    path = tmp_path / "cache.safetensors"
    save_file(_cache(good), path)
    assert cache_problem(path, TEACHER, 32) is None
    assert "was built at 32 px but data_prep.cache.resolution is 64" in cache_problem(path, TEACHER, 64)

    torch.manual_seed(5)
    for parameter in teacher.text_encoder.parameters():
        parameter.data.normal_()
    save_file(_cache(cache_spec(teacher.text_encoder, teacher.vae, 32)), path)
    assert "built by another text encoder than the teacher's" in cache_problem(path, TEACHER, 32)

    save_file(_cache(good, text_dim=768), path)
    assert "holds 768-d text embeddings but the teacher's text encoder" in cache_problem(path, TEACHER, 32)

    save_file(_cache({}), path)
    assert "does not record what it was built from" in cache_problem(path, TEACHER, 32)
