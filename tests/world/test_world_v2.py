"""World v2 (conf/world_v2): two objects in left/right slots, SD's channel proportions; v1 stays as it was."""

import pandas as pd
import pytest
import yaml

from delta_diff.architecture import ArchitectureSpace, count_params, preset_genome
from delta_diff.scoring import AttributeClassifier, WorldScorer
from delta_diff.world import (
    ATTRIBUTES,
    PAIR_ATTRIBUTES,
    PairScene,
    WorldSpec,
    caption,
    make_prompt_set,
    make_world_images,
    parse_caption,
    render_scene,
)
from delta_diff.world.components import UNetConfig, build_unet

from tests.conftest import PROJECT_ROOT, project_file_paths, project_parameters

CONF = PROJECT_ROOT / "conf"
SCORER_V2 = PROJECT_ROOT / "data" / "06_models" / "world_scorer_v2"
# BK-SDM's reductions of SD v1.4's U-Net (859,520,964 params): Base 579,384,964, Small 482,346,884, Tiny 323,384,964.
SD_REDUCTION = {"bk-sdm-base": 32.6, "bk-sdm-small": 43.9, "bk-sdm-tiny": 62.4}
# Read-only inputs every world's catalog may name (SD v1.4's U-Net config, for the architecture-space report).
SHARED_BY_ALL_WORLDS = {"data/01_raw/sd_v1_4_unet_config.json"}


@pytest.fixture(scope="module")
def params() -> dict:
    return project_parameters("world_v2")


@pytest.fixture(scope="module")
def spec(params) -> WorldSpec:
    return WorldSpec(**params["world"])


def test_v1_world_is_unchanged_by_default():
    assert WorldSpec().layout == "single" and WorldSpec().attributes == ATTRIBUTES
    base = yaml.safe_load((CONF / "base" / "parameters_teacher.yml").read_text())
    assert "layout" not in base["world"]


def test_world_v2_environment_selects_the_pair_layout(spec, params):
    assert spec.layout == "pair" and spec.attributes == PAIR_ATTRIBUTES
    assert params["teacher"]["unet"]["model"]["block_out_channels"] == [32, 64, 128, 128]
    paths = project_file_paths("world_v2")
    assert paths["embedded_teacher"] == "data/06_models/embedded_teacher_v2"
    assert paths["world_scorer"] == "data/06_models/world_scorer_v2"
    shared = (set(project_file_paths().values()) & set(paths.values())) - SHARED_BY_ALL_WORLDS
    assert shared == set(), f"world v2 would overwrite v1 files: {shared}"


def test_v2_scene_renders_both_objects_on_the_background(spec):
    scene = PairScene("circle", "red", "large", "square", "blue", "small", "white")
    image = render_scene(scene, spec)
    assert image.size == (spec.image_size, spec.image_size)
    assert image.getpixel((0, 0)) == tuple(spec.backgrounds["white"])
    colours = {c for _, c in image.getcolors(4096)}
    assert tuple(spec.colours["red"]) in colours and tuple(spec.colours["blue"]) in colours
    half = spec.image_size // 2
    left = {c for _, c in image.crop((0, 0, half, spec.image_size)).getcolors(4096)}
    right = {c for _, c in image.crop((half, 0, spec.image_size, spec.image_size)).getcolors(4096)}
    assert tuple(spec.colours["red"]) in left and tuple(spec.colours["red"]) not in right
    assert tuple(spec.colours["blue"]) in right and tuple(spec.colours["blue"]) not in left


def test_v2_generation_is_deterministic_and_labelled(spec):
    images, meta = make_world_images(spec, "train", 12, seed=3)
    again, meta_again = make_world_images(spec, "train", 12, seed=3)
    assert meta.equals(meta_again) and [i.tobytes() for i in images] == [i.tobytes() for i in again]
    assert list(meta.columns[:2]) == ["file_name", "text"] and set(PAIR_ATTRIBUTES) <= set(meta.columns)


def test_v2_captions_parse_back(spec):
    for combo in spec.combinations()[::97]:
        scene = PairScene(*combo)
        assert parse_caption(caption(scene), spec) == scene.attributes()
    _, meta = make_world_images(spec, "train", 50, seed=0)
    for text, row in zip(meta.text, meta[list(PAIR_ATTRIBUTES)].to_dict(orient="records")):
        assert parse_caption(text, spec) == row
    # one object named only: the other's attributes are not asked for
    half = parse_caption("a small red circle on the left on a gray background", spec)
    assert half["left_colour"] == "red" and half["right_shape"] is None and half["background"] == "gray"


