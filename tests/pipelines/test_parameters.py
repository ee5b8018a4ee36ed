"""Every parameter of a run is checked when it starts: unknown keys anywhere, with the nearest known key."""

import pytest
from kedro.framework.session import KedroSession

from delta_diff.pipelines.parameters import ParameterError, check_parameters

from tests.conftest import project_parameters


@pytest.mark.parametrize("env", [None, "world_v2", "world_v3", "world_v4", "world_v5", "world_v6", "world_v7", "sd_smoke"])
def test_the_shipped_environments_pass(env):
    parameters = project_parameters(env)
    if env == "sd_smoke":  # its HPS checkpoint is built by `python -m delta_diff.sd_shaped.smoke`, not shipped
        parameters["evaluate"]["hps_checkpoint"] = None
        parameters["architecture_search"]["search"]["theta"].update(scorer="world", hps_checkpoint=None)
    check_parameters(parameters)


def test_a_top_level_typo_is_refused_with_the_nearest_key():
    parameters = project_parameters()
    parameters["distil_stage"] = {"stage": {"distillation": {"steps": 4}}}
    with pytest.raises(ParameterError, match=r"distil_stage: unknown parameter; did you mean distill_stage\?"):
        check_parameters(parameters)


def test_a_typo_in_a_group_no_node_reads_is_refused_too():
    parameters = project_parameters()
    parameters["evaluate"]["n_promts"] = 3
    parameters["teacher"]["unet"]["training"]["stpes"] = 3
    with pytest.raises(ParameterError, match=r"2 bad parameter\(s\): .*evaluate.n_promts: unknown parameter; did "
                                             r"you mean evaluate.n_prompts\?.*teacher.unet.training.stpes"):
        check_parameters(parameters)


def test_a_run_with_a_misspelled_top_level_key_stops_before_any_node(kedro_project):
    with KedroSession.create(project_path=kedro_project,
                             runtime_params={"distil_stage": {"stage": {"distillation": {"steps": 4}}}}) as session:
        with pytest.raises(ParameterError, match="did you mean distill_stage"):
            session.run(pipeline_names=["distill_stage"])
    assert not (kedro_project / "data" / "05_model_input").exists()


def test_a_pinned_version_that_does_not_exist_is_refused_listing_the_saved_ones(kedro_project):
    folder = kedro_project / "data" / "05_model_input" / "prompt_sets.json"
    for version in ("2026-01-01T00.00.00.000Z", "2026-01-02T00.00.00.000Z"):
        (folder / version).mkdir(parents=True)
        (folder / version / "prompt_sets.json").write_text("{}")
    with KedroSession.create(project_path=kedro_project) as session:
        with pytest.raises(ValueError, match=r"--load-versions prompt_sets:2025-12-31T00.00.00.000Z: no such version "
                                             r".*saved versions: 2026-01-01T00.00.00.000Z, 2026-01-02T00.00.00.000Z"):
            session.run(pipeline_names=["distill_stage"], load_versions={"prompt_sets": "2025-12-31T00.00.00.000Z"})
    assert not (kedro_project / "data" / "06_models" / "bk_sdm_small").exists()


def test_scorer_images_drawn_with_the_teachers_seed_are_refused_naming_both_keys():
    parameters = project_parameters("world_v7")
    parameters["teacher"]["scorer"]["extra_images"] = {"n_images": 10, "seed": parameters["teacher"]["train_images"]["seed"]}
    with pytest.raises(ParameterError, match=r"teacher: .*scorer.extra_images.seed is 0, as teacher.train_images.seed"):
        check_parameters(parameters)
