"""``data_prep`` through a real KedroSession, on a small training set."""

import json

import pandas as pd
import pytest
from kedro.framework.session import KedroSession
from safetensors.torch import load_file

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
    assert len(prompts["train"]) == 16 and len(prompts["eval"]) == 8
    assert {"text", "seed", "shape", "colour"} <= set(prompts["eval"][0])
    assert prompts["hps_benchmark"]["available"] is False and "hps_benchmark" in prompts["hps_benchmark"]["reason"]
    cache = load_file(only_version(model_input / "training_cache.safetensors"))
    assert cache["latent_mean"].shape == (48, 4, 8, 8) and cache["latent_std"].shape == (48, 4, 8, 8)
    assert cache["text_embeddings"].shape == (48, 16, 64) and cache["empty_text_embedding"].shape == (1, 16, 64)
    assert cache["input_ids"].shape == (48, 16)
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


def test_a_broken_image_folder_fails_before_caching(kedro_project):
    folder = kedro_project / "data" / "01_raw" / "laion_like"
    (folder / "images").mkdir(parents=True)
    (folder / "metadata.csv").write_text("file_name,text\nimages/0.png,a cat\nimages/1.png,\n")
    params = {"data_prep": {"training_images": {"source": "folder", "folder": str(folder)}}}
    with pytest.raises(Exception, match=r"metadata.csv[\s\S]*line 3"):
        run_data_prep(kedro_project, params)
    assert not (kedro_project / "data" / "05_model_input").exists()
