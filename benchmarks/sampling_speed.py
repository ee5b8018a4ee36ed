"""How long one sampling batch of the shipped teacher takes (issue budget: 16 images, 25 steps, CFG, <= 20 s).

Run: .venv/bin/python benchmarks/sampling_speed.py [--repeats 3] [--threads 2]
Prints one line per repeat and the median. Not a test: numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
from diffusers import StableDiffusionPipeline

from delta_diff.world import WorldSpec, make_prompt_set
from delta_diff.sd import generate_images

TEACHER = Path(__file__).resolve().parents[1] / "data" / "06_models" / "embedded_teacher"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=25)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    pipeline = StableDiffusionPipeline.from_pretrained(TEACHER, local_files_only=True, use_safetensors=True)
    prompts = make_prompt_set(WorldSpec(), "eval", args.batch, seed=0)
    timings = []
    for repeat in range(args.repeats):
        start = time.perf_counter()
        generate_images(pipeline, list(prompts.text), list(prompts.seed), steps=args.steps, guidance_scale=4.0,
                        batch_size=args.batch, show_progress=False)
        timings.append(time.perf_counter() - start)
        print(f"repeat {repeat}: {args.batch} images x {args.steps} steps (CFG) in {timings[-1]:.2f} s")
    print(f"median {statistics.median(timings):.2f} s on {args.threads} threads")


if __name__ == "__main__":
    main()
