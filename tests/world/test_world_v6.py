"""World v6 (conf/world_v6): four objects, one per quadrant, 107 M compositions split by hash; v1-v5 unchanged."""

import random
from collections import Counter

import numpy as np
import pytest

from delta_diff.world import (
    QUAD_ATTRIBUTES,
    QUAD_SLOTS,
    QuadScene,
    WorldSpec,
    make_prompt_set,
    make_world_images,
    parse_caption,
    render_scene,
)

from tests.conftest import project_parameters
from tests.world.test_world_v2 import (assert_own_paths_and_checkpoints,
                                      assert_presets_remove_what_they_remove_of_sd_v1_4)

EARLIER_ENVS = ("base", "world_v2", "world_v3", "world_v4", "world_v5")


@pytest.fixture(scope="module")
def params() -> dict:
    return project_parameters("world_v6")


@pytest.fixture(scope="module")
def spec(params) -> WorldSpec:
    return WorldSpec(**params["world"])


def _combination(scene_values: dict) -> tuple[str, ...]:
    return tuple(scene_values[a] for a in QUAD_ATTRIBUTES)


def test_v6_has_four_objects_of_v3s_vocabulary_and_too_many_compositions_to_list(spec):
    assert spec.attributes == QUAD_ATTRIBUTES and len(QUAD_ATTRIBUTES) == 13
    assert spec.n_combinations == 72 ** 4 * 4
    with pytest.raises(ValueError, match="too many to list"):
        spec.split()


def test_v6_hashed_split_is_disjoint_fixed_and_of_the_configured_shares(spec):
    rng = random.Random(0)
    combos = [tuple(rng.choice(spec.values(a)) for a in spec.attributes) for _ in range(30_000)]
    splits = [spec.split_of(c) for c in combos]
    assert splits == [spec.split_of(c) for c in combos]  # the same every call
    shares = {k: v / len(combos) for k, v in Counter(splits).items()}
    for split in ("train", "search", "eval"):  # 30,000 draws: a share's std is <= 0.002
        assert abs(shares[split] - spec.split_share(split)) < 0.01, (split, shares)
    other_seed = WorldSpec(**{**spec.model_dump(), "split_seed": 1})
    assert sum(spec.split_of(c) != other_seed.split_of(c) for c in combos[:1000]) > 100


def test_v6_images_and_prompts_come_from_their_own_splits(spec):
    images, meta = make_world_images(spec, "train", 300, seed=0)
    assert all(spec.split_of(c) == "train" for c in meta[list(QUAD_ATTRIBUTES)].itertuples(index=False, name=None))
    evaluation = make_prompt_set(spec, "eval", 96, seed=1000)
    search = make_prompt_set(spec, "search", 96, seed=2000)
    for prompts, split in ((evaluation, "eval"), (search, "search")):
        combos = list(prompts[list(QUAD_ATTRIBUTES)].itertuples(index=False, name=None))
        assert len(set(combos)) == 96 and all(spec.split_of(c) == split for c in combos)
    assert not set(evaluation.text) & set(search.text)
    again_images, again_meta = make_world_images(spec, "train", 300, seed=0)
    assert meta.equals(again_meta) and [i.tobytes() for i in images] == [i.tobytes() for i in again_images]


def test_an_empty_hashed_split_is_refused_naming_the_key(spec):
    no_search = WorldSpec(**{**spec.model_dump(), "search_fraction": 0.0})
    with pytest.raises(ValueError, match="world.search_fraction"):
        make_prompt_set(no_search, "search", 4, seed=0)


def test_v6_captions_parse_back(spec):
    _, meta = make_world_images(spec, "train", 50, seed=1)
    for text, row in zip(meta.text, meta[list(QUAD_ATTRIBUTES)].to_dict(orient="records")):
        assert parse_caption(text, spec) == row
    one = parse_caption("a small red circle at the bottom right on a gray background", spec)
    assert one["bottom_right_colour"] == "red" and one["top_left_shape"] is None and one["background"] == "gray"


def test_each_object_stays_in_its_quadrant_at_its_largest(spec):
    """Each object alone (the other three drawn in the background's colour), large, at the largest scale,
    pushed towards the image's centre and turned as far as the jitter goes: outside its quadrant the image is
    background up to resampling ringing, so no object spills into a neighbour's (the scorer reads each)."""
    white = tuple(spec.backgrounds["white"])
    ghostly = WorldSpec(**{**spec.model_dump(), "colours": {**spec.colours, "ghost": white}})
    inward = ((0.03, 0.03), (-0.03, 0.03), (0.03, -0.03), (-0.03, -0.03))  # generate's largest jitter
    half = spec.image_size // 2
    for k, slot in enumerate(QUAD_SLOTS):
        for shape in spec.shapes:
            for rotation in (-12.0, 12.0):
                values = {"background": "white"}
                for other in QUAD_SLOTS:
                    values.update({f"{other}_shape": shape, f"{other}_size": "large",
                                   f"{other}_colour": "red" if other == slot else "ghost"})
                scene = QuadScene(values, jitter=inward, scale=(1.07,) * 4, rotation=(rotation,) * 4)
                pixels = np.asarray(render_scene(scene, ghostly)).astype(int)
                deviation = np.abs(pixels - np.array(white)).max(-1)
                y, x = (0 if slot.startswith("top") else half), (0 if slot.endswith("left") else half)
                inside = deviation[y:y + half, x:x + half].copy()
                deviation[y:y + half, x:x + half] = 0
                assert deviation.max() <= 12, (slot, shape, rotation, deviation.max())
                assert inside.max() > 150, (slot, shape)  # the object is drawn, in its own quadrant


def test_v6_sizes_never_overlap_under_jitter(spec):
    low, high = 0.93, 1.07  # generate._sample_quad_scenes' scale range
    sizes = sorted(spec.sizes.values())
    assert all(a * high < b * low for a, b in zip(sizes, sizes[1:]))


def test_v6_captions_fit_its_tokenizer(params, spec):
    """Every colour, shape, size and background word is one token once the tokenizer has learnt the captions
    (tokens: words, commas and the start/end tokens), so no caption is cut."""
    words_and_commas = max(len(t.split()) + t.count(",") for t in make_prompt_set(spec, "eval", 200, 0).text)
    assert words_and_commas + 2 <= params["teacher"]["tokenizer"]["max_length"]


def test_v6_has_its_own_paths_and_checkpoints():
    assert_own_paths_and_checkpoints("world_v6", EARLIER_ENVS)


def test_v6_unet_presets_remove_what_they_remove_of_sd_v1_4(params):
    assert_presets_remove_what_they_remove_of_sd_v1_4(params)
