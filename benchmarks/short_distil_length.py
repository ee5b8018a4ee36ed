"""How long must the search's short distillations be to rank candidates as longer ones would? (issue 14, must 4)

The surrogate learns "score after a short distillation" from a few candidates. That target is only useful if its
ranking of candidates is the ranking they would have after longer training. This script measures it for one
search stage, with the run's own inputs (``--env``: teacher, training cache, scorer, prompt sets and search
settings from the Kedro catalog, so `data_prep` must have run in that environment):

1. samples ``--candidates`` architectures under the stage's budget (the search's own sampler);
2. distils each from the teacher for ``--lengths`` steps, one run per candidate continued from its checkpoint
   (so 40 steps is the first 40 of the 320-step run), scoring Theta (the search's image metric) at each length;
3. prints, per length, Kendall tau and Spearman rho with the longest length's ranking, and the candidates'
   score spread next to the score change of one candidate distilled with another seed (noise).

Choose the shortest length whose ranking agrees with the longest (tau >= ~0.7) and whose spread is well above
the noise; at SD scale run it on a GPU with ``--env sd_v1_4`` (the lengths then in the thousands).

    KEDRO_DISABLE_TELEMETRY=1 .venv/bin/python benchmarks/short_distil_length.py [--env world_v2] \
        [--candidates 8] [--lengths 20 40 80 160 320]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default=None)
    parser.add_argument("--candidates", type=int, default=8)
    parser.add_argument("--lengths", type=int, nargs="+", default=[20, 40, 80, 160, 320])
    parser.add_argument("--fraction", type=float, default=0.75, help="budget: this share of the teacher's params")
    parser.add_argument("--out", type=Path, default=None, help="also write the rows here (JSON)")
    args = parser.parse_args()

    from scipy.stats import kendalltau, spearmanr

    from delta_diff.distill import DistillConfig, distill_student
    from delta_diff.sd import training_noise_scheduler
    from delta_diff.search.candidates import params_of, sample_candidates

    from search_stage import search_stage  # benchmarks/search_stage.py, beside this script

    stage = search_stage(args.env, fraction_of_parent=args.fraction)
    teacher, cache, policy = stage["teacher"], stage["cache"], stage["policy"]
    evaluator, space, budget = (stage["context"][k] for k in ("evaluator", "space", "budget"))
    distillation = stage["search"].surrogate_data.distillation.model_dump()
    noise_scheduler = training_noise_scheduler(teacher)
    genomes = sample_candidates(space, budget, args.candidates, seed=0)
    lengths = sorted(args.lengths)
    rows = []
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="short-distil-") as work:
        for number, genome in enumerate(genomes):
            for seed in ((0, 1) if number == 0 else (0,)):  # candidate 0 twice: the seed's noise
                student = evaluator.prune(genome)
                scores = {}
                for length in lengths:
                    config = DistillConfig(**{**distillation, "steps": length, "seed": seed,
                                              "checkpoint_every": length})
                    trained, _ = distill_student(teacher.unet, student, cache, noise_scheduler, config,
                                                 checkpoint_dir=f"{work}/{number}-{seed}", show_progress=False,
                                                 name="short_distil", policy=policy, text_encoder=teacher.text_encoder)
                    scores[length] = evaluator.theta_of(policy.place_frozen(trained))
                rows.append({"candidate": number, "seed": seed, "params": params_of(space, genome),
                             "genome": space.to_string(genome), "scores": scores})
                print(f"candidate {number} seed {seed}: " + ", ".join(f"{k}: {v:.3f}" for k, v in scores.items())
                      + f"  ({time.perf_counter() - began:.0f} s)", flush=True)
    main_rows = [r for r in rows if r["seed"] == 0]
    final = [r["scores"][lengths[-1]] for r in main_rows]
    noise_row = [r for r in rows if r["candidate"] == 0]
    print(f"\n{len(main_rows)} candidates under {budget:,} params ({args.fraction:.0%} of the teacher), "
          f"distillation {distillation}")
    print(f"{'steps':>6} {'Kendall tau':>11} {'Spearman rho':>12} {'spread':>7} {'seed noise':>10}")
    for length in lengths:
        scores = [r["scores"][length] for r in main_rows]
        tau, rho = kendalltau(scores, final)[0], spearmanr(scores, final)[0]
        noise = abs(noise_row[0]["scores"][length] - noise_row[1]["scores"][length])
        print(f"{length:>6} {tau:>11.2f} {rho:>12.2f} {max(scores) - min(scores):>7.3f} {noise:>10.3f}")
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
