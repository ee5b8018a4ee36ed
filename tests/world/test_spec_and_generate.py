import io

import pytest
from pydantic import ValidationError

from delta_diff.world import ATTRIBUTES, Scene, WorldSpec, caption, make_prompt_set, make_world_images, parse_caption
from delta_diff.world.captions import TEMPLATES


def png_bytes(image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_generation_is_deterministic():
    spec = WorldSpec()
    first_images, first_meta = make_world_images(spec, "train", 40, seed=3)
    again_images, again_meta = make_world_images(spec, "train", 40, seed=3)
    other_images, _ = make_world_images(spec, "train", 40, seed=4)
    assert first_meta.equals(again_meta)
    assert [png_bytes(i) for i in first_images] == [png_bytes(i) for i in again_images]
    assert [png_bytes(i) for i in first_images] != [png_bytes(i) for i in other_images]
    assert list(first_meta.columns[:2]) == ["file_name", "text"] and set(ATTRIBUTES) <= set(first_meta.columns)


def test_held_out_combinations_never_appear_in_training():
    spec = WorldSpec()
    split = spec.split()
    assert split["eval"] and not set(split["eval"]) & set(split["train"])
    _, train_meta = make_world_images(spec, "train", 2000, seed=0)
    seen = set(map(tuple, train_meta[list(ATTRIBUTES)].itertuples(index=False)))
    assert not seen & set(split["eval"])
    for position, attribute in enumerate(ATTRIBUTES):  # every single value is still taught
        assert {combo[position] for combo in split["train"]} == set(spec.values(attribute))


def test_search_and_eval_combinations_are_disjoint_held_out_sets():
    spec = WorldSpec()
    split = spec.split()
    train, search, evaluation = (set(split[k]) for k in ("train", "search", "eval"))
    assert search and evaluation and not search & evaluation and not (search | evaluation) & train
    assert len(search | evaluation | train) == len(spec.combinations())
    assert len(search) == round((len(search) + len(evaluation)) * spec.search_fraction)
    # The search's share comes out of the held-out block, never out of training (the shipped teacher's split).
    assert set(WorldSpec(search_fraction=0.0).split()["train"]) == train
    search_prompts = make_prompt_set(spec, "search", 40, seed=2000)
    assert {tuple(row) for row in search_prompts[list(ATTRIBUTES)].itertuples(index=False)} <= search


def test_an_empty_search_split_is_refused_naming_the_key():
    with pytest.raises(ValueError, match="search_fraction"):
        make_prompt_set(WorldSpec(search_fraction=0.0), "search", 4, seed=2000)
    with pytest.raises(ValueError, match="world.search_fraction"):
        WorldSpec(search_fraction=1.0)


@pytest.mark.parametrize("template", range(len(TEMPLATES)))
def test_every_caption_template_parses_back(template):
    spec = WorldSpec()
    for combo in spec.combinations()[::37]:
        scene = Scene(**dict(zip(ATTRIBUTES, combo)))
        assert parse_caption(caption(scene, template), spec) == scene.attributes()


def test_eval_prompts_cover_held_out_combinations_with_seeds():
    spec = WorldSpec()
    prompts = make_prompt_set(spec, "eval", 60, seed=1000)
    held_out = set(spec.split()["eval"])
    assert {tuple(row) for row in prompts[list(ATTRIBUTES)].itertuples(index=False)} == held_out
    assert list(prompts.seed) == list(range(1000, 1060))


def test_images_have_the_background_and_object_colour():
    spec = WorldSpec()
    image = make_world_images(spec, "train", 1, seed=0)[0][0]
    _, meta = make_world_images(spec, "train", 1, seed=0)
    corner = image.getpixel((0, 0)) if meta.position[0] != "top left" else image.getpixel((31, 31))
    assert corner == tuple(spec.backgrounds[meta.background[0]])
    assert tuple(spec.colours[meta.colour[0]]) in [c for _, c in image.getcolors(4096)]


@pytest.mark.parametrize(
    "change,message",
    [({"positions": ["middle"]}, "not drawable"), ({"image_size": 8}, "too small"),
     ({"held_out_fraction": 1.5}, "held_out_fraction"), ({"shapes": ["red"]}, "must all differ"),
     ({"colour": {}}, "Extra inputs")],
)
def test_bad_world_spec_is_rejected(change, message):
    with pytest.raises(ValidationError, match=message):
        WorldSpec(**change)
