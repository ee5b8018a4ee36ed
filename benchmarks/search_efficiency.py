"""How many real proxy evaluations each search needs to find the optimum (issue: architecture_search).

On the shipped embedded teacher, restricted to a few removable units (every other unit kept) so the space can be
enumerated: the search objective (the surrogate's estimate from a genome's real proxies) is computed for every
feasible genome to know the true optimum, then three searches run over >= 5 seeds:

* surrogate-assisted GA: each round a cheap model of fitness, fitted on the genomes evaluated so far, drives a GA
  whose best few new genomes are evaluated for real (``EvolutionConfig.prescreen``, NSGANetV2-style);
* surrogate-free GA: every new offspring evaluated for real;
* random search: feasible genomes in random order.

Prints the number of distinct real evaluations until a genome with the optimal objective value was first evaluated
(or the cap ran out), median over seeds, and the timing of one proxy evaluation. The exhaustive proxies are
computed once (~11 min here) and cached under ``data/07_model_output/search_benchmark/``. Run:

    .venv/bin/python benchmarks/search_efficiency.py [--seeds 5]
"""

from __future__ import annotations

import argparse
import hashlib
import random
import statistics
import time
from pathlib import Path

import pandas as pd
import torch
from diffusers import StableDiffusionPipeline
from tqdm.auto import tqdm

from delta_diff.architecture import ArchitectureSpace, SubSpace, count_params
from delta_diff.scoring import AttributeClassifier, WorldScorer
from delta_diff.search import EvolutionConfig, ProxyEvaluator, params_of, SurrogateConfig, ThetaSetup, evolve, fit_surrogate
from delta_diff.search.surrogate_data import collect_surrogate_data
from delta_diff.distill import DistillConfig, distill_student
from delta_diff.data.latent_cache import encode_latents, encode_prompts
from delta_diff.similarity import SimilarityProbe, word_token_mask
from delta_diff.world import WorldSpec, make_prompt_set, make_world_images, parse_caption
from delta_diff.world.components import sd_v1_noise_scheduler
from delta_diff.world.train_vae import images_to_tensor

ROOT = Path(__file__).resolve().parents[1]
# 13 units -> 2,880 distinct architectures, 1,380 of them within 80 % of the teacher's parameters.
UNITS = ["mid", "pair:0.1", "pair:1.1", "pair:2.1", "down_attn:0.0", "down_attn:1.0", "down_attn:1.1",
         "down_attn:2.1", "up_attn:0.1", "up_attn:1.1", "up_attn:1.2", "up_attn:2.0", "up_attn:2.2"]
CACHE = ROOT / "data/07_model_output/search_benchmark"


def build(seed: int = 0):
    teacher = StableDiffusionPipeline.from_pretrained(ROOT / "data/06_models/embedded_teacher", local_files_only=True,
                                                      use_safetensors=True)
    spec = WorldSpec()
    images, meta = make_world_images(spec, "train", 256, seed=11)
    latents, stds = encode_latents(teacher.vae, images_to_tensor(images))
    text = encode_prompts(teacher.tokenizer, teacher.text_encoder, list(meta.text))
    cache = {"latent_mean": latents, "latent_std": stds, "text_embeddings": text,
             "empty_text_embedding": encode_prompts(teacher.tokenizer, teacher.text_encoder, [""])}
    n = 8
    steps = torch.tensor([500] * n)
    noisy = sd_v1_noise_scheduler().add_noise(latents[:n], torch.randn(latents[:n].shape,
                                              generator=torch.Generator().manual_seed(seed)), steps)
    probe = SimilarityProbe(noisy, steps, text[:n], word_token_mask(teacher.tokenizer, list(meta.text[:n])))
    prompts = make_prompt_set(spec, "search", 4, seed=2000)  # the search's own prompts, as prepare_search
    scorer = WorldScorer(AttributeClassifier.from_pretrained(ROOT / "data/06_models/world_scorer"),
                         lambda p: parse_caption(p, spec))
    full = ArchitectureSpace(dict(teacher.unet.config))
    space = SubSpace(full, UNITS)
    evaluator = ProxyEvaluator(teacher, space, probe, scorer, ThetaSetup(list(prompts.text), list(prompts.seed), 5))
    return teacher, space, evaluator, cache


