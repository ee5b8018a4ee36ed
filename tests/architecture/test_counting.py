import random

import pytest

from delta_diff.architecture import ArchitectureSpace, SubSpace, count_params
from delta_diff.architecture.counting import ParamCounter, param_counter

from tests.conftest import tiny_unet_config


def random_genomes(space, n, seed=0):
    rng = random.Random(seed)
    found = []
    while len(found) < n:
        genome = tuple(int(rng.random() < rng.choice([0.1, 0.3, 0.6])) for _ in space.units)
        if space.is_valid(genome):
            found.append(genome)
    return found


@pytest.mark.parametrize("config", ["tiny", "sd_v1_4", "sd_v2"])
def test_fast_counts_equal_meta_device_counts(config, sd_v1_4_config, sd_v2_config):
    space = ArchitectureSpace({"tiny": tiny_unet_config(), "sd_v1_4": sd_v1_4_config, "sd_v2": sd_v2_config}[config])
    counter = ParamCounter(space)
    for genome in random_genomes(space, 40):
        assert counter(genome) == count_params(space.child_config(genome)), space.removed_keys(genome)


def test_fast_counts_in_a_restricted_space_and_one_counter_per_space():
    full = ArchitectureSpace(tiny_unet_config())
    base = tuple(int(u.key == "mid") for u in full.units)
    space = SubSpace(full, ["pair:0.1", "down_attn:1.0", "up_attn:2.2", "stage:3"], base=base)
    counter = param_counter(space)
    assert param_counter(space) is counter
    for genome in space.enumerate():
        assert counter(genome) == count_params(space.child_config(genome))
