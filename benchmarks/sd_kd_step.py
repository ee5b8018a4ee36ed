"""One KD step at SD v1.4's full shapes on the CPU: delta-diff's cached ``distill_student`` vs a plain BK-SDM-style
loop that encodes every step (``benchmarks/plain_kd_step.py``), split into encode (VAE + text encoder) / teacher
forward / student forward+backward+AdamW.

Random seeded weights at SD v1.4's shapes (``delta_diff.sd_shaped``, built into data/01_raw/.sd_shaped when
absent, ~35 s), BK-SDM-Small pruned from it, world images at 128 px, batch 2, fp32. Each loop runs in spawned
children of its own, so each peak RSS is that loop's alone, in alternating rounds; the first step of each child is
a warm-up and is not counted, and each phase is the median over the timed steps. Acceptance: our step must not be
slower than the plain loop's U-Net work alone (teacher + student), i.e. the cache must remove the encoding and
add nothing. Run (215 s on this project's 2 idle cores, 12 minutes while other jobs shared them; one SD-size job
at a time, each child peaks at 15.1 GB):

    .venv/bin/python benchmarks/sd_kd_step.py [--steps 3] [--rounds 2] [--batch 2] [--resolution 128]
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import shutil
import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from plain_kd_step import BK_SDM_FEATURE_PAIRS, PlainKD  # benchmarks/ is on sys.path when run as a script

ROOT = Path(__file__).resolve().parents[1]
FULL_SIZE_DIR = ROOT / "data" / "01_raw" / ".sd_shaped" / "sd-v1-4-w1-seed0"  # the slow test's folder too
N_IMAGES = 8  # both loops draw their batches from the same images


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9  # Linux reports KiB


def _setup(pipeline_dir: str, preset: str, resolution: int, work: Path):
    """The placed teacher pipeline, the world image folder and the preset student pruned from the teacher."""
    from diffusers import StableDiffusionPipeline

    from delta_diff.architecture import ArchitectureSpace, preset_genome, prune
    from delta_diff.data import read_image_folder, write_image_folder
    from delta_diff.sd import DevicePolicy
    from delta_diff.world import WorldSpec, make_world_images

    policy = DevicePolicy(device="cpu")
    teacher = policy.place_frozen(StableDiffusionPipeline.from_pretrained(pipeline_dir, local_files_only=True,
                                                                          use_safetensors=True))
    images, metadata = make_world_images(WorldSpec(image_size=resolution), "train", N_IMAGES, 1)
    folder = read_image_folder(write_image_folder(work / "images", images, metadata[["file_name", "text"]]))
    space = ArchitectureSpace(dict(teacher.unet.config))
    return policy, teacher, folder, prune(teacher.unet, preset_genome(space, preset), space)


def ours(pipeline_dir: str, preset: str, resolution: int, batch: int, steps: int) -> dict:
    """delta-diff's step: ``distill_student`` on ``build_training_cache``'s cache (no encoding per step). Its
    history (one row per step) gives each step's time; hooks on the teacher U-Net time its forward, and the rest
    of the step is the student's forward, backward and AdamW (plus drawing the batch and the loss, which are
    tiny)."""
    from delta_diff.data.latent_cache import build_training_cache
    from delta_diff.distill import DistillConfig, distill_student
    from delta_diff.sd import training_noise_scheduler

    work = Path(tempfile.mkdtemp(prefix="sd-kd-step-"))  # the cache is read from disk while training
    policy, teacher, folder, student = _setup(pipeline_dir, preset, resolution, work)
    clock = time.perf_counter()
    # text embeddings cached, so the step is the U-Nets' work alone (the token-id default adds the text encoder)
    cache = build_training_cache(folder, teacher, resolution, work / "cache", text="embeddings", show_progress=False)
    cache_s = time.perf_counter() - clock
    teacher_s: list[float] = []
    began: list[float] = []
    handles = [teacher.unet.register_forward_pre_hook(lambda module, args: began.append(time.perf_counter())),
               teacher.unet.register_forward_hook(
                   lambda module, args, output: teacher_s.append(time.perf_counter() - began[-1]))]
    config = DistillConfig(steps=steps + 1, batch_size=batch, log_every=1)
    _, history = distill_student(teacher.unet, student, cache, training_noise_scheduler(teacher), config,
                                 policy=policy, show_progress=False)
    for handle in handles:
        handle.remove()
    shutil.rmtree(work, ignore_errors=True)
    step_s = [batch / row["samples_per_s"] for row in history][1:]  # the first step warms up
    teacher_s = teacher_s[1:]
    assert len(teacher_s) == len(step_s) == steps, "one teacher forward per step"
    return {"encode_s_each": [0.0] * steps, "teacher_forward_s_each": teacher_s,
            "student_step_s_each": [s - t for s, t in zip(step_s, teacher_s)], "step_s_each": step_s,
            "cache_build_s": cache_s, "cache_images": N_IMAGES, "loss": history[-1]["loss"],
            "peak_rss_gb": peak_rss_gb()}


def plain(pipeline_dir: str, preset: str, resolution: int, batch: int, steps: int) -> dict:
    """The plain BK-SDM-style loop: VAE + text encoder + teacher + student + AdamW every step."""
    from delta_diff.data.latent_cache import pil_batch_to_pixels
    from delta_diff.distill import feature_pairing
    from delta_diff.sd import training_noise_scheduler

    with tempfile.TemporaryDirectory() as work:
        policy, teacher, folder, student = _setup(pipeline_dir, preset, resolution, Path(work))
        pixels = pil_batch_to_pixels([folder.load_image(i) for i in range(len(folder))], resolution)
    pairs = BK_SDM_FEATURE_PAIRS[preset]
    if tuple(feature_pairing(student, teacher.unet).pairs) != pairs:
        raise AssertionError("the plain loop's BK-SDM pairs differ from delta_diff.distill.feature_pairing's")
    loop = PlainKD(teacher.vae, teacher.text_encoder, teacher.tokenizer, teacher.unet,
                   policy.trainable_copy(student), training_noise_scheduler(teacher), pairs,
                   pixels.to(policy.torch_device), folder.captions, batch)
    rows = [loop.step() for _ in range(steps + 1)][1:]  # the first step warms up
    each = {f"{key}_each": [row[key] for row in rows] for key in rows[0] if key.endswith("_s")}
    each["encode_s_each"] = [row["vae_encode_s"] + row["text_encode_s"] for row in rows]
    return {**each, "loss": rows[-1]["loss"], "peak_rss_gb": peak_rss_gb()}


def _combine(runs: list[dict]) -> dict:
    """One loop's rounds as one row: each per-step phase the median over all timed steps, peak RSS the largest."""
    combined = dict(runs[-1])
    for key in ("encode_s", "vae_encode_s", "text_encode_s", "teacher_forward_s", "student_step_s", "step_s"):
        if f"{key}_each" in runs[0]:
            combined[key] = statistics.median(value for run in runs for value in run[f"{key}_each"])
    combined["step_s_each"] = [value for run in runs for value in run["step_s_each"]]
    combined["peak_rss_gb"] = max(run["peak_rss_gb"] for run in runs)
    if "cache_build_s" in runs[0]:
        combined["cache_build_s"] = statistics.median(run["cache_build_s"] for run in runs)
    return combined


