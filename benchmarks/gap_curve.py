"""Is there a capacity gap in a world, and where does the single-step baseline plateau? Distil a BK-SDM preset
student from a teacher in one step (the single-step baseline), keep it every ``--snapshot-every`` steps, and
score each kept student and the teacher on the world's held-out prompts.

    nice -n 10 .venv/bin/python benchmarks/gap_curve.py --seeds 0 1 2 --steps 1200 --snapshot-every 150 \
        --out data/08_reporting/world_v2/gap_curve.json

Started again with the same settings and ``--out``, it keeps the seeds already finished. Two prompt sets, both
held out of training: the search's (seeds 2000..), on which a protocol's steps per hop S
may be chosen without looking at the test set, and evaluate's (seeds 1000..), on which the gap is reported.
Defaults follow conf/base (batch 32, lr 5e-4, BK-SDM loss; 4,000 training images with seed 1; 25 sampler steps,
guidance 4).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
from diffusers import StableDiffusionPipeline, UNet2DConditionModel

from delta_diff.architecture import ArchitectureSpace, count_params, preset_genome, prune
from delta_diff.data.latent_cache import encode_latents, encode_prompts
from delta_diff.distill import DistillConfig, distill_student
from delta_diff.distill.trainer import snapshot_folders
from delta_diff.project_config import load_project_config
from delta_diff.scoring import AttributeClassifier, WorldScorer
from delta_diff.sd import DevicePolicy, generate_images, training_noise_scheduler, unet_swapped_in
from delta_diff.world import WorldSpec, make_prompt_set, make_world_images, parse_caption
from delta_diff.world.train_vae import images_to_tensor

V2_WORLD = {"layout": "pair", "sizes": {"small": 0.24, "large": 0.38}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher", default="data/06_models/embedded_teacher_v2")
    parser.add_argument("--scorer", default="data/06_models/world_scorer_v2")
    parser.add_argument("--world", default="v2", choices=["v1", "v2"])
    parser.add_argument("--env", default=None, help="take the world from this conf env instead (e.g. world_v3)")
    parser.add_argument("--preset", default="bk-sdm-tiny")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--snapshot-every", type=int, default=0, help="also score the student every N steps")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=5e-4)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--n-images", type=int, default=4000)
    parser.add_argument("--n-prompts", type=int, default=96, help="per prompt set")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()

    world = WorldSpec(**V2_WORLD) if args.world == "v2" else WorldSpec()
    if args.env:
        world = WorldSpec(**load_project_config("conf", "parameters", args.env)["world"])
    policy = DevicePolicy()
    teacher = StableDiffusionPipeline.from_pretrained(args.teacher, local_files_only=True, use_safetensors=True)
    policy.place_frozen(teacher)
    scorer = WorldScorer(AttributeClassifier.from_pretrained(args.scorer), lambda p: parse_caption(p, world))
    prompt_sets = {name: make_prompt_set(world, name, args.n_prompts, seed)
                   for name, seed in (("search", 2000), ("eval", 1000))}

    def judged(pipeline) -> dict:
        scores = {}
        for name, prompts in prompt_sets.items():
            images = generate_images(pipeline, list(prompts.text), list(prompts.seed), 25, 4.0, show_progress=False)
            scores[name] = scorer.score(images, list(prompts.text)).summary
        return scores

    report = {"teacher": args.teacher, "preset": args.preset, "world": world.model_dump(mode="json"),
              "distillation": {"steps": args.steps, "snapshot_every": args.snapshot_every,
                               "batch_size": args.batch_size, "learning_rate": args.learning_rate,
                               "n_images": args.n_images},
              "prompts": {"n_per_set": args.n_prompts, "search_seeds": "2000..", "eval_seeds": "1000..",
                          "steps": 25, "guidance_scale": 4.0}}
    start = time.time()
    report["teacher_score"] = judged(teacher)
    report["teacher_score_seconds"] = round(time.time() - start, 1)
    print("teacher", json.dumps(report["teacher_score"]), flush=True)

    images, metadata = make_world_images(world, "train", args.n_images, seed=1)
    latent_mean, latent_std = encode_latents(teacher.vae, images_to_tensor(images))
    cache = {"latent_mean": latent_mean, "latent_std": latent_std,
             "text_embeddings": encode_prompts(teacher.tokenizer, teacher.text_encoder, list(metadata.text)),
             "empty_text_embedding": encode_prompts(teacher.tokenizer, teacher.text_encoder, [""])}
    space = ArchitectureSpace(dict(teacher.unet.config))
    pruned = prune(teacher.unet, preset_genome(space, args.preset), space)
    report["params"] = {"teacher": count_params(dict(teacher.unet.config)), "student": count_params(dict(pruned.config))}
    report["students"] = []
    expected = len(range(args.snapshot_every, args.steps, args.snapshot_every)) + 1 if args.snapshot_every else 1
    if args.out and Path(args.out).is_file():  # resume: keep the seeds an earlier run of the same settings finished
        earlier = json.loads(Path(args.out).read_text())
        if all(earlier.get(k) == report[k] for k in ("teacher", "preset", "world", "distillation", "prompts")):
            for seed in args.seeds:
                rows = [r for r in earlier["students"] if r["seed"] == seed]
                if len(rows) == expected:
                    report["students"] += rows
                    print(f"seed {seed}: finished earlier, kept", flush=True)
    for seed in args.seeds:
        if any(r["seed"] == seed for r in report["students"]):
            continue
        config = DistillConfig(steps=args.steps, batch_size=args.batch_size, learning_rate=args.learning_rate,
                               seed=seed, log_every=50, snapshot_every=args.snapshot_every, checkpoint_every=10**9)
        with tempfile.TemporaryDirectory(dir="data") as work:
            clock = time.time()
            student, history = distill_student(teacher.unet, pruned, cache, training_noise_scheduler(teacher), config,
                                               checkpoint_dir=work, show_progress=True, policy=policy,
                                               name=f"gap_seed{seed}")
            seconds = time.time() - clock
            kept = {step: UNet2DConditionModel.from_pretrained(folder)
                    for step, folder in snapshot_folders(work, config, teacher.unet, pruned, policy).items()}
        for step, unet in [*kept.items(), (args.steps, student)]:
            with unet_swapped_in(teacher, policy.frozen_copy(unet)) as pipeline:
                scores = judged(pipeline)
            row = {"seed": seed, "steps": step, "distill_seconds_total": round(seconds, 1),
                   "loss_at_end": history[-1]["loss"],
                   **{f"{name}_{key}": value for name, summary in scores.items() for key, value in summary.items()},
                   **{f"{name}_score_over_teacher": scores[name]["score"] / report["teacher_score"][name]["score"]
                      for name in scores}}
            report["students"].append(row)
            print("student", json.dumps(row), flush=True)
            if args.out:
                Path(args.out).parent.mkdir(parents=True, exist_ok=True)
                Path(args.out).write_text(json.dumps(report, indent=1))
    report["summary"] = {}
    for step in sorted({r["steps"] for r in report["students"]}):
        ratios = [r["eval_score_over_teacher"] for r in report["students"] if r["steps"] == step]
        search = [r["search_score_over_teacher"] for r in report["students"] if r["steps"] == step]
        report["summary"][str(step)] = {
            "eval_score_over_teacher_mean": float(np.mean(ratios)),
            "eval_score_over_teacher_std": float(np.std(ratios, ddof=1)) if len(ratios) > 1 else None,
            "search_score_over_teacher_mean": float(np.mean(search)),
            "search_score_over_teacher_std": float(np.std(search, ddof=1)) if len(search) > 1 else None,
            "n_seeds": len(ratios)}
    print("summary", json.dumps(report["summary"]), flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
