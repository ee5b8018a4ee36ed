"""A world teacher's training as it stands at one of its checkpoints: the pipeline folder (EMA weights of the
U-Net at that step), the scorer as far as it got, and the competence report and sample grid the teacher pipeline
would write -- without touching the training, which may still be running.

    .venv/bin/python benchmarks/teacher_at_step.py --env world_v7 --out data/08_reporting/world_v7/at_step

A teacher training takes hours on a CPU; this answers "how good is it now?" and gives a partly trained teacher to
pilot experiments on (e.g. a one-seed gap curve, before hours go into finishing a world that may leave no gap).
The checkpoints (VAE, scorer, U-Net: the newest of each, or ``--unet-step``) are copied into a scratch folder
and resumed there with ``steps`` set to their step, so the teacher pipeline's own code rebuilds every component
(the tokenizer and text encoder from the training captions, as ``kedro run --pipelines teacher`` does) and the
live checkpoint folders are only read. Writes into ``--out``: ``teacher/`` and ``scorer/`` (save_pretrained
folders), ``competence.json`` (with the steps it was taken at) and ``samples.png``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

from delta_diff.datasets import ImageFolderDataset
from delta_diff.pipelines.teacher import nodes
from delta_diff.project_config import load_project_config
from delta_diff.training.checkpoint import TrainingCheckpoints
from delta_diff.world import WorldSpec
from delta_diff.world.components import TextEncoderConfig, TokenizerConfig


def newest_step(folder: str, wanted: int | None = None) -> int:
    steps = TrainingCheckpoints(folder).steps()
    if not steps:
        raise SystemExit(f"error: no checkpoint in {folder}: has the teacher pipeline's training reached its first "
                         "checkpoint?")
    if wanted is None:
        return steps[-1]
    if wanted not in steps:
        raise SystemExit(f"error: no checkpoint of step {wanted} in {folder}; there are {steps}")
    return wanted


def copy_checkpoint(folder: str, step: int, scratch: Path) -> str:
    """One checkpoint of ``folder`` alone in a scratch folder (the live one is being pruned by its training)."""
    target = scratch / Path(folder).name
    shutil.copytree(TrainingCheckpoints(folder).folder(step), TrainingCheckpoints(target).folder(step))
    return str(target)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", required=True, help="the world's conf environment, e.g. world_v7")
    parser.add_argument("--unet-step", type=int, default=None, help="a U-Net checkpoint's step (default: newest)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)

    params = load_project_config("conf", "parameters", args.env)
    catalog = load_project_config("conf", "catalog", args.env)
    world, teacher = WorldSpec(**params["world"]), params["teacher"]
    vae_params, scorer_params = nodes.VAEParams(**teacher["vae"]), nodes.ScorerParams(**teacher["scorer"])
    unet_params = nodes.UNetParams(**teacher["unet"])
    for name, part in (("vae", vae_params), ("scorer", scorer_params), ("unet", unet_params)):
        if not part.checkpoint_dir:
            raise SystemExit(f"error: teacher.{name}.checkpoint_dir is not set in --env {args.env}: there is no "
                             "training to look at")
    steps = {"vae": newest_step(vae_params.checkpoint_dir), "scorer": newest_step(scorer_params.checkpoint_dir),
             "unet": newest_step(unet_params.checkpoint_dir, args.unet_step)}
    if steps["vae"] < vae_params.training.steps:
        raise SystemExit(f"error: the VAE is at step {steps['vae']} of {vae_params.training.steps}; the U-Net and "
                         "scorer train on its latents, so wait until it has finished")
    print("checkpoints at", json.dumps(steps), flush=True)

    start = time.time()
    images = ImageFolderDataset(filepath=catalog["world_train_images"]["filepath"]).load()
    tokenizer = nodes.fit_tokenizer(images, TokenizerConfig(**teacher["tokenizer"]))
    text_encoder = nodes.make_text_encoder(tokenizer, TextEncoderConfig(**teacher["text_encoder"]))
    with tempfile.TemporaryDirectory(dir="data") as scratch:
        def at(part, name: str):  # the part's parameters, resumed from a copy of its checkpoint at ``steps[name]``
            training = part.training.model_copy(update={"steps": steps[name]})
            folder = copy_checkpoint(part.checkpoint_dir, steps[name], Path(scratch))
            return part.model_copy(update={"training": training, "checkpoint_dir": folder})

        vae = nodes.fit_vae(images, at(vae_params, "vae"))
        scorer = nodes.fit_world_scorer(images, vae, world, at(scorer_params, "scorer"))
        unet = nodes.fit_unet(images, vae, tokenizer, text_encoder, at(unet_params, "unet"))
    pipeline = nodes.assemble_teacher(tokenizer, text_encoder, vae, unet)
    report, grid = nodes.check_teacher_competence(pipeline, scorer, world,
                                                  nodes.CompetenceParams(**teacher["competence"]))
    report["checkpoint_steps"] = steps
    report["seconds"] = round(time.time() - start, 1)

    # Written beside ``--out`` and renamed into place: never a half-written folder, nor a mix of two steps' files.
    out = Path(args.out)
    partial = out.with_name(f".{out.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    pipeline.save_pretrained(partial / "teacher", safe_serialization=True)
    scorer.save_pretrained(partial / "scorer")
    (partial / "competence.json").write_text(json.dumps(report, indent=1))
    grid.savefig(partial / "samples.png", dpi=110)  # as the catalog's teacher_sample_grid
    if out.exists():
        shutil.rmtree(out)
    partial.rename(out)
    print(json.dumps({k: report[k] for k in ("teacher_on_held_out_prompts", "scorer_on_vae_reconstructions",
                                             "passed", "failures", "checkpoint_steps", "seconds")}, indent=1))


if __name__ == "__main__":
    main()
