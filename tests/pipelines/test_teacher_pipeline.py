"""The ``teacher`` pipeline on a micro configuration through a real KedroSession, including a resume."""

import importlib.util
import json

import mlflow
import pytest
import torch
from diffusers import StableDiffusionPipeline
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from delta_diff.experiments.run_folder import make_run_folder
from tests.conftest import PROJECT_ROOT

spec = importlib.util.spec_from_file_location("teacher_at_step", PROJECT_ROOT / "benchmarks" / "teacher_at_step.py")
teacher_at_step = importlib.util.module_from_spec(spec)
spec.loader.exec_module(teacher_at_step)


def micro(ckpt, unet_steps, **unet_training):
    return {
        "teacher": {
            "train_images": {"n_images": 96},
            "vae": {"training": {"steps": 3, "batch_size": 16}, "checkpoint_dir": str(ckpt / "vae")},
            "scorer": {"training": {"steps": 3, "batch_size": 16}, "extra_images": {"n_images": 16, "seed": 1}},
            "unet": {"training": {"steps": unet_steps, "batch_size": 8, **unet_training},
                     "checkpoint_dir": str(ckpt / "unet")},
            "competence": {"n_prompts": 4, "n_scorer_images": 16, "grid_images": 4, "steps": 2},
        }
    }


@pytest.mark.slow
def test_teacher_pipeline_trains_saves_and_resumes(kedro_project, tmp_path):
    for name in ("embedded_teacher", "world_scorer"):  # never write through the links to the shipped models
        (kedro_project / "data" / "06_models" / name).unlink()
    ckpt = tmp_path / "ckpt"
    with KedroSession.create(project_path=kedro_project, runtime_params=micro(ckpt, 4)) as session:
        session.run(pipeline_names=["teacher"])
    teacher_dir = kedro_project / "data" / "06_models" / "embedded_teacher"
    pipeline = StableDiffusionPipeline.from_pretrained(teacher_dir, local_files_only=True, use_safetensors=True)
    assert pipeline.unet.config.down_block_types[-1] == "DownBlock2D"
    report = json.loads((kedro_project / "data" / "08_reporting" / "teacher_competence.json").read_text())
    assert {"teacher_on_held_out_prompts", "scorer_on_real_held_out_images", "passed"} <= set(report)
    assert report["passed"] is False  # 4 training steps teach nothing, and the check must say so
    assert (kedro_project / "data" / "08_reporting" / "teacher_samples.png").stat().st_size > 0

    while mlflow.active_run() is not None:  # see tests/conftest.py: one process, two sessions
        mlflow.end_run()

    # A longer run picks up from the 4-step checkpoint instead of starting again.
    with KedroSession.create(project_path=kedro_project, runtime_params=micro(ckpt, 6)) as session:
        session.run(pipeline_names=["teacher"])
    state = torch.load(ckpt / "unet" / "step-000006" / "trainer_state.pt", weights_only=True)
    assert [entry["step"] for entry in state["history"]["rows"]] == [4, 6]


def train_micro_teacher(env: str, tmp_path, monkeypatch, unet_steps: int = 2, **unet_training):
    """The teacher pipeline at micro size on a world's configuration, in a run folder of its own (whose default
    env ``local`` is the world's); its root."""
    ckpt = tmp_path / "ckpt"
    root = make_run_folder(PROJECT_ROOT, tmp_path / "project", overrides=micro(ckpt, unet_steps, **unet_training),
                           env=env)
    tag = env.removeprefix("world")
    for name in (f"embedded_teacher{tag}", f"world_scorer{tag}"):  # never write through links to shipped models
        (root / "data" / "06_models" / name).unlink(missing_ok=True)
    monkeypatch.chdir(root)
    bootstrap_project(root)
    with KedroSession.create(project_path=root) as session:
        session.run(pipeline_names=["teacher"])
    return root


