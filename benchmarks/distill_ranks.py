"""Distillation on 2 gloo ranks vs 1 on this CPU: samples/s per rank and in total (issue 14).

Both runs go through the same launcher (``distill_in_processes``: torchrun, one process per rank, each rank
training on its own shard of every global batch), embedded teacher -> BK-SDM-Tiny, ``--batch`` samples per rank
per step, ``--steps`` steps after one untimed warm-up log window. Three runs: 1 rank x 1 thread, 2 ranks x 1
thread (torchrun's default OMP_NUM_THREADS=1), and 1 rank x 2 threads (the whole machine to one process).

    .venv/bin/python benchmarks/distill_ranks.py [--steps 40] [--batch 32]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
TEACHER = PROJECT / "data" / "06_models" / "embedded_teacher"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--images", type=int, default=512)
    args = parser.parse_args()

    from diffusers import StableDiffusionPipeline

    from delta_diff.architecture import ArchitectureSpace, preset_genome, prune
    from delta_diff.data import read_image_folder, write_image_folder
    from delta_diff.data.latent_cache import build_training_cache
    from delta_diff.distill import DistillConfig
    from delta_diff.distill.launch import distill_in_processes
    from delta_diff.sd import DevicePolicy, training_noise_scheduler
    from delta_diff.world import WorldSpec, make_world_images

    policy = DevicePolicy(device="cpu")
    teacher = policy.place_frozen(StableDiffusionPipeline.from_pretrained(TEACHER, use_safetensors=True))
    space = ArchitectureSpace(dict(teacher.unet.config))
    student = prune(teacher.unet, preset_genome(space, "bk-sdm-tiny"), space)
    window = max(1, args.steps // 4)
    rows = []
    with tempfile.TemporaryDirectory() as work:
        images, metadata = make_world_images(WorldSpec(), "train", args.images, seed=1)
        write_image_folder(Path(work) / "images", images, metadata)
        cache = build_training_cache(read_image_folder(Path(work) / "images"), teacher, 32, Path(work) / "cache",
                                     show_progress=False)
        for ranks, threads in ((1, 1), (2, 1), (1, 2)):
            os.environ["OMP_NUM_THREADS"] = str(threads)
            config = DistillConfig(steps=args.steps + window, batch_size=args.batch, log_every=window,
                                   checkpoint_every=10 ** 9)
            _, history = distill_in_processes(teacher.unet, student, cache, training_noise_scheduler(teacher), config,
                                              ranks, name=f"{ranks}x{threads}", policy=policy,
                                              text_encoder=teacher.text_encoder)
            timed = history[1:]  # the first window warms up
            total = sum(r["samples_per_s"] for r in timed) / len(timed)
            rows.append((ranks, threads, total / ranks, total))
    print(f"\n{'ranks':>5} {'threads/rank':>12} {'samples/s per rank':>18} {'samples/s total':>15}   (batch "
          f"{args.batch} per rank, {args.steps} timed steps, {os.cpu_count()} cores)")
    for ranks, threads, per_rank, total in rows:
        print(f"{ranks:>5} {threads:>12} {per_rank:>18.1f} {total:>15.1f}")
    print(f"2 ranks x 1 thread vs 1 rank x 1 thread: {rows[1][3] / rows[0][3]:.2f}x in total "
          f"({rows[1][3] / rows[0][3] / 2:.0%} scaling efficiency)")

if __name__ == "__main__":
    main()
