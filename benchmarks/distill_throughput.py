"""KD training throughput: delta-diff's cached loop vs a plain BK-SDM-style loop (issue: distill_stage).

Both distil the BK-SDM-Small analogue of the shipped teacher with the same loss, batch and models; the plain loop
encodes images with the VAE and captions with the text encoder at every step (as BK-SDM's script does), ours
reads data_prep's cache. Prints samples/s and peak RSS of each. Run:

    .venv/bin/python benchmarks/distill_throughput.py [--steps 30] [--batch 32]
"""

from __future__ import annotations

import argparse
import copy
import resource
import time
from pathlib import Path

import torch
from diffusers import StableDiffusionPipeline

from delta_diff.architecture import ArchitectureSpace, preset_genome, prune
from delta_diff.data.latent_cache import encode_latents, encode_prompts
from delta_diff.distill import DistillConfig, collect_outputs, distill_student, stage_pairs
from delta_diff.distill.losses import LossWeights, distillation_loss
from delta_diff.world import WorldSpec, make_world_images
from delta_diff.world.components import sd_v1_noise_scheduler
from delta_diff.world.train_vae import images_to_tensor

ROOT = Path(__file__).resolve().parents[1]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def plain_loop(teacher, student, pixels, captions, steps, batch, lr) -> float:
    """Per step: VAE encode + text encode + parent and student forward + BK-SDM loss. Returns the seconds spent
    encoding (the part a cache can save)."""
    encoding = 0.0
    scheduler = sd_v1_noise_scheduler()
    pairs = stage_pairs(student, teacher.unet)
    optimizer = torch.optim.AdamW(student.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(0)
    scale = teacher.vae.config.scaling_factor
    student.train()
    for step in range(steps):
        index = torch.randint(0, len(pixels), (batch,), generator=generator)
        began = time.perf_counter()
        with torch.no_grad():
            latents = teacher.vae.encode(pixels[index]).latent_dist.sample(generator) * scale
            text = encode_prompts(teacher.tokenizer, teacher.text_encoder, [captions[i] for i in index])
        encoding += time.perf_counter() - began
        noise = torch.randn(latents.shape, generator=generator)
        t = torch.randint(0, 1000, (batch,), generator=generator)
        noisy = scheduler.add_noise(latents, noise, t)
        with torch.no_grad(), collect_outputs(teacher.unet, [p for _, p in pairs]) as fp:
            parent_pred = teacher.unet(noisy, t, encoder_hidden_states=text).sample
        with collect_outputs(student, [s for s, _ in pairs]) as fs:
            pred = student(noisy, t, encoder_hidden_states=text).sample
        loss, _ = distillation_loss(pred, parent_pred, noise, fs, fp, pairs, LossWeights())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return encoding


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args()
    teacher = StableDiffusionPipeline.from_pretrained(ROOT / "data/06_models/embedded_teacher", local_files_only=True,
                                                      use_safetensors=True)
    images, meta = make_world_images(WorldSpec(), "train", 1024, seed=5)
    pixels, captions = images_to_tensor(images), list(meta.text)
    space = ArchitectureSpace(dict(teacher.unet.config))
    student = prune(teacher.unet, preset_genome(space, "bk-sdm-small"), space)

    mean, std = encode_latents(teacher.vae, pixels)
    cache = {"latent_mean": mean, "latent_std": std,
             "text_embeddings": encode_prompts(teacher.tokenizer, teacher.text_encoder, captions),
             "empty_text_embedding": encode_prompts(teacher.tokenizer, teacher.text_encoder, [""])}
    config = DistillConfig(steps=args.steps, batch_size=args.batch, learning_rate=5e-4, caption_dropout=0.0,
                           log_every=args.steps)
    # Warm both up untimed (thread pools, allocator, first-call dispatch), so neither pays for going first.
    plain_loop(teacher, copy.deepcopy(student), pixels, captions, 3, args.batch, 5e-4)
    distill_student(teacher.unet, copy.deepcopy(student), cache, sd_v1_noise_scheduler(),
                    config.model_copy(update={"steps": 3, "log_every": 3}), show_progress=False)

    start_rss = peak_rss_mb()
    start = time.perf_counter()
    encoding = plain_loop(teacher, copy.deepcopy(student), pixels, captions, args.steps, args.batch, 5e-4)
    plain_seconds = time.perf_counter() - start
    plain = args.steps * args.batch / plain_seconds
    share = encoding / plain_seconds
    plain_rss = peak_rss_mb()

    start = time.perf_counter()
    distill_student(teacher.unet, copy.deepcopy(student), cache, sd_v1_noise_scheduler(), config, show_progress=False)
    cached = args.steps * args.batch / (time.perf_counter() - start)
    cached_rss = peak_rss_mb()

    print(f"{'loop':<34}{'samples/s':>10}{'peak RSS MB':>13}")
    print(f"{'plain (VAE + text encoder/step)':<34}{plain:>10.1f}{plain_rss:>13.0f}")
    print(f"{'delta-diff (cached latents/text)':<34}{cached:>10.1f}{cached_rss:>13.0f}")
    print(f"speed-up {cached / plain:.2f}x over {args.steps} steps of batch {args.batch} "
          f"(RSS is the process peak so far; the plain loop ran first, starting at {start_rss:.0f} MB)")
    # Amdahl: a cache removes at most the encoding share of the plain step, so no cached loop can beat this.
    print(f"the plain loop spent {share:.1%} of its time in the VAE and text encoder: a cache can give at most "
          f"{1 / (1 - share):.2f}x on this world")


if __name__ == "__main__":
    main()
