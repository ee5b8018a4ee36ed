"""The project as users run it: the registry and a real ``KedroSession`` run in a copy of the project."""

import json

import pytest
from kedro.framework.session import KedroSession


def test_registry_names_pipelines_with_nodes(kedro_project):
    from delta_diff.pipeline_registry import register_pipelines

    pipelines = register_pipelines()
    assert "architecture_search" in pipelines
    assert pipelines["__default__"].nodes
    assert all(p.nodes for p in pipelines.values())
    assert "teacher" in pipelines and not set(pipelines["teacher"].nodes) & set(pipelines["__default__"].nodes)


def test_kedro_run_reports_the_architecture_space(kedro_project):
    with KedroSession.create(project_path=kedro_project) as session:
        session.run(pipeline_names=["architecture_search"], node_names=["report_architecture_space"])
    versions = list((kedro_project / "data" / "08_reporting" / "architecture_space_report.json").iterdir())
    assert len(versions) == 1
    report = json.loads((versions[0] / "architecture_space_report.json").read_text())
    assert report["presets"]["bk-sdm-small"]["params"] == 482_346_884
    assert report["space_size"] == 512_000
    assert (kedro_project / "mlflow.db").is_file()


def test_bad_parameter_fails_before_any_node_runs(kedro_project):
    with KedroSession.create(
        project_path=kedro_project, runtime_params={"architecture_search": {"space_report": {"presets": ["bk-sdm-huge"]}}}
    ) as session:
        with pytest.raises(Exception, match="bk-sdm-huge"):
            session.run(pipeline_names=["architecture_search"], node_names=["report_architecture_space"])
    assert not (kedro_project / "data" / "08_reporting").exists()


def test_the_sd_v1_4_environment_stops_at_once_naming_what_is_missing(kedro_project):
    """Its files cannot be downloaded here: a run must stop before any node, naming the missing checkpoint."""
    import time

    start = time.perf_counter()
    with KedroSession.create(project_path=kedro_project, env="sd_v1_4") as session:
        with pytest.raises(Exception, match="HPS_v2_compressed.pt"):
            session.run(pipeline_names=["__default__"])
    assert time.perf_counter() - start < 60
    assert not (kedro_project / "data" / "05_model_input").exists()


def test_a_cache_of_another_resolution_is_refused_when_the_run_starts(kedro_project):
    """data_prep built the cache at 32 px; a later stage run that says 64 px stops before any node."""
    with KedroSession.create(project_path=kedro_project, runtime_params={
            "data_prep": {"training_images": {"n_images": 16}, "prompt_sets": {"n_train_prompts": 4,
                                                                               "n_eval_prompts": 4}}}) as session:
        session.run(pipeline_names=["data_prep"])
    with KedroSession.create(project_path=kedro_project,
                             runtime_params={"data_prep": {"cache": {"resolution": 64}}}) as session:
        with pytest.raises(ValueError, match="was built at 32 px but data_prep.cache.resolution is 64"):
            session.run(pipeline_names=["distill_stage"])
    assert not (kedro_project / "data" / "06_models" / "bk_sdm_small").exists()


def test_an_sd_teacher_with_the_world_scorer_is_refused_when_the_run_starts(kedro_project, sd_shaped_pipeline_dir):
    (kedro_project / "conf" / "local" / "catalog.yml").write_text(
        "embedded_teacher:\n  type: delta_diff.datasets.DiffusersModelDataset\n"
        f"  filepath: {sd_shaped_pipeline_dir}\n  model_class: diffusers.StableDiffusionPipeline\n")
    with KedroSession.create(project_path=kedro_project) as session:
        with pytest.raises(ValueError, match="architecture_search.search.theta.scorer is 'world'"):
            session.run(pipeline_names=["architecture_search"])
    with KedroSession.create(project_path=kedro_project) as session:
        with pytest.raises(ValueError, match="evaluate.world_score is true"):
            session.run(pipeline_names=["evaluate"])
    assert not (kedro_project / "data" / "05_model_input").exists()


@pytest.mark.parametrize("runtime, message", [
    ({"device": "cuda"}, "runtime.device is 'cuda' but torch sees no CUDA device"),
    ({"device": "gpu0"}, "runtime.device 'gpu0' is not a device name"),
    ({"frozen_dtype": "fp8"}, "frozen_dtype"),
])
def test_a_bad_device_policy_fails_before_any_node_naming_the_key(kedro_project, runtime, message):
    with KedroSession.create(project_path=kedro_project, runtime_params={"runtime": runtime}) as session:
        with pytest.raises(Exception, match=message):
            session.run(pipeline_names=["__default__"])
    assert not (kedro_project / "data" / "05_model_input").exists()


def test_a_world_other_than_the_teachers_is_refused_before_any_node(kedro_project):
    """The shipped teacher's folder records its world (world.json); another split of the same vocabulary would
    hold out compositions the teacher trained on, so data_prep must not start."""
    with KedroSession.create(project_path=kedro_project, runtime_params={"world": {"split_seed": 7}}) as session:
        with pytest.raises(ValueError, match=r"params:world differs from the world the teacher .*embedded_teacher "
                                             r".*world.split_seed is 7 in this run but 0"):
            session.run(pipeline_names=["data_prep"])
    assert not (kedro_project / "data" / "05_model_input").exists()
    assert not list((kedro_project / "data" / "01_raw").glob("world_train*/*.png"))