def exhaustive_proxies(evaluator, space, feasible, budget_fraction: float) -> dict:
    """Every feasible genome's real proxies, cached on disk by teacher weights and space (minutes to compute)."""
    weights = ROOT / "data/06_models/embedded_teacher/unet/diffusion_pytorch_model.safetensors"
    key = hashlib.sha256(weights.read_bytes() + repr((UNITS, budget_fraction)).encode()).hexdigest()[:12]
    path = CACHE / f"proxies_{key}.csv"
    if path.exists():
        table = pd.read_csv(path, dtype={"genome": str})
        by_string = {row["genome"]: row for row in table.to_dict("records")}
        print(f"proxies of all {len(table)} feasible genomes read from {path.relative_to(ROOT)}")
        return {g: by_string[space.to_string(g)] for g in feasible}
    proxies = {g: evaluator.evaluate(g) for g in tqdm(feasible, desc="exhaustive proxies")}
    CACHE.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    pd.DataFrame(proxies.values()).to_csv(partial, index=False)
    partial.replace(path)  # never a half-written cache
    return proxies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--budget-fraction", type=float, default=0.8)
    parser.add_argument("--surrogate-rows", type=int, default=8)
    args = parser.parse_args()
    torch.manual_seed(0)
    teacher, space, evaluator, cache = build()
    parent = count_params(space.parent_config)
    budget = int(args.budget_fraction * parent)
    genomes = list(space.enumerate())
    feasible = [g for g in genomes if params_of(space, g) <= budget]
    print(f"restricted space: {len(space)} units, {len(genomes)} architectures, {len(feasible)} within "
          f"{args.budget_fraction:.0%} of {parent:,} params")

    proxies = exhaustive_proxies(evaluator, space, feasible, args.budget_fraction)
    per_eval = statistics.median(p["proxy_seconds"] for p in proxies.values())
    print(f"one proxy evaluation (Phi + eps + Theta on 4 images x 5 steps): median {per_eval:.2f} s")

    rng = random.Random(0)
    sample = rng.sample(feasible, min(args.surrogate_rows, len(feasible)))
    distil = lambda p, s: distill_student(p, s, cache, sd_v1_noise_scheduler(),  # noqa: E731
                                          DistillConfig(steps=20, batch_size=32, learning_rate=5e-4),
                                          show_progress=False)[0]
    table = collect_surrogate_data(evaluator, sample, distil, show_progress=False)
    surrogate, report, _ = fit_surrogate(table, SurrogateConfig(min_rows=min(6, len(table))))
    rows = pd.DataFrame([{**proxies[g], "param_fraction": proxies[g]["params"] / parent} for g in feasible])
    objective = dict(zip(feasible, surrogate.predict(rows)))
    optimum = max(objective, key=objective.get)
    print(f"surrogate fitted on {len(table)} short distillations (Kendall {report['surrogate']['kendall_tau']:.2f}); "
          f"optimum: {space.removed_keys(optimum)} estimate {objective[optimum]:.4f}")

    best_value = objective[optimum]
    ties = sum(abs(v - best_value) <= 1e-9 for v in objective.values())
    print(f"genomes that reach the optimum's estimate (ties of the tree ensemble): {ties}")

    def until_optimum(order: list) -> int:
        """Distinct real evaluations until one reached the optimal objective value."""
        seen = []
        for g in order:
            if g not in seen:
                seen.append(g)
            if abs(objective.get(g, -1.0) - best_value) <= 1e-9:
                return len(seen)
        return len(seen)

    results = {"surrogate-assisted GA": [], "surrogate-free GA": [], "random search": []}
    for seed in range(args.seeds):
        for name, prescreen in (("surrogate-assisted GA", True), ("surrogate-free GA", False)):
            order = []

            def fitness(g):
                order.append(g)
                return float(objective[g]) if g in objective else -1.0

            # Stopping rules off (patience = cap) so each search runs until it finds the optimum or the cap.
            config = EvolutionConfig(population=12, max_generations=60, patience=60, prescreen=prescreen,
                                     real_evaluations_per_generation=3, seed=seed)
            evolve(space, budget, fitness, config, show_progress=False)
            results[name].append(until_optimum(order) if any(abs(objective.get(g, -1.0) - best_value) <= 1e-9 for g in order) else float("inf"))
        shuffled = feasible.copy()
        random.Random(seed).shuffle(shuffled)
        results["random search"].append(until_optimum(shuffled))

    print(f"\n{'search':<24}{'median evals to optimum':>26}{'share of space':>16}   per seed")
    for name, counts in results.items():
        median = statistics.median(counts)
        print(f"{name:<24}{median:>26}{median / len(feasible):>16.1%}   {counts}")


if __name__ == "__main__":
    main()
