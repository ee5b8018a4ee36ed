"""Is there a capacity gap in a world? Distil a BK-SDM preset student from a teacher in one step (the single-step
baseline) at the default budget and compare its world score with the teacher's on held-out prompts.

    nice -n 10 .venv/bin/python benchmarks/world_v2_gap.py --seeds 0 1 2 \
        --out data/08_reporting/world_v2/gap_estimate.json

Defaults follow conf/base/parameters_distill_stage.yml (300 steps, batch 32, lr 5e-4, BK-SDM loss) and
conf/base/parameters_data_prep.yml (4,000 training images with seed 1; 96 held-out prompts, seeds 1000..).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from diffusers import StableDiffusionPipeline

from delta_diff.architecture import ArchitectureSpace, count_params, preset_genome, prune
from delta_diff.data.latent_cache import encode_latents, encode_prompts
from delta_diff.distill import DistillConfig, distill_student
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
    parser.add_argument("--preset", default="bk-sdm-tiny")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=5e-4)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--n-images", type=int, default=4000)
    parser.add_argument("--n-prompts", type=int, default=96)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()

    world = WorldSpec(**V2_WORLD) if args.world == "v2" else WorldSpec()
    policy = DevicePolicy()
    teacher = StableDiffusionPipeline.from_pretrained(args.teacher, local_files_only=True, use_safetensors=True)
    policy.place_frozen(teacher)
    scorer = WorldScorer(AttributeClassifier.from_pretrained(args.scorer), lambda p: parse_caption(p, world))
    prompts = make_prompt_set(world, "eval", args.n_prompts, 1000)
    texts, seeds = list(prompts.text), list(prompts.seed)

    def judged(pipeline):
        images = generate_images(pipeline, texts, seeds, 25, 4.0, show_progress=False)
        return scorer.score(images, texts).summary

    report = {"teacher": args.teacher, "preset": args.preset, "world": world.model_dump(mode="json"),
              "distillation": {"steps": args.steps, "batch_size": args.batch_size,
                               "learning_rate": args.learning_rate, "n_images": args.n_images},
              "prompts": {"n": args.n_prompts, "seeds": f"1000..{999 + args.n_prompts}", "steps": 25,
                          "guidance_scale": 4.0}}
    report["teacher_score"] = judged(teacher)
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
    for seed in args.seeds:
        config = DistillConfig(steps=args.steps, batch_size=args.batch_size, learning_rate=args.learning_rate,
                               seed=seed, log_every=50)
        start = time.time()
        student, history = distill_student(teacher.unet, pruned, cache, training_noise_scheduler(teacher), config,
                                           show_progress=False, policy=policy, name=f"gap_seed{seed}")
        seconds = time.time() - start
        with unet_swapped_in(teacher, policy.frozen_copy(student)) as pipeline:
            summary = judged(pipeline)
        row = {"seed": seed, "distill_seconds": round(seconds, 1), "final_loss": history[-1]["loss"], **summary,
               "score_over_teacher": summary["score"] / report["teacher_score"]["score"]}
        report["students"].append(row)
        print("student", json.dumps(row), flush=True)
        if args.out:
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            Path(args.out).write_text(json.dumps(report, indent=1))
    ratios = [r["score_over_teacher"] for r in report["students"]]
    report["summary"] = {"score_over_teacher_mean": float(np.mean(ratios)),
                         "score_over_teacher_std": float(np.std(ratios, ddof=1)) if len(ratios) > 1 else None,
                         "gap_mean": 1 - float(np.mean(ratios))}
    print("summary", json.dumps(report["summary"]), flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