@pytest.mark.slow
def test_a_four_object_world_teacher_trains_through_the_pipeline(tmp_path, monkeypatch):
    """World v6's configuration (quad layout, hashed split, 48-token captions, VAE fine-tuned from v5's) at a
    micro size: every node of the teacher pipeline handles four objects, and the report judges all 13 attributes."""
    root = train_micro_teacher("world_v6", tmp_path, monkeypatch)
    pipeline = StableDiffusionPipeline.from_pretrained(root / "data" / "06_models" / "embedded_teacher_v6",
                                                       local_files_only=True, use_safetensors=True)
    assert pipeline.tokenizer.model_max_length == 48
    caption = "a small red circle at the top left, a large blue square at the top right, a medium green " \
              "triangle at the bottom left and a small brown circle at the bottom right on a white background"
    assert len(pipeline.tokenizer(caption).input_ids) <= 48
    report = json.loads((root / "data" / "08_reporting" / "teacher_v6_competence.json").read_text())
    judged = report["teacher_on_held_out_prompts"]
    assert {f"{slot}_{a}_accuracy" for slot in ("top_left", "bottom_right") for a in ("shape", "colour", "size")} \
        <= set(judged)
    assert "teacher_all_attributes_right" in report and report["passed"] is False


@pytest.mark.slow
def test_a_counting_world_teacher_trains_through_the_pipeline(tmp_path, monkeypatch):
    """World v7's configuration (count layout, objects at free places, VAE fine-tuned from v6's) at a micro size:
    every node of the teacher pipeline handles counted groups, and the report judges both groups' counts."""
    root = train_micro_teacher("world_v7", tmp_path, monkeypatch, unet_steps=3, checkpoint_every=1,
                               keep_checkpoints=3)
    scorer_state = torch.load(root / "data/06_models/teacher_v7_checkpoints/scorer/step-000003/trainer_state.pt",
                              weights_only=True)
    assert len(scorer_state["sampler"]["order"]) == 2 * (96 + 16)  # the U-Net's 96 + its own 16, and reconstructions
    pipeline = StableDiffusionPipeline.from_pretrained(root / "data" / "06_models" / "embedded_teacher_v7",
                                                       local_files_only=True, use_safetensors=True)
    assert pipeline.tokenizer.model_max_length == 24
    assert len(pipeline.tokenizer("four yellow circles and three cyan triangles on a gray background").input_ids) <= 24
    report = json.loads((root / "data" / "08_reporting" / "teacher_v7_competence.json").read_text())
    judged = report["teacher_on_held_out_prompts"]
    assert {f"{group}_{a}_accuracy" for group in ("first", "second") for a in ("count", "colour", "shape")} \
        <= set(judged)
    assert report["chance"]["first_count"] == pytest.approx(0.25) and report["passed"] is False
    # The folder records the world it learnt, in the env's order (later runs are checked against it).
    world = json.loads((root / "data" / "06_models" / "embedded_teacher_v7" / "world.json").read_text())
    assert list(world["colours"])[:5] == ["red", "green", "blue", "yellow", "orange"] and world["layout"] == "count"

    # benchmarks/teacher_at_step.py: the same training looked at from an earlier checkpoint, live folders untouched.
    while mlflow.active_run() is not None:  # the session's run; the script runs outside any
        mlflow.end_run()
    live = tmp_path / "ckpt" / "unet"
    before = {p.relative_to(live): p.stat().st_mtime_ns for p in live.rglob("*")}
    with pytest.raises(SystemExit, match=r"no checkpoint of step 7 .*\[1, 2, 3\]"):
        teacher_at_step.main(["--env", "local", "--unet-step", "7", "--out", "data/08_reporting/at_step"])
    teacher_at_step.main(["--env", "local", "--unet-step", "2", "--out", "data/08_reporting/at_step"])
    assert {p.relative_to(live): p.stat().st_mtime_ns for p in live.rglob("*")} == before
    out = root / "data" / "08_reporting" / "at_step"
    at_step = json.loads((out / "competence.json").read_text())
    assert at_step["checkpoint_steps"]["unet"] == 2 and "second_count_accuracy" in at_step["teacher_on_held_out_prompts"]
    earlier = StableDiffusionPipeline.from_pretrained(out / "teacher", local_files_only=True, use_safetensors=True)
    assert {**earlier.unet.config, "_name_or_path": ""} == {**pipeline.unet.config, "_name_or_path": ""}
    weight = "conv_in.weight"
    assert not torch.equal(earlier.unet.state_dict()[weight], pipeline.unet.state_dict()[weight])  # step 2, not 3
    assert (out / "scorer" / "config.json").is_file() and (out / "samples.png").stat().st_size > 0
    assert not list(out.parent.glob(".*partial"))