def test_v2_splits_are_disjoint_and_teach_every_value(spec):
    split = spec.split()
    held_out = set(split["eval"]) | set(split["search"])
    assert len(held_out) == round(0.1 * len(spec.combinations())) and not held_out & set(split["train"])
    assert not set(split["eval"]) & set(split["search"])
    for k, attribute in enumerate(spec.attributes):
        assert {combo[k] for combo in split["train"]} == set(spec.values(attribute))
    _, meta = make_world_images(spec, "train", 2000, seed=0)
    assert not set(map(tuple, meta[list(PAIR_ATTRIBUTES)].itertuples(index=False))) & held_out
    prompts = make_prompt_set(spec, "eval", 40, seed=1000)
    assert set(map(tuple, prompts[list(PAIR_ATTRIBUTES)].itertuples(index=False))) <= set(split["eval"])


def assert_presets_remove_what_they_remove_of_sd_v1_4(params: dict) -> None:
    """A world teacher's BK-SDM presets remove SD v1.4's shares of its U-Net, within 2 points (shared by the
    worlds' tests)."""
    unet = build_unet(UNetConfig(**params["teacher"]["unet"]["model"]), cross_attention_dim=64,
                      latent_channels=4, sample_size=8)
    config = dict(unet.config)
    space, total = ArchitectureSpace(config), count_params(config)
    for preset, sd in SD_REDUCTION.items():
        removed = 100 * (1 - count_params(space.child_config(preset_genome(space, preset))) / total)
        assert abs(removed - sd) <= 2.0, (preset, removed, sd)


def assert_own_paths_and_checkpoints(env: str, earlier_envs: tuple[str, ...]) -> None:
    """A world's catalog paths and teacher checkpoint folders are its own: none is an earlier world's (shared
    by the worlds' tests)."""
    tag = env.removeprefix("world")  # "world_v6" -> "_v6"
    paths = project_file_paths(env)
    assert paths["embedded_teacher"] == f"data/06_models/embedded_teacher{tag}"
    earlier_paths = set().union(*(project_file_paths(e).values() for e in earlier_envs))
    assert (earlier_paths & set(paths.values())) - SHARED_BY_ALL_WORLDS == set()

    def checkpoint_dirs(world: str) -> set[str]:
        teacher = project_parameters(world)["teacher"]
        return {teacher[part].get("checkpoint_dir") for part in ("vae", "scorer", "unet")} - {None}

    assert checkpoint_dirs(env).isdisjoint(set().union(*(checkpoint_dirs(e) for e in earlier_envs)))


def test_v2_unet_presets_remove_what_they_remove_of_sd_v1_4(params):
    assert_presets_remove_what_they_remove_of_sd_v1_4(params)


class _FixedClassifier(AttributeClassifier):
    """Reads the attributes of fixed scenes, so the scorer's bookkeeping is checked without a trained model."""

    def __init__(self, vocabulary, answers):
        super().__init__(vocabulary=vocabulary, image_size=32, width=8)
        self.answers = answers

    def predict(self, pixels, batch_size=512):
        return {a: [answer[a] for answer in self.answers] for a in self.attributes}


def test_v2_scorer_counts_each_objects_attributes(spec):
    right = PairScene("circle", "red", "large", "square", "blue", "small", "white")
    swapped = PairScene("circle", "blue", "large", "square", "red", "small", "white")  # colours bound wrongly
    vocabulary = {a: spec.values(a) for a in spec.attributes}
    scorer = WorldScorer(_FixedClassifier(vocabulary, [right.attributes(), swapped.attributes()]),
                         lambda p: parse_caption(p, spec))
    images = [render_scene(right, spec), render_scene(swapped, spec)]
    result = scorer.score(images, [caption(right)] * 2)
    assert list(result.per_image.score) == [1.0, pytest.approx(5 / 7)]
    assert result.summary["left_colour_accuracy"] == 0.5 and result.summary["left_shape_accuracy"] == 1.0


@pytest.mark.skipif(not (SCORER_V2 / "config.json").is_file(), reason="world v2 scorer not trained here")
def test_shipped_v2_scorer_judges_correct_and_wrong_images(spec):
    scorer = WorldScorer(AttributeClassifier.from_pretrained(SCORER_V2), lambda p: parse_caption(p, spec))
    rows = []
    for colours in (("red", "blue"), ("green", "yellow"), ("yellow", "red")):
        good = PairScene("triangle", colours[0], "large", "circle", colours[1], "large", "gray")
        wrong = PairScene("triangle", colours[1], "large", "circle", colours[0], "large", "gray")
        result = scorer.score([render_scene(good, spec), render_scene(wrong, spec)], [caption(good)] * 2)
        rows.append(result.per_image)
    table = pd.concat(rows)
    assert table.left_colour_ok.tolist() == [True, False] * 3 and table.right_colour_ok.tolist() == [True, False] * 3
    assert (table.score.iloc[::2] == 1.0).all() and (table.score.iloc[1::2] <= 5 / 7).all()
