import random

import pytest
import torch
from diffusers import UNet2DConditionModel

from delta_diff.architecture import ArchitectureError, ArchitectureSpace, count_params, preset_genome, prune


def params_of(model) -> int:
    return sum(p.numel() for p in model.parameters())


def test_bk_sdm_base_inherits_every_weight_with_bk_sdm_mapping(tiny_unet):
    space = ArchitectureSpace(dict(tiny_unet.config))
    child = prune(tiny_unet, preset_genome(space, "bk-sdm-base"), space)
    parent_state, child_state = tiny_unet.state_dict(), child.state_dict()
    # Written out by hand (not through the library's module map): down keeps layer 0, up keeps layers 0 and 2.
    expected_source = {}
    for key in child_state:
        source = key
        for block in ("up_blocks.0", "up_blocks.1", "up_blocks.2", "up_blocks.3"):
            for part in ("resnets", "attentions"):
                if key.startswith(f"{block}.{part}.1."):
                    source = key.replace(f"{block}.{part}.1.", f"{block}.{part}.2.", 1)
        expected_source[key] = source
    for key, tensor in child_state.items():
        assert torch.equal(tensor, parent_state[expected_source[key]]), key
    assert params_of(child) == count_params(dict(child.config))
    assert len(child.up_blocks[3].resnets) == 2 and len(child.down_blocks[0].resnets) == 1


def test_tiny_preset_drops_the_innermost_stage_and_keeps_the_rest(tiny_unet):
    space = ArchitectureSpace(dict(tiny_unet.config))
    child = prune(tiny_unet, preset_genome(space, "bk-sdm-tiny"), space)
    assert len(child.down_blocks) == 3 and child.mid_block is None
    # Child up_blocks.0 is parent up_blocks.1 (parent up_blocks.0 mirrored the removed stage).
    torch.testing.assert_close(
        child.up_blocks[0].resnets[1].conv1.weight, tiny_unet.up_blocks[1].resnets[2].conv1.weight, rtol=0, atol=0
    )
    torch.testing.assert_close(child.conv_out.weight, tiny_unet.conv_out.weight, rtol=0, atol=0)


def test_pruning_leaves_the_parent_untouched_and_copies_tensors(tiny_unet):
    before = {k: v.clone() for k, v in tiny_unet.state_dict().items()}
    space = ArchitectureSpace(dict(tiny_unet.config))
    child = prune(tiny_unet, preset_genome(space, "bk-sdm-small"), space)
    with torch.no_grad():
        for p in child.parameters():
            p.add_(1.0)
    after = tiny_unet.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not child.training and child.dtype == tiny_unet.dtype


@pytest.mark.parametrize("seed", range(6))
def test_random_genomes_prune_run_chain_and_round_trip(tiny_unet, unet_inputs, tmp_path, seed):
    rng = random.Random(seed)
    space = ArchitectureSpace(dict(tiny_unet.config))
    first = next(g for g in (tuple(rng.randint(0, 1) for _ in space.units) for _ in range(100)) if space.is_valid(g))
    child = prune(tiny_unet, first, space)
    assert params_of(child) == count_params(space.child_config(first))
    with torch.no_grad():
        assert child(*unet_inputs).sample.shape == unet_inputs[0].shape

    child_space = ArchitectureSpace(dict(child.config))
    second = next(g for g in (tuple(rng.randint(0, 1) for _ in child_space.units) for _ in range(100)) if child_space.is_valid(g))
    grandchild = prune(child, second, child_space)
    direct = prune(tiny_unet, space.compose(first, second), space)
    chained, one_step = grandchild.state_dict(), direct.state_dict()
    assert chained.keys() == one_step.keys()
    assert all(torch.equal(chained[k], one_step[k]) for k in chained)

    grandchild.save_pretrained(tmp_path)
    loaded = UNet2DConditionModel.from_pretrained(tmp_path, use_safetensors=True)
    with torch.no_grad():
        torch.testing.assert_close(loaded(*unet_inputs).sample, grandchild(*unet_inputs).sample)


def test_bad_genome_fails_before_any_model_is_built(tiny_unet, monkeypatch):
    built = []
    monkeypatch.setattr(UNet2DConditionModel, "from_config", classmethod(lambda cls, *a, **k: built.append(1)))
    space = ArchitectureSpace(dict(tiny_unet.config))
    with pytest.raises(ArchitectureError, match="genes"):
        prune(tiny_unet, (1, 0), space)
    assert built == []


def test_counting_an_860m_config_is_fast_and_allocates_nothing(sd_v1_4_config):
    import time

    start = time.perf_counter()
    assert count_params(dict(sd_v1_4_config, sample_size=65)) == 859_520_964  # new key: not cached
    assert time.perf_counter() - start < 10
