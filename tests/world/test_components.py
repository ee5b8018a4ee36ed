from delta_diff.architecture import ArchitectureSpace, count_params, preset_genome
from delta_diff.world.components import (
    TextEncoderConfig,
    TokenizerConfig,
    UNetConfig,
    VAEConfig,
    build_text_encoder,
    build_unet,
    build_vae,
    train_tokenizer,
)

from tests.conftest import SD_V1_4_CONFIG


def test_tokenizer_learns_world_words_as_single_tokens():
    captions = ["a small red circle at the top left on a white background",
                "a large blue triangle in the center on a purple background"] * 50
    tokenizer = train_tokenizer(captions, TokenizerConfig(vocab_size=400, max_length=16))
    assert tokenizer.tokenize("red circle purple") == ["red</w>", "circle</w>", "purple</w>"]
    ids = tokenizer(captions[0], padding="max_length", max_length=16).input_ids
    assert len(ids) == 16 and ids[0] == tokenizer.bos_token_id


def test_a_retrained_tokenizer_gives_every_token_the_same_id():
    """tokenizers numbers its word-end symbols in hash-map order; the teacher's text embeddings (seeded by id)
    and so the resume of its U-Net training need the same ids on every training."""
    from delta_diff.world import WorldSpec, make_world_images

    _, metadata = make_world_images(WorldSpec(), "train", 200, seed=0)
    vocabularies = [train_tokenizer(list(metadata["text"]), TokenizerConfig()).get_vocab() for _ in range(4)]
    assert all(v == vocabularies[0] for v in vocabularies)


def test_text_encoder_is_seeded_and_frozen():
    tokenizer = train_tokenizer(["a red circle"] * 20, TokenizerConfig(vocab_size=300, max_length=8))
    first = build_text_encoder(tokenizer, TextEncoderConfig(seed=3))
    second = build_text_encoder(tokenizer, TextEncoderConfig(seed=3))
    assert all((a == b).all() for a, b in zip(first.parameters(), second.parameters()))
    assert not any(p.requires_grad for p in first.parameters())


def test_world_unet_has_sd_v1_structure_so_presets_apply():
    import json

    unet = build_unet(UNetConfig(), cross_attention_dim=64, latent_channels=4, sample_size=8)
    world_space = ArchitectureSpace(dict(unet.config))
    sd_space = ArchitectureSpace(json.loads(SD_V1_4_CONFIG.read_text()))
    # Every SD v1 unit exists here; equal inner widths (64, 64, 64) also let stage 2 go.
    assert {u.key for u in sd_space.units} <= {u.key for u in world_space.units}
    for preset in ("bk-sdm-base", "bk-sdm-small", "bk-sdm-tiny"):
        assert count_params(world_space.child_config(preset_genome(world_space, preset))) < count_params(dict(unet.config))


def test_vae_downsamples_by_four():
    import torch

    vae = build_vae(VAEConfig())
    with torch.no_grad():
        latents = vae.encode(torch.zeros(1, 3, 32, 32)).latent_dist.mean
    assert latents.shape == (1, 4, 8, 8)
