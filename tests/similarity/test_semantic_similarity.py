"""Phi's sanity checks (issue: architecture_search): identity, monotone in what is removed, maps that mean
something. The last two need a trained model: they use the shipped embedded teacher."""

import random

import numpy as np
import pytest
import torch
from diffusers import StableDiffusionPipeline, UNet2DConditionModel
from scipy.stats import spearmanr

from delta_diff.architecture import ArchitectureSpace, count_params, preset_genome, prune
from delta_diff.data.latent_cache import encode_latents, encode_prompts
from delta_diff.similarity import (
    SimilarityProbe,
    attention_maps,
    capture_cross_attention,
    semantic_similarity,
    word_token_mask,
)
from delta_diff.world import WorldSpec, make_world_images
from delta_diff.world.components import sd_v1_noise_scheduler
from delta_diff.world.train_vae import images_to_tensor

from tests.conftest import PROJECT_ROOT, tiny_unet_config


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return UNet2DConditionModel(**tiny_unet_config()).eval()


def random_probe(n=4, tokens=6):
    g = torch.Generator().manual_seed(0)
    words = torch.zeros(n, tokens, dtype=torch.bool)
    words[:, 1:4] = True
    return SimilarityProbe(torch.randn(n, 4, 8, 8, generator=g), torch.tensor([10, 300, 600, 900][:n]),
                           torch.randn(n, tokens, 16, generator=g), words)


def test_phi_of_a_model_with_itself_is_one(tiny):
    assert semantic_similarity(tiny, tiny, random_probe()) == pytest.approx(1.0, abs=1e-6)


def test_capture_leaves_outputs_and_processors_unchanged(tiny):
    probe = random_probe()
    before = {name: type(p) for name, p in tiny.attn_processors.items()}
    with torch.no_grad():
        reference = tiny(probe.noisy_latents, probe.timesteps, probe.text_embeddings).sample
        with capture_cross_attention(tiny, 8, (8, 8)) as recorder:
            captured = tiny(probe.noisy_latents, probe.timesteps, probe.text_embeddings).sample
    assert torch.equal(reference, captured)
    assert recorder.calls == 6 + 1 + 9  # one per attn2: 3 levels x 2 down, the mid block, 3 levels x 3 up
    assert {name: type(p) for name, p in tiny.attn_processors.items()} == before


def test_phi_works_when_the_candidate_lost_whole_stages(tiny):
    space = ArchitectureSpace(dict(tiny.config))
    candidate = prune(tiny, preset_genome(space, "bk-sdm-tiny"), space)
    phi = semantic_similarity(tiny, candidate, random_probe())
    assert -1.0 <= phi < 1.0


def test_word_token_mask_skips_start_end_and_padding():
    from transformers import CLIPTokenizer

    tokenizer = CLIPTokenizer(model_max_length=8).train_new_from_iterator(["a red circle"] * 30, vocab_size=300)
    mask = word_token_mask(tokenizer, ["a red circle"])
    assert mask[0].tolist() == [False, True, True, True, False, False, False, False]


# ------------------------------------------------------------------ on the shipped teacher
@pytest.fixture(scope="module")
def teacher():
    return StableDiffusionPipeline.from_pretrained(PROJECT_ROOT / "data" / "06_models" / "embedded_teacher",
                                                   local_files_only=True, use_safetensors=True)


def world_probe(teacher, n=12, timesteps=(300, 600), seed=0):
    spec = WorldSpec()
    images, meta = make_world_images(spec, "eval", n, seed=seed)
    latents, _ = encode_latents(teacher.vae, images_to_tensor(images))
    prompts = list(meta.text)
    rows = [(i, t) for t in timesteps for i in range(n)]
    index, steps = torch.tensor([i for i, _ in rows]), torch.tensor([t for _, t in rows])
    noise = torch.randn((len(rows), *latents.shape[1:]), generator=torch.Generator().manual_seed(seed))
    noisy = sd_v1_noise_scheduler().add_noise(latents[index], noise, steps)
    text = encode_prompts(teacher.tokenizer, teacher.text_encoder, prompts)[index]
    return SimilarityProbe(noisy, steps, text, word_token_mask(teacher.tokenizer, prompts)[index]), images, meta, index


def test_phi_falls_as_more_is_removed(teacher):
    probe, *_ = world_probe(teacher, n=16, timesteps=(200, 500, 800))
    parent = teacher.unet
    space = ArchitectureSpace(dict(parent.config))
    parent_maps = attention_maps(parent, probe)
    rng = random.Random(0)
    removed, phis = [], []
    while len(phis) < 30:
        genome = tuple(int(rng.random() < rng.choice([0.1, 0.3, 0.5])) for _ in space.units)
        if not space.is_valid(genome) or space.canonical(genome) == space.empty():
            continue
        candidate = prune(parent, genome, space)
        phis.append(semantic_similarity(parent, candidate, probe, parent_maps))
        removed.append(count_params(dict(parent.config)) - count_params(space.child_config(genome)))
    rho = spearmanr(removed, phis).statistic
    # Measured here: -0.53 (attention units are small in parameters but large in Phi, so it is not -1).
    assert rho < -0.4, (rho, list(zip(removed, phis)))


@pytest.mark.xfail(strict=True, reason=(
    "open finding: the embedded teacher's word maps localise only weakly (median 1.08x inside the object, "
    "chance 1.0; also with a 2-layer text encoder: 1.07x), so this must of the search issue does not hold yet"))
def test_teacher_maps_for_the_shape_word_sit_on_the_object(teacher):
    probe, images, meta, index = world_probe(teacher, n=24, timesteps=(400,))
    maps = attention_maps(teacher.unet, probe)  # N x T x 8 x 8
    spec = WorldSpec()
    ratios = []
    for row, i in enumerate(index.tolist()):
        tokens = teacher.tokenizer.tokenize(meta.text[i])
        position = tokens.index(f"{meta['shape'][i]}</w>") + 1  # + start token
        pixels = np.asarray(images[i], dtype=np.int16)
        background = np.array(spec.backgrounds[meta["background"][i]], dtype=np.int16)
        on_object = np.abs(pixels - background).sum(-1) > 60
        mask = torch.nn.functional.adaptive_avg_pool2d(torch.tensor(on_object, dtype=torch.float32)[None, None], 8)[0, 0]
        word_map = maps[row, position]
        inside = (word_map * mask).sum() / mask.sum()
        ratios.append(float(inside / word_map.mean()))
    # chance is 1.0 (a map that ignores the object puts the same mean attention inside as overall)
    assert np.median(ratios) > 1.5, ratios
