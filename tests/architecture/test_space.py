import pytest

from delta_diff.architecture import ArchitectureError, ArchitectureSpace, preset_genome

from tests.conftest import tiny_unet_config


def small_parent() -> dict:
    """Three levels, uneven depth: 12 units, small enough to enumerate every bit pattern."""
    return tiny_unet_config(
        block_out_channels=[16, 32, 32],
        layers_per_block=[2, 1, 1],
        down_block_types=["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
        up_block_types=["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
    )


def test_units_of_sd_v1_4(sd_v1_4_config):
    space = ArchitectureSpace(sd_v1_4_config)
    keys = [u.key for u in space.units]
    assert keys[:4] == ["stage:3", "mid", "mid_attn", "pair:0.1"]
    assert {"pair:1.1", "pair:2.1", "pair:3.1"} <= set(keys)
    assert sum(k.startswith("down_attn") for k in keys) == 6 and sum(k.startswith("up_attn") for k in keys) == 9
    assert len(space) == 22


def test_sd_v1_4_space_size(sd_v1_4_config):
    assert ArchitectureSpace(sd_v1_4_config).count() == 512_000


def test_count_matches_brute_force_enumeration():
    space = ArchitectureSpace(small_parent())
    assert len(space) == 12
    enumerated = list(space.enumerate())
    assert len(enumerated) == len(set(enumerated)) == space.count()
    assert space.empty() in enumerated


def test_canonical_ignores_bits_inside_removed_units(sd_v1_4_config):
    space = ArchitectureSpace(sd_v1_4_config)
    pair_only = space.from_keys(["pair:0.1"])
    with_attention = space.from_keys(["pair:0.1", "down_attn:0.1", "up_attn:0.1"])
    assert space.canonical(with_attention) == space.canonical(pair_only)
    assert space.removed_keys(with_attention) == ["pair:0.1"]


def test_skip_connections_stay_matched(sd_v1_4_config):
    space = ArchitectureSpace(sd_v1_4_config)
    derived = space.derive(preset_genome(space, "bk-sdm-base"))
    for level in derived.structure.levels:
        assert len(level.up_attn) == len(level.down_attn) + 1
    assert derived.kept_up[0] == (0, 2)  # BK-SDM: up blocks keep teacher layers 0 and 2


def test_wrong_length_genome_is_rejected(sd_v1_4_config):
    space = ArchitectureSpace(sd_v1_4_config)
    with pytest.raises(ArchitectureError, match="genome has 3 genes but this parent has 22 units"):
        space.validate((0, 1, 0))


def test_non_binary_genome_is_rejected(sd_v1_4_config):
    space = ArchitectureSpace(sd_v1_4_config)
    with pytest.raises(ArchitectureError, match="only 0"):
        space.validate((2,) + (0,) * 21)


def test_impossible_combination_is_rejected():
    space = ArchitectureSpace(small_parent())
    # With stage 2 gone, diffusers builds the mid attention from down_attn:1.0's entry: they must agree.
    genome = space.from_keys(["stage:2", "mid_attn"])
    assert not space.is_valid(genome)
    with pytest.raises(ArchitectureError, match="impossible combination"):
        space.validate(genome)
    assert space.is_valid(space.from_keys(["stage:2", "mid_attn", "down_attn:1.0"]))


def test_unknown_unit_key_lists_the_units(sd_v1_4_config):
    space = ArchitectureSpace(sd_v1_4_config)
    with pytest.raises(ArchitectureError, match="unknown unit 'pair:9.1'.*stage:3"):
        space.parse("pair:9.1")


def test_parse_accepts_bits_and_keys(sd_v1_4_config):
    space = ArchitectureSpace(sd_v1_4_config)
    tiny = preset_genome(space, "bk-sdm-tiny")
    assert space.parse(space.to_string(tiny)) == tiny
    assert space.parse(",".join(space.removed_keys(tiny))) == tiny
    assert space.parse("none") == space.empty()


def test_child_space_is_a_subset_of_the_parent_space():
    space = ArchitectureSpace(small_parent())
    first = space.from_keys(["pair:0.1", "up_attn:1.1"])
    child = space.child_space(first)
    parent_architectures = {space.child_config(g)["block_out_channels"].__repr__() + repr(space.derive(g).structure) for g in space.enumerate()}
    for second in child.enumerate():
        composed = space.compose(first, second)
        assert space.derive(composed).structure == child.derive(second).structure
        assert repr(space.child_config(composed)["block_out_channels"]) + repr(child.derive(second).structure) in parent_architectures


def test_sd_v2_space_has_the_same_units(sd_v1_4_config, sd_v2_config):
    assert [u.key for u in ArchitectureSpace(sd_v2_config).units] == [u.key for u in ArchitectureSpace(sd_v1_4_config).units]


def test_subspace_over_every_unit_enumerates_the_whole_space():
    from delta_diff.architecture import SubSpace

    space = ArchitectureSpace(small_parent())
    sub = SubSpace(space, [u.key for u in space.units])
    assert len(list(sub.enumerate())) == space.count()
    few = SubSpace(space, ["mid", "pair:0.1"])
    assert sorted(few.enumerate()) == [(0, 0), (0, 1), (1, 0), (1, 1)]
