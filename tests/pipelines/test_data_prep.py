"""``data_prep`` through a real KedroSession, on a small training set."""

import json

import pandas as pd
import pytest
from kedro.framework.session import KedroSession

from delta_diff.data.sharded_cache import current_cache_folder, open_training_cache

SMALL = {"data_prep": {"training_images": {"n_images": 48}, "prompt_sets": {"n_train_prompts": 16, "n_eval_prompts": 8}}}


def only_version(path):
    versions = sorted(path.iterdir())
    assert len(versions) == 1, versions
    return versions[0] / path.name


def run_data_prep(project, params=SMALL):
    with KedroSession.create(project_path=project, runtime_params=params) as session:
        session.run(pipeline_names=["data_prep"])


def test_data_prep_writes_versioned_prompt_sets_and_cache(kedro_project):
    run_data_prep(kedro_project)
    model_input = kedro_project / "data" / "05_model_input"
    prompts = json.loads(only_version(model_input / "prompt_sets.json").read_text())
    assert len(prompts["train"]) == 16 and len(prompts["eval"]) == 8 and len(prompts["search"]) == 32
    assert {"text", "seed", "shape", "colour"} <= set(prompts["eval"][0])
    # The search selects on prompts (compositions and seeds) that evaluate never judges.
    combination = lambda entry: tuple(entry[a] for a in ("shape", "colour", "size", "position", "background"))  # noqa: E731
    assert not {combination(e) for e in prompts["search"]} & {combination(e) for e in prompts["eval"]}
    assert not {e["text"] for e in prompts["search"]} & {e["text"] for e in prompts["eval"]}
    assert not {e["seed"] for e in prompts["search"]} & {e["seed"] for e in prompts["eval"]}
    assert prompts["hps_benchmark"]["available"] is False and "hps_benchmark" in prompts["hps_benchmark"]["reason"]
    cache = open_training_cache(current_cache_folder(model_input / "training_cache"))
    rows = cache.rows(range(48))
    assert rows["latent_mean"].shape == (48, 4, 8, 8) and rows["latent_std"].shape == (48, 4, 8, 8)
    assert rows["input_ids"].shape == (48, 16) and "text_embeddings" not in rows  # token ids by default
    assert cache.extras()["empty_text_embedding"].shape == (1, 16, 64)
    metadata = pd.read_csv(kedro_project / "data" / "01_raw" / "world_distill" / "metadata.csv")
    assert len(metadata) == 48 and list(metadata.columns[:2]) == ["file_name", "text"]


def test_hps_benchmark_prompts_are_read_when_present(kedro_project):
    folder = kedro_project / "data" / "01_raw" / "hps_benchmark"
    folder.mkdir(parents=True)
    for style in ("anime", "concept-art", "paintings", "photo"):
        (folder / f"{style}.json").write_text(json.dumps([f"a {style} of a cat", f"a {style} of a dog"]))
    run_data_prep(kedro_project)
    prompts = json.loads(only_version(kedro_project / "data" / "05_model_input" / "prompt_sets.json").read_text())
    assert prompts["hps_benchmark"]["available"] is True
    assert prompts["hps_benchmark"]["styles"]["photo"] == ["a photo of a cat", "a photo of a dog"]


def test_overlapping_search_and_eval_prompt_files_are_refused(kedro_project):
    raw = kedro_project / "data" / "01_raw"
    raw.mkdir(parents=True, exist_ok=True)
    (raw / "eval.json").write_text(json.dumps(["a red circle on the left", "a blue square"]))
    (raw / "search.json").write_text(json.dumps(["a green triangle", "A  blue square"]))
    files = {"eval_prompts_file": str(raw / "eval.json"), "search_prompts_file": str(raw / "search.json")}
    params = {"data_prep": {**SMALL["data_prep"], "prompt_sets": {**SMALL["data_prep"]["prompt_sets"], **files}}}
    with pytest.raises(Exception, match=r"both the search's and evaluate's sets, e.g. 'a blue square'"):
        run_data_prep(kedro_project, params)
    assert not (kedro_project / "data" / "05_model_input" / "prompt_sets.json").exists()


def test_a_broken_image_folder_fails_before_caching(kedro_project):
    folder = kedro_project / "data" / "01_raw" / "laion_like"
    (folder / "images").mkdir(parents=True)
    (folder / "metadata.csv").write_text("file_name,text\nimages/0.png,a cat\nimages/1.png,\n")
    params = {"data_prep": {"training_images": {"source": "folder", "folder": str(folder)}}}
    with pytest.raises(Exception, match=r"metadata.csv[\s\S]*line 3"):
        run_data_prep(kedro_project, params)
    assert not (kedro_project / "data" / "05_model_input").exists()


def test_an_unchanged_rerun_reuses_the_cache_and_versions_only_the_prompt_sets(kedro_project):
    run_data_prep(kedro_project)
    root = kedro_project / "data" / "05_model_input" / "training_cache"
    folder = current_cache_folder(root)
    stamps = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    run_data_prep(kedro_project)
    assert current_cache_folder(root) == folder and [p for p in root.iterdir() if p.is_dir()] == [folder]
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == stamps  # nothing re-encoded or re-written
    assert len(list((kedro_project / "data" / "05_model_input" / "prompt_sets.json").iterdir())) == 2
    summary_versions = sorted((kedro_project / "data" / "08_reporting" / "data_summary.json").iterdir())
    summary = json.loads((summary_versions[-1] / "data_summary.json").read_text())
    assert summary["cache"]["key"] == folder.name and summary["cache"]["rows"] == 48


def test_prompt_set_settings_that_would_leak_evaluate_into_the_search_are_refused():
    from delta_diff.pipelines.data_prep.nodes import PromptSetsParams

    with pytest.raises(ValueError, match="search_prompts_file is not set but eval_prompts_file is"):
        PromptSetsParams(eval_prompts_file="eval.json")
    with pytest.raises(ValueError, match=r"search_seed: the search's seeds 1050..1081 overlap evaluate's 1000..1095"):
        PromptSetsParams(search_seed=1050)
    with pytest.raises(ValueError, match="n_search_prompts is 0"):
        PromptSetsParams(n_search_prompts=0)
    assert PromptSetsParams(eval_prompts_file="e.json", search_prompts_file="s.json").search_seed == 2000


def test_an_image_folder_without_rows_fails_and_leaves_every_newest_version_as_it_was(kedro_project):
    """Found by a new user: a header-only metadata.csv saved a prompt set without prompts as the newest version,
    which then no longer belonged with the newest cache."""
    import mlflow

    run_data_prep(kedro_project)
    while mlflow.active_run() is not None:  # two runs in one process: end the first's MLflow run
        mlflow.end_run()
    model_input = kedro_project / "data" / "05_model_input"
    before = {p.relative_to(model_input) for p in model_input.rglob("*")}
    folder = kedro_project / "data" / "01_raw" / "empty"
    (folder / "images").mkdir(parents=True)
    (folder / "metadata.csv").write_text("file_name,text\n")
    params = {"data_prep": {**SMALL["data_prep"], "training_images": {"source": "folder", "folder": str(folder)}}}
    with pytest.raises(Exception, match="has a header but no rows"):
        run_data_prep(kedro_project, params)
    assert {p.relative_to(model_input) for p in model_input.rglob("*")} == before
