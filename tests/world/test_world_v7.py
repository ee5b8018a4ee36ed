"""World v7 (conf/world_v7): two counted groups of objects at free places; v1-v6 unchanged."""

import random

import numpy as np
import pytest
from scipy import ndimage

from delta_diff.world import (
    COUNT_ATTRIBUTES,
    CountScene,
    WorldSpec,
    caption,
    make_prompt_set,
    make_world_images,
    parse_caption,
    render_scene,
)
from delta_diff.world.generate import free_centres, sample_scenes

from tests.conftest import project_parameters
from tests.world.test_world_v2 import (assert_own_paths_and_checkpoints,
                                      assert_presets_remove_what_they_remove_of_sd_v1_4)

EARLIER_ENVS = ("base", "world_v2", "world_v3", "world_v4", "world_v5", "world_v6")


@pytest.fixture(scope="module")
def params() -> dict:
    return project_parameters("world_v7")


@pytest.fixture(scope="module")
def spec(params) -> WorldSpec:
    return WorldSpec(**params["world"])


def test_v7_has_two_counted_groups_and_the_first_groups_colour_comes_first(spec):
    assert spec.attributes == COUNT_ATTRIBUTES and spec.values("second_count") == ["one", "two", "three", "four"]
    assert spec.n_combinations == 4 * 3 * 4 * 3 * 28 * 4  # counts, shapes, 28 ordered colour pairs, backgrounds
    colours = list(spec.colours)
    first, second = spec.attributes.index("first_colour"), spec.attributes.index("second_colour")
    assert all(colours.index(c[first]) < colours.index(c[second]) for c in spec.combinations())


def test_v7_splits_are_disjoint_and_images_and_prompts_come_from_their_own(spec):
    split = {k: set(v) for k, v in spec.split().items()}
    assert split["train"].isdisjoint(split["eval"]) and split["train"].isdisjoint(split["search"])
    assert split["eval"].isdisjoint(split["search"]) and len(split["eval"]) == 1075 and len(split["search"]) == 538
    _, meta = make_world_images(spec, "train", 200, 0)
    assert {tuple(r[a] for a in COUNT_ATTRIBUTES) for r in meta.to_dict("records")} <= split["train"]
    for name in ("eval", "search"):
        prompts = make_prompt_set(spec, name, 96, 1000)
        assert {tuple(r[a] for a in COUNT_ATTRIBUTES) for r in prompts.to_dict("records")} <= split[name]


def test_v7_captions_parse_back_for_every_composition(spec):
    for combination in spec.combinations():
        values = dict(zip(COUNT_ATTRIBUTES, combination))
        text = caption(CountScene(values))
        assert parse_caption(text, spec) == values, text
    values = dict(zip(COUNT_ATTRIBUTES, ("one", "red", "circle", "three", "blue", "square", "white")))
    assert caption(CountScene(values)) == "one red circle and three blue squares on a white background"


def test_a_caption_naming_one_group_or_a_word_twice_leaves_those_attributes_unknown(spec):
    found = parse_caption("two red circles on a white background", spec)
    assert found["background"] == "white" and found["first_count"] is None and found["second_shape"] is None
    found = parse_caption("two red blue circles and one green square on a black background", spec)
    assert found["first_colour"] is None and found["second_colour"] == "green" and found["first_count"] == "two"


def test_each_group_is_drawn_as_many_times_as_its_count_and_no_two_objects_touch(spec):
    # drawn at 64 px so that antialiased edges cannot join two objects; the groups' colours are told apart by
    # nearest colour, so each connected blob of one colour is one object
    big = WorldSpec(**{**spec.model_dump(), "image_size": 64})
    palette = np.array(list(big.colours.values()) + list(big.backgrounds.values()), dtype=float)
    names = list(big.colours) + [f"bg:{b}" for b in big.backgrounds]
    for scene in sample_scenes(big, "train", 40, 3):
        pixels = np.asarray(render_scene(scene, big), dtype=float)
        nearest = np.argmin(((pixels[:, :, None, :] - palette[None, None]) ** 2).sum(-1), axis=-1)
        values = scene.attributes()
        for group in ("first", "second"):
            mask = nearest == names.index(values[f"{group}_colour"])
            blobs, n_blobs = ndimage.label(ndimage.binary_opening(mask))
            assert n_blobs == big.count_of(values[f"{group}_count"]), (values, group)


def test_free_centres_keep_every_object_inside_and_apart():
    spec = WorldSpec(layout="count", count_object_size=0.18)
    rng = random.Random(0)
    reach = 0.09 * 1.25 * 1.07
    for _ in range(200):
        centres = np.array(free_centres(spec, 8, rng))
        assert ((centres >= reach) & (centres <= 1 - reach)).all()
        distances = np.linalg.norm(centres[:, None] - centres[None], axis=-1) + np.eye(8)
        assert distances.min() >= 2 * reach + 0.04 - 1e-9


@pytest.mark.parametrize(("change", "key"), [
    ({"counts": ["one", "seven"]}, "world.counts"),
    ({"count_object_size": 0.4}, "world.count_object_size"),
    ({"colours": {"red": [1, 2, 3]}}, "world.colours"),
])
def test_a_bad_count_world_is_refused_naming_the_key(change, key):
    with pytest.raises(ValueError, match=key):
        WorldSpec(layout="count", **change)


def test_objects_that_cannot_fit_are_refused_naming_the_key():
    spec = WorldSpec(layout="count", count_object_size=0.25, counts=["one", "two", "three", "four", "five", "six"])
    with pytest.raises(ValueError, match="count_object_size"):
        free_centres(spec, 12, random.Random(0))


def test_v7_captions_fit_its_tokenizer(params, spec):
    words = max(len(t.split()) for t in make_prompt_set(spec, "eval", 500, 0).text)
    assert words + 2 <= params["teacher"]["tokenizer"]["max_length"]


def test_v7_has_its_own_paths_and_checkpoints():
    assert_own_paths_and_checkpoints("world_v7", EARLIER_ENVS)


def test_v7_unet_presets_remove_what_they_remove_of_sd_v1_4(params):
    assert_presets_remove_what_they_remove_of_sd_v1_4(params)
