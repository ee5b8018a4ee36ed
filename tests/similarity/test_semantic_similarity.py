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
    # Every held-out composition, as when these tests were calibrated (search_fraction 0: no search share). On
    # evaluate's two thirds alone, seed 0, the colour word's median drops to -0.19 (seeds 1, 2: 0.29, 0.14; the
    # whole held-out set: 0.33, 0.48, 0.33): colour-word localisation varies a lot between compositions.
    spec = WorldSpec(search_fraction=0.0)
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


def object_masks(images, meta, index, resolution=8):
    """Per probe row, the share of each map cell covered by the object (pixels that differ from the background)."""
    spec = WorldSpec(search_fraction=0.0)
    masks = []
    for i in index.tolist():
        pixels = np.asarray(images[i], dtype=np.int16)
        background = np.array(spec.backgrounds[meta["background"][i]], dtype=np.int16)
        on_object = torch.tensor(np.abs(pixels - background).sum(-1) > 60, dtype=torch.float32)
        masks.append(torch.nn.functional.adaptive_avg_pool2d(on_object[None, None], resolution)[0, 0])
    return torch.stack(masks)


def word_maps(teacher, maps, meta, index, attribute):
    """Per probe row, the map of the token naming the object's ``attribute`` (e.g. its shape word)."""
    rows = []
    for row, i in enumerate(index.tolist()):
        tokens = teacher.tokenizer.tokenize(meta.text[i])
        rows.append(maps[row, tokens.index(f"{meta[attribute][i]}</w>") + 1])  # + 1: the start token
    return torch.stack(rows)


def spatial_pearson(a, b):
    a, b = a.flatten(1) - a.flatten(1).mean(1, keepdim=True), b.flatten(1) - b.flatten(1).mean(1, keepdim=True)
    return (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1)).clamp_min(1e-12)


@pytest.mark.parametrize("attribute", ["shape", "colour"])
def test_teacher_maps_for_object_words_sit_on_the_object(teacher, attribute):
    """Where a word's map is high must follow the object of *its own* image, far more than another image's object.

    The measure is the spatial Pearson correlation of the word's map with the object mask, against a chance level
    from the same maps paired with the other images' masks (objects sit at 5 positions in 2 sizes, so a map that
    ignored its image would score the same on both). Shift- and scale-free on purpose: this teacher's
    cross-attention is close to uniform over tokens (each word gets ~1/16 of the mass at every position; the share
    of a word's mass inside the object is only ~1.08x its share overall), and the spatial pattern on top of that
    flat floor is what Phi compares. Measured here (48 prompts, t in {100, 400, 700}): shape word 0.50-0.54,
    colour word 0.30-0.49, chance ~0.
    """
    probe, images, meta, index = world_probe(teacher, n=24, timesteps=(400,))
    maps = word_maps(teacher, attention_maps(teacher.unet, probe), meta, index, attribute)
    masks = object_masks(images, meta, index)
    own = spatial_pearson(maps, masks)
    others = torch.stack([spatial_pearson(maps, masks.roll(shift, 0)) for shift in range(1, len(masks))])
    chance = float(others.median())
    assert float(own.median()) > 0.3 and float(own.median()) - chance > 0.25, (float(own.median()), chance)


def test_the_background_word_attends_around_the_object(teacher):
    probe, images, meta, index = world_probe(teacher, n=24, timesteps=(400,))
    maps = word_maps(teacher, attention_maps(teacher.unet, probe), meta, index, "background")
    own = spatial_pearson(maps, 1 - object_masks(images, meta, index))
    assert float(own.median()) > 0.5, own