def _in_child(function, *args):
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(function, *args).result()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3, help="timed steps per loop (after one warm-up step)")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds of the two loops")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--resolution", type=int, default=128)
    parser.add_argument("--preset", default="bk-sdm-small", choices=["bk-sdm-small", "bk-sdm-tiny"])
    parser.add_argument("--pipeline-dir", type=Path, default=FULL_SIZE_DIR)
    args = parser.parse_args()
    from delta_diff.sd_shaped import build_sd_shaped

    build_sd_shaped("sd-v1-4", args.pipeline_dir, width_scale=1.0, seed=0)
    import torch

    print(f"SD v1.4 shapes -> {args.preset}, {args.resolution} px, batch {args.batch}, fp32 on the CPU "
          f"({torch.get_num_threads()} threads), {args.rounds} rounds of {args.steps} timed steps after 1 warm-up, "
          "each loop and round in its own process")
    started = time.perf_counter()
    # Rounds alternate the two loops, so that a change in this shared machine's speed during the run falls on
    # both; each phase is the median over every timed step of every round.
    rounds: dict[str, list[dict]] = {"ours (cached)": [], "plain (encodes)": []}
    for _ in range(args.rounds):
        for name, function in (("ours (cached)", ours), ("plain (encodes)", plain)):
            rounds[name].append(_in_child(function, str(args.pipeline_dir), args.preset, args.resolution,
                                          args.batch, args.steps))
    results = {name: _combine(runs) for name, runs in rounds.items()}
    print(f"\n{'seconds per step':<18}{'encode':>9}{'teacher':>9}{'student':>9}{'step':>9}{'peak RSS GB':>13}")
    for name, r in results.items():
        print(f"{name:<18}{r['encode_s']:>9.2f}{r['teacher_forward_s']:>9.2f}{r['student_step_s']:>9.2f}"
              f"{r['step_s']:>9.2f}{r['peak_rss_gb']:>13.1f}")
    mine, theirs = results["ours (cached)"], results["plain (encodes)"]
    print(f"(encode = VAE {theirs['vae_encode_s']:.2f} + text encoder {theirs['text_encode_s']:.2f}; student = "
          "forward + backward + AdamW; steps: "
          + "; ".join(f"{n} " + ", ".join(f"{s:.1f}" for s in r["step_s_each"]) for n, r in results.items()) + ")")
    print(f"our one-off cache build: {mine['cache_build_s']:.1f} s for {mine['cache_images']} images")
    unet_work = theirs["teacher_forward_s"] + theirs["student_step_s"]
    holds = mine["step_s"] <= unet_work
    print(f"acceptance: our step ({mine['step_s']:.2f} s) must not be slower than the plain loop's U-Net work "
          f"alone (teacher + student, {unet_work:.2f} s): {'holds' if holds else 'DOES NOT HOLD'} "
          f"({unet_work / mine['step_s']:.2f}x); vs the whole plain step {theirs['step_s'] / mine['step_s']:.2f}x")
    print(f"total {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
