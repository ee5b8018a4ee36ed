"""World v3 (conf/world_v3): v2 with 8 colours (near neighbours) and 3 sizes; its shipped teacher and scorer."""

import pandas as pd
import pytest
import yaml
from diffusers import StableDiffusionPipeline

from delta_diff.architecture import ArchitectureSpace, count_params, preset_genome
from delta_diff.scoring import AttributeClassifier, WorldScorer
from delta_diff.world import PairScene, WorldSpec, caption, parse_caption, render_scene

from tests.conftest import PROJECT_ROOT
from tests.world.test_world_v2 import SD_REDUCTION, env_parameters

CONF = PROJECT_ROOT / "conf"
TEACHER_V3 = PROJECT_ROOT / "data" / "06_models" / "embedded_teacher_v3"
SCORER_V3 = PROJECT_ROOT / "data" / "06_models" / "world_scorer_v3"


@pytest.fixture(scope="module")
def params() -> dict:
    return env_parameters("world_v3")


@pytest.fixture(scope="module")
def spec(params) -> WorldSpec:
    return WorldSpec(**params["world"])


def test_world_v3_has_eight_colours_three_sizes_and_its_own_paths(spec):
    assert len(spec.colours) == 8 and set(spec.sizes) == {"small", "medium", "large"}
    catalog = yaml.safe_load((CONF / "world_v3" / "catalog.yml").read_text())
    assert catalog["embedded_teacher"]["filepath"] == "data/06_models/embedded_teacher_v3"
    others = set()
    for env in ("base", "world_v2"):
        other = yaml.safe_load((CONF / env / "catalog.yml").read_text())
        others |= {other[k]["filepath"] for k in other if "filepath" in other[k]}
    shared = others & {catalog[k]["filepath"] for k in catalog if "filepath" in catalog[k]}
    assert shared == set(), f"world v3 would overwrite v1/v2 files: {shared}"


@pytest.mark.skipif(not (TEACHER_V3 / "model_index.json").is_file(), reason="world v3 teacher not shipped here")
def test_shipped_v3_teacher_is_a_stock_pipeline_that_bk_sdm_cuts_as_sd_v1_4(params):
    pipeline = StableDiffusionPipeline.from_pretrained(TEACHER_V3, local_files_only=True, use_safetensors=True)
    config = dict(pipeline.unet.config)
    assert list(config["block_out_channels"]) == params["teacher"]["unet"]["model"]["block_out_channels"]
    space, total = ArchitectureSpace(config), count_params(config)
    for preset, sd in SD_REDUCTION.items():
        removed = 100 * (1 - count_params(space.child_config(preset_genome(space, preset))) / total)
        assert abs(removed - sd) <= 2.0, (preset, removed, sd)


@pytest.mark.skipif(not (SCORER_V3 / "config.json").is_file(), reason="world v3 scorer not shipped here")
def test_shipped_v3_scorer_tells_near_colours_and_the_middle_size_apart(spec):
    scorer = WorldScorer(AttributeClassifier.from_pretrained(SCORER_V3), lambda p: parse_caption(p, spec))
    rows = []
    for (a, b), size in ((("red", "orange"), "medium"), (("blue", "cyan"), "large"), (("brown", "magenta"), "small")):
        good = PairScene("square", a, size, "circle", b, size, "white")
        swapped = PairScene("square", b, size, "circle", a, size, "white")
        result = scorer.score([render_scene(good, spec), render_scene(swapped, spec)], [caption(good)] * 2)
        rows.append(result.per_image)
    table = pd.concat(rows)
    assert table.left_colour_ok.tolist() == [True, False] * 3 and table.right_colour_ok.tolist() == [True, False] * 3
    assert table.left_size_ok.all() and table.right_size_ok.all()
