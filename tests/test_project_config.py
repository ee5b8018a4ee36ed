"""The project's configuration outside a session (src/delta_diff/project_config.py)."""

from delta_diff.project_config import load_project_config

from tests.conftest import PROJECT_ROOT

CONF = PROJECT_ROOT / "conf"


def test_an_environment_is_merged_over_base_with_its_globals_resolved():
    base, v4 = (load_project_config(CONF, "catalog", env) for env in (None, "world_v4"))
    assert base["results_table"]["filepath"] == "data/08_reporting/results.csv"
    assert v4["results_table"]["filepath"] == "data/08_reporting/world_v4/results.csv"
    assert v4["embedded_teacher"]["filepath"] == "data/06_models/embedded_teacher_v4"
    parameters = load_project_config(CONF, "parameters", "world_v4")
    assert parameters["data_prep"]["training_images"]["folder"] == "data/01_raw/world_v4_distill"
    assert parameters["world"]["layout"] == "pair"  # conf/world_v4, deep-merged: base's other world keys stay
    assert "image_size" in parameters["world"]


def test_the_project_resolvers_derive_the_baseline_steps():
    parameters = load_project_config(CONF, "parameters")
    distill, n_stages = parameters["distill_stage"], parameters["path"]["n_stages"]
    assert distill["baseline"]["distillation"]["steps"] == n_stages * distill["stage"]["distillation"]["steps"]
