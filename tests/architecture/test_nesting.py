import random

import pytest
import torch
from diffusers import UNet2DConditionModel

from delta_diff.architecture import (
    ArchitectureError,
    ArchitectureSpace,
    NestedSpace,
    count_params,
    equal_budgets,
    preset_genome,
    prune,
    relative_genome,
)

from tests.conftest import tiny_unet_config


def test_relative_genome_reproduces_the_teacher_coordinates_prune(tiny_unet):
    space = ArchitectureSpace(dict(tiny_unet.config))
    student = preset_genome(space, "bk-sdm-tiny")
    rng = random.Random(0)
    free = [i for i, b in enumerate(student) if b]
    for _ in range(5):
        base = list(space.empty())
        for i in rng.sample(free, 2):
            base[i] = 1
        base = tuple(base)
        if not space.is_valid(base):
            continue
        parent = prune(tiny_unet, base, space)
        via_parent = prune(parent, relative_genome(space, base, student))
        direct = prune(tiny_unet, student, space)
        a, b = via_parent.state_dict(), direct.state_dict()
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_nested_space_only_varies_what_the_student_removes_beyond_the_parent(sd_v1_4_config):
    space = ArchitectureSpace(sd_v1_4_config)
    student = preset_genome(space, "bk-sdm-small")
    base = space.from_keys(["mid"])
    nested = NestedSpace(space, base, student)
    assert "mid" not in [u.key for u in nested.units] and len(nested) == 4  # the four pairs of levels 0-3
    everything = tuple(1 for _ in nested.units)
    assert nested.to_full(everything) == student
    assert count_params(nested.child_config(everything)) == 482_346_884


def test_unreachable_student_is_refused(sd_v1_4_config):
    space = ArchitectureSpace(sd_v1_4_config)
    with pytest.raises(ArchitectureError, match="not reachable"):
        NestedSpace(space, space.from_keys(["up_attn:0.0"]), preset_genome(space, "bk-sdm-small"))


def test_equal_budgets_step_down_to_the_student():
    assert equal_budgets(900, 300, 3) == [700, 500, 300]
    with pytest.raises(ValueError, match="not smaller"):
        equal_budgets(300, 300, 2)
