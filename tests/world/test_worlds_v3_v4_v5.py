"""Worlds v3, v4 and v5 (conf/world_v3, _v4, _v5): v2 with 8 colours (near neighbours) and 3 sizes; v4 and v5 are
the same world with a teacher of 3/4 and 1/2 v3's width. Their shipped teachers and scorers."""

from pathlib import Path

import pandas as pd
import pytest
from diffusers import StableDiffusionPipeline

from delta_diff.architecture import ArchitectureSpace, count_params, preset_genome
from delta_diff.scoring import AttributeClassifier, WorldScorer
from delta_diff.world import PairScene, WorldSpec, caption, parse_caption, render_scene

from tests.conftest import PROJECT_ROOT, project_file_paths, project_parameters
from tests.world.test_world_v2 import SD_REDUCTION, SHARED_BY_ALL_WORLDS

MODELS = PROJECT_ROOT / "data" / "06_models"
WORLDS = ["world_v3", "world_v4", "world_v5"]
EARLIER_ENVS = {"world_v3": ("base", "world_v2"), "world_v4": ("base", "world_v2", "world_v3"),
                "world_v5": ("base", "world_v2", "world_v3", "world_v4")}


def _shipped(kind: str, env: str) -> Path:
    return MODELS / f"{kind}_{env.removeprefix('world_')}"


@pytest.fixture(scope="module", params=WORLDS)
def env(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def params(env) -> dict:
    return project_parameters(env)


@pytest.fixture(scope="module")
def spec(params) -> WorldSpec:
    return WorldSpec(**params["world"])


def test_world_has_eight_colours_three_sizes_and_its_own_paths_and_checkpoints(env, spec):
    assert len(spec.colours) == 8 and set(spec.sizes) == {"small", "medium", "large"}
    paths = project_file_paths(env)
    assert paths["embedded_teacher"] == f"data/06_models/embedded_teacher_{env.removeprefix('world_')}"
    earlier_paths = set().union(*(project_file_paths(e).values() for e in EARLIER_ENVS[env]))
    shared = (earlier_paths & set(paths.values())) - SHARED_BY_ALL_WORLDS
    assert shared == set(), f"{env} would overwrite an earlier world's files: {shared}"
    def checkpoint_dirs(of_env: str) -> set[str]:
        teacher = project_parameters(of_env)["teacher"]
        return {teacher[part].get("checkpoint_dir") for part in ("vae", "scorer", "unet")} - {None}

    earlier = set().union(*(checkpoint_dirs(e) for e in EARLIER_ENVS[env]))
    assert checkpoint_dirs(env).isdisjoint(earlier), f"{env} would resume an earlier teacher's checkpoints"


@pytest.mark.parametrize("narrower, width", [("world_v4", (3, 4)), ("world_v5", (1, 2))])
def test_v4_and_v5_are_v3_world_with_a_narrower_teacher(narrower, width):
    v3, other = project_parameters("world_v3"), project_parameters(narrower)
    assert other["world"] == v3["world"]
    numerator, denominator = width
    assert other["teacher"]["unet"]["model"]["block_out_channels"] == [
        c * numerator // denominator for c in v3["teacher"]["unet"]["model"]["block_out_channels"]]


def test_shipped_teacher_is_a_stock_pipeline_that_bk_sdm_cuts_as_sd_v1_4(env, params):
    folder = _shipped("embedded_teacher", env)
    if not (folder / "model_index.json").is_file():
        pytest.skip(f"{env} teacher not shipped here")
    pipeline = StableDiffusionPipeline.from_pretrained(folder, local_files_only=True, use_safetensors=True)
    config = dict(pipeline.unet.config)
    assert list(config["block_out_channels"]) == params["teacher"]["unet"]["model"]["block_out_channels"]
    space, total = ArchitectureSpace(config), count_params(config)
    for preset, sd in SD_REDUCTION.items():
        removed = 100 * (1 - count_params(space.child_config(preset_genome(space, preset))) / total)
        assert abs(removed - sd) <= 2.0, (preset, removed, sd)


def test_shipped_scorer_tells_near_colours_and_the_middle_size_apart(env, spec):
    folder = _shipped("world_scorer", env)
    if not (folder / "config.json").is_file():
        pytest.skip(f"{env} scorer not shipped here")
    scorer = WorldScorer(AttributeClassifier.from_pretrained(folder), lambda p: parse_caption(p, spec))
    rows = []
    for (a, b), size in ((("red", "orange"), "medium"), (("blue", "cyan"), "large"), (("brown", "magenta"), "small")):
        good = PairScene("square", a, size, "circle", b, size, "white")
        swapped = PairScene("square", b, size, "circle", a, size, "white")
        result = scorer.score([render_scene(good, spec), render_scene(swapped, spec)], [caption(good)] * 2)
        rows.append(result.per_image)
    table = pd.concat(rows)
    assert table.left_colour_ok.tolist() == [True, False] * 3 and table.right_colour_ok.tolist() == [True, False] * 3
    assert table.left_size_ok.all() and table.right_size_ok.all()
