"""What a real SD v1.4 path costs in GPU-hours, from BK-SDM's published training cost scaled by counted FLOPs.

BK-SDM (Kim et al. 2023) report about 300 A100-hours to distil BK-SDM-Base from SD v1.4: 50K steps at batch 256,
512 px. A KD step costs one frozen parent forward plus the student's forward and backward (~3 forwards), so a
stage's cost is scaled from that anchor by (F_parent + 3 F_student) / (F_SD + 3 F_Base) x steps / 50K, with F the
U-Net's multiply-accumulates per forward at 64x64 latents and 77 text tokens, counted on the meta device (no
weights). Searched assistants are not known before the search runs: they are taken at their stage's budget, their
FLOPs interpolated linearly in parameters between the teacher's and the student's (an estimate, said so in the
output). H100: the A100 figure divided by the ratio of dense bf16 peaks (989 / 312 TFLOPS = 3.2), i.e. a lower
bound that assumes the same utilisation; 2-3x is what such jobs usually see.

    .venv/bin/python benchmarks/gpu_hours.py [--n-stages 3] [--steps 50000] [--surrogate-candidates 10 --surrogate-steps 500]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from diffusers import UNet2DConditionModel
from torch.utils.flop_counter import FlopCounterMode

from delta_diff.architecture import ArchitectureSpace, count_params, equal_budgets, preset_genome

SD_V1_4 = Path(__file__).resolve().parents[1] / "data" / "01_raw" / "sd_v1_4_unet_config.json"
BK_SDM_BASE_A100_HOURS = 300.0  # BK-SDM paper: Base, 50K steps x batch 256 at 512 px
ANCHOR_STEPS = 50_000
A100_TO_H100 = 989 / 312  # dense bf16 peak TFLOPS (NVIDIA datasheets)


def gmacs(config: dict) -> float:
    with torch.device("meta"):
        unet = UNet2DConditionModel.from_config(config)
        with FlopCounterMode(display=False) as counter:
            unet(torch.randn(1, 4, 64, 64), torch.tensor([500]), encoder_hidden_states=torch.randn(1, 77, 768))
    return counter.get_total_flops() / 2 / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-stages", type=int, default=3)
    parser.add_argument("--steps", type=int, default=ANCHOR_STEPS, help="steps per stage (and per baseline run)")
    parser.add_argument("--surrogate-candidates", type=int, default=10)
    parser.add_argument("--surrogate-steps", type=int, default=500)
    args = parser.parse_args()
    config = json.loads(SD_V1_4.read_text())
    space = ArchitectureSpace(config)
    teacher_f, base_f = gmacs(config), gmacs(space.child_config(preset_genome(space, "bk-sdm-base")))
    anchor = teacher_f + 3 * base_f

    def hours(parent_f: float, student_f: float, steps: int) -> float:
        return BK_SDM_BASE_A100_HOURS * (parent_f + 3 * student_f) / anchor * steps / ANCHOR_STEPS

    print(f"U-Net GMACs per forward at 512 px: SD v1.4 {teacher_f:.1f}, BK-SDM-Base {base_f:.1f} "
          f"(anchor: {BK_SDM_BASE_A100_HOURS:.0f} A100-h for Base at {ANCHOR_STEPS:,} steps)")
    print("| student | model | params | GMACs/fwd | steps | A100-hours | H100-hours (>=) |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for preset in ("bk-sdm-small", "bk-sdm-tiny"):
        genome = preset_genome(space, preset)
        student_p, student_f = count_params(space.child_config(genome)), gmacs(space.child_config(genome))
        teacher_p = count_params(config)
        budgets = equal_budgets(teacher_p, student_p, args.n_stages)
        previous_p, previous_f, total = teacher_p, teacher_f, 0.0
        for index, budget in enumerate(budgets, start=1):
            share = (teacher_p - budget) / (teacher_p - student_p)
            flops = teacher_f + share * (student_f - teacher_f)  # assistants: estimated at their budget
            stage = hours(previous_f, flops, args.steps)
            name = f"stage_{index}" + (" (student)" if index == args.n_stages else " (assistant, est.)")
            if index < args.n_stages:  # the search's short distillations, from this stage's parent
                stage += hours(previous_f, flops, args.surrogate_steps) * args.surrogate_candidates
            print(f"| {preset} | {name} | {budget:,} | {flops:.1f} | {args.steps:,} | {stage:,.0f} | "
                  f"{stage / A100_TO_H100:,.0f} |")
            total += stage
            previous_p, previous_f = budget, flops
        print(f"| {preset} | **path total** (incl. {args.surrogate_candidates} x {args.surrogate_steps}-step "
              f"surrogate distillations per search) | | | {args.n_stages * args.steps:,} | **{total:,.0f}** | "
              f"**{total / A100_TO_H100:,.0f}** |")
        for steps in (args.steps, args.n_stages * args.steps):
            baseline = hours(teacher_f, student_f, steps)
            label = "baseline, TAKD protocol (S steps)" if steps == args.steps else "baseline, equal compute (N x S)"
            print(f"| {preset} | {label} | {student_p:,} | {student_f:.1f} | {steps:,} | {baseline:,.0f} | "
                  f"{baseline / A100_TO_H100:,.0f} |")


if __name__ == "__main__":
    main()
