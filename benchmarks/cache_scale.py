"""The training cache at growing dataset sizes: does RAM stay flat while the data grows 10x? (issue 14)

For each size N (default 2,000 and 20,000 world images at 32 px, the embedded teacher's VAE and text encoder) it
runs, each in its own fresh process so that peak RSS is that step's alone:

1. generate N images into an image folder (not timed: it stands for a downloaded LAION subset);
2. build the sharded cache (``data_prep``'s code: ``plan_training_cache`` + ``write_training_cache``): images/s,
   bytes per image on disk, peak RSS; plus the fp16 rounding error of the latent means on 256 rows, next to the
   posterior std that every training draw adds;
3. distil a BK-SDM-Tiny student from the teacher for ``--steps`` steps on that cache (``distill_student``):
   samples/s and peak RSS.

    .venv/bin/python benchmarks/cache_scale.py [--sizes 2000 20000] [--steps 40] [--work DIR]

Prints one table; the README's "The training cache" quotes it.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
TEACHER = PROJECT / "data" / "06_models" / "embedded_teacher"


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _in_child(function, *args) -> dict:
    """Run ``function(*args)`` in a fresh spawned process and return its result (a dict)."""
    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as pool:
        return pool.apply(function, args)


def generate(folder: str, n: int) -> dict:
    from delta_diff.data import write_image_folder
    from delta_diff.world import WorldSpec, make_world_images

    import pandas as pd

    chunk = 2000  # bounded RAM here too: write the folder in slices, then one metadata.csv
    frames = []
    for start in range(0, n, chunk):
        images, metadata = make_world_images(WorldSpec(), "train", min(chunk, n - start), seed=start + 1)
        metadata = metadata[["text"]].copy()
        metadata["file_name"] = [f"images/{start + i:06d}.png" for i in range(len(images))]
        (Path(folder) / "images").mkdir(parents=True, exist_ok=True)
        for image, name in zip(images, metadata["file_name"]):
            image.save(Path(folder) / name)
        frames.append(metadata[["file_name", "text"]])
    pd.concat(frames).to_csv(Path(folder) / "metadata.csv", index=False)
    return {"n": n}


def build(folder: str, root: str) -> dict:
    import torch
    from diffusers import StableDiffusionPipeline

    from delta_diff.data import read_image_folder
    from delta_diff.data.cache_spec import cache_inputs
    from delta_diff.data.latent_cache import encode_latents, pil_batch_to_pixels, plan_training_cache
    from delta_diff.data.sharded_cache import open_training_cache, write_training_cache

    torch.set_num_threads(2)
    images = read_image_folder(folder, check_images=False)
    teacher = StableDiffusionPipeline.from_pretrained(TEACHER, use_safetensors=True)
    rss_loaded = _peak_rss_mb()
    clock = time.perf_counter()
    plan = plan_training_cache(images, teacher, 32, "token_ids", shard_size=1024, batch_size=256,
                               inputs=cache_inputs(images, teacher, 32), show_progress=False)
    cache = open_training_cache(write_training_cache(root, plan))
    seconds = time.perf_counter() - clock
    on_disk = sum(p.stat().st_size for p in cache.folder.iterdir())
    # fp16's rounding of the latent means vs the posterior's std (what every draw adds anyway)
    index = torch.arange(min(256, len(cache)))
    mean, std = encode_latents(teacher.vae, pil_batch_to_pixels([images.load_image(int(i)) for i in index], 32))
    error = (cache.rows(index, ["latent_mean"])["latent_mean"] - mean).abs()
    return {"images_per_s": len(images) / seconds, "build_s": seconds, "bytes_per_image": on_disk / len(images),
            "peak_rss_mb": _peak_rss_mb(), "rss_after_loading_teacher_mb": rss_loaded,
            "fp16_mean_abs_error": float(error.mean()), "fp16_max_abs_error": float(error.max()),
            "posterior_std_mean": float(std.mean()), "latent_abs_mean": float(mean.abs().mean())}


def distil(root: str, steps: int) -> dict:
    import torch
    from diffusers import StableDiffusionPipeline

    from delta_diff.architecture import ArchitectureSpace, preset_genome, prune
    from delta_diff.data.sharded_cache import current_cache_folder, open_training_cache
    from delta_diff.distill import DistillConfig, distill_student
    from delta_diff.sd import DevicePolicy, training_noise_scheduler

    torch.set_num_threads(2)
    policy = DevicePolicy(device="cpu")
    teacher = policy.place_frozen(StableDiffusionPipeline.from_pretrained(TEACHER, use_safetensors=True))
    cache = open_training_cache(current_cache_folder(root))
    space = ArchitectureSpace(dict(teacher.unet.config))
    student = prune(teacher.unet, preset_genome(space, "bk-sdm-tiny"), space)
    config = DistillConfig(steps=steps, batch_size=64, log_every=max(1, steps // 4), checkpoint_every=10 ** 9)
    clock = time.perf_counter()
    _, history = distill_student(teacher.unet, student, cache, training_noise_scheduler(teacher), config,
                                 policy=policy, show_progress=False, text_encoder=teacher.text_encoder)
    seconds = time.perf_counter() - clock
    return {"samples_per_s": steps * 64 / seconds, "peak_rss_mb": _peak_rss_mb(), "final_loss": history[-1]["loss"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 20000])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--work", type=Path, default=None, help="keep the folders here (default: a temp dir)")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="cache-scale-"))
    rows = []
    try:
        for n in args.sizes:
            folder, root = work / f"images-{n}", work / f"cache-{n}"
            if not (folder / "metadata.csv").is_file():
                print(f"generating {n:,} images ...", file=sys.stderr, flush=True)
                _in_child(generate, str(folder), n)
            print(f"caching {n:,} images ...", file=sys.stderr, flush=True)
            built = _in_child(build, str(folder), str(root))
            print(f"distilling on {n:,} images ...", file=sys.stderr, flush=True)
            trained = _in_child(distil, str(root), args.steps)
            rows.append({"images": n, **{f"build_{k}": v for k, v in built.items()},
                         **{f"distil_{k}": v for k, v in trained.items()}})
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    print(f"\n{'images':>8} {'build img/s':>11} {'bytes/img':>9} {'build peak RSS':>14} {'distil samples/s':>16} "
          f"{'distil peak RSS':>15}")
    for row in rows:
        print(f"{row['images']:>8,} {row['build_images_per_s']:>11.0f} {row['build_bytes_per_image']:>9.0f} "
              f"{row['build_peak_rss_mb']:>11.0f} MB {row['distil_samples_per_s']:>16.0f} "
              f"{row['distil_peak_rss_mb']:>12.0f} MB")
    first = rows[0]
    print(f"\nfp16 latent means ({first['images']:,} images, 256 rows): mean |error| "
          f"{first['build_fp16_mean_abs_error']:.2e}, max {first['build_fp16_max_abs_error']:.2e}; posterior std "
          f"mean {first['build_posterior_std_mean']:.2e}; mean |latent| {first['build_latent_abs_mean']:.2f}")
    print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
