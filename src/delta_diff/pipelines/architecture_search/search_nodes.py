"""Thin nodes of one search stage: set up proxies, collect surrogate data, fit the surrogate, search, prune."""

from __future__ import annotations

import logging
from functools import partial
from typing import Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, model_validator

from delta_diff.architecture import ArchitectureSpace, NestedSpace, count_params, describe_removed, describe_structure, prune
from delta_diff.distill import DistillConfig, distill_student
from delta_diff.reporting.search_figures import (
    convergence_figure,
    exhaustive_figure,
    population_figure,
    surrogate_fit_figure,
)
from delta_diff.scoring import AttributeClassifier, WorldScorer
from delta_diff.scoring.hps_v2 import checkpoint_problem
from delta_diff.search import (
    EvolutionConfig,
    ProxyEvaluator,
    SurrogateConfig,
    ThetaSetup,
    all_feasible,
    check_budget,
    collect_surrogate_data,
    evolve,
    fit_surrogate,
    sample_candidates,
)
from delta_diff.similarity import probe_from_cache
from delta_diff.tracking import log_metrics
from delta_diff.training import weights_digest
from delta_diff.world import WorldSpec, parse_caption
from delta_diff.world.components import sd_v1_noise_scheduler

logger = logging.getLogger(__name__)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BudgetParams(_Strict):
    fraction_of_parent: float | None = 0.75
    params: int | None = None

    @model_validator(mode="after")
    def _one(self) -> BudgetParams:
        if (self.fraction_of_parent is None) == (self.params is None):
            raise ValueError("give exactly one of budget.fraction_of_parent and budget.params")
        if self.fraction_of_parent is not None and not 0 < self.fraction_of_parent < 1:
            raise ValueError(f"budget.fraction_of_parent {self.fraction_of_parent} must be in (0, 1)")
        return self


class ProbeParams(_Strict):
    n_prompts: int = 16
    timesteps: list[int] = [300, 600]
    seed: int = 0


class ThetaParams(_Strict):
    n_prompts: int = 8
    steps: int = 10
    guidance_scale: float = 4.0
    scorer: Literal["world", "hps_v2"] = "world"  # hps_v2 for real SD models (the world's scorer reads world captions)
    hps_checkpoint: str | None = None
    hps_model_name: str = "ViT-H-14"

    @model_validator(mode="after")
    def _hps_needs_a_checkpoint(self) -> ThetaParams:
        problem = checkpoint_problem(self.hps_checkpoint, "theta.hps_checkpoint") if self.scorer == "hps_v2" else None
        if problem:
            raise ValueError(f"theta.scorer is hps_v2 but {problem}")
        return self


class SurrogateDataParams(_Strict):
    n_candidates: int = 10
    seed: int = 0
    reuse_previous: bool = True  # extend the newest saved table (same parent and settings) instead of redoing it
    distillation: DistillConfig = DistillConfig(steps=40, batch_size=32, learning_rate=5e-4, log_every=10)


class SearchParams(_Strict):
    # "random": a seeded random architecture just under the budget instead of the search (an ablation baseline)
    strategy: Literal["surrogate", "random"] = "surrogate"
    budget: BudgetParams = BudgetParams()
    probe: ProbeParams = ProbeParams()
    theta: ThetaParams = ThetaParams()
    surrogate_data: SurrogateDataParams = SurrogateDataParams()
    surrogate: SurrogateConfig = SurrogateConfig()
    evolution: EvolutionConfig = EvolutionConfig()


def plan_single_stage(parent, params: SearchParams) -> dict[str, Any]:
    """A stand-alone stage: the parent's whole space, budget from ``budget`` (a path plans its stages itself)."""
    space = ArchitectureSpace(dict(parent.unet.config))
    parent_params = count_params(space.parent_config)
    budget = params.budget.params if params.budget.params is not None else int(parent_params * params.budget.fraction_of_parent)
    check_budget(space, budget)
    return {"teacher_config": dict(space.parent_config), "base": None, "student": None, "budget": budget}


def search_space(plan: dict[str, Any]):
    """The space a plan searches: the parent's own, or (on a path) the nested one in teacher coordinates."""
    teacher_space = ArchitectureSpace(plan["teacher_config"])
    if plan["student"] is None:
        return teacher_space
    return NestedSpace(teacher_space, teacher_space.parse(plan["base"] or "none"), teacher_space.parse(plan["student"]))


def prepare_search(parent, plan: dict[str, Any], prompt_sets: dict[str, Any], training_cache,
                   classifier: AttributeClassifier, world: WorldSpec, params: SearchParams) -> dict[str, Any]:
    """Everything each candidate is measured against; fails here (seconds) on a bad budget or empty prompts."""
    space = search_space(plan)
    budget = int(plan["budget"])
    check_budget(space, budget)
    evaluation = prompt_sets.get("eval") or []
    if not evaluation:
        raise ValueError("prompt_sets has no eval prompts; rerun data_prep (Theta needs prompts)")
    chosen = evaluation[: params.theta.n_prompts]
    tokenizer = parent.tokenizer
    special = [tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id]
    probe = probe_from_cache(training_cache, special, params.probe.n_prompts, params.probe.timesteps,
                             sd_v1_noise_scheduler(), params.probe.seed)
    if params.theta.scorer == "hps_v2":
        from delta_diff.scoring.hps_v2 import HPSv2Scorer

        scorer = HPSv2Scorer(params.theta.hps_checkpoint, model_name=params.theta.hps_model_name,
                             key="theta.hps_checkpoint")
    else:
        scorer = WorldScorer(classifier, lambda prompt: parse_caption(prompt, world))
    theta = ThetaSetup([e["text"] for e in chosen], [int(e["seed"]) for e in chosen], params.theta.steps,
                       params.theta.guidance_scale)
    evaluator = ProxyEvaluator(parent, space, probe, scorer, theta)
    logger.info("search space: %d free units; parent %s params; budget %s params", len(space),
                f"{count_params(space.parent_config):,}", f"{budget:,}")
    return {"evaluator": evaluator, "budget": budget, "space": space}


def _setup_stamp(context: dict[str, Any], params: SearchParams) -> str:
    """Rows of an earlier table are reusable only for the same parent weights, proxies and distillation."""
    import hashlib
    import json

    weights = weights_digest(context["evaluator"].parent)
    settings = params.model_dump(include={"probe", "theta", "surrogate_data"}, exclude={"surrogate_data": {"n_candidates", "reuse_previous", "seed"}})
    return hashlib.sha256((weights + json.dumps(settings, sort_keys=True)).encode()).hexdigest()[:16]


def build_surrogate_training_data(context: dict[str, Any], training_cache, previous: pd.DataFrame,
                                  params: SearchParams) -> pd.DataFrame:
    evaluator = context["evaluator"]
    stamp = _setup_stamp(context, params)
    reusable = None
    if params.surrogate_data.reuse_previous and len(previous) and "setup" in previous:
        reusable = previous[previous["setup"] == stamp]
        logger.info("reusing %d of %d rows of the previous surrogate table", len(reusable), len(previous))
    feasible = all_feasible(context["space"], context["budget"])
    exhaustive = feasible is not None and len(feasible) <= params.surrogate_data.n_candidates
    if exhaustive:
        # Fewer architectures fit than we would distil anyway: distil them all; the measurement is the answer.
        logger.info("only %d architectures fit the budget: distilling every one (no surrogate needed)", len(feasible))
        candidates = feasible
    else:
        candidates = sample_candidates(context["space"], context["budget"], params.surrogate_data.n_candidates,
                                       params.surrogate_data.seed)
    distil = partial(_short_distil, cache=training_cache, config=params.surrogate_data.distillation)
    table = collect_surrogate_data(evaluator, candidates, distil, existing=reusable)
    table["setup"] = stamp
    table["exhaustive"] = exhaustive
    log_metrics({"surrogate_data.rows": len(table), "surrogate_data.mean_distil_seconds": table["distil_seconds"].mean(),
                 "surrogate_data.mean_proxy_seconds": table["proxy_seconds"].mean()})
    return table


def _short_distil(parent, student, cache, config: DistillConfig):
    student, _ = distill_student(parent, student, cache, sd_v1_noise_scheduler(), config, show_progress=False,
                                 name="short_distil")
    return student


# Stands in for the surrogate when every feasible architecture was distilled (Kedro refuses to hand over None).
EXHAUSTIVE = "exhaustive: no surrogate needed"


def fit_search_surrogate(table: pd.DataFrame, params: SearchParams):
    if len(table) and bool(table["exhaustive"].iloc[0]):
        report = {"rows": len(table), "exhaustive": True,
                  "note": "every architecture within the budget was distilled for real; no surrogate was fitted"}
        return EXHAUSTIVE, report, exhaustive_figure(table)
    surrogate, report, out_of_fold = fit_surrogate(table, params.surrogate)
    quality = report["surrogate"]
    logger.info("surrogate: Kendall %.2f, Spearman %.2f, RMSE %.4f (%d rows); Phi alone Kendall %.2f",
                quality["kendall_tau"], quality["spearman_rho"], quality["rmse"], report["rows"],
                report.get("phi_alone", {}).get("kendall_tau", float("nan")))
    if not report["better_than_best_single_proxy"]:
        logger.warning("the surrogate ranks candidates no better than its best single proxy on these %d rows",
                       report["rows"])
    log_metrics({f"surrogate.{k}": v for k, v in quality.items()})
    return surrogate, report, surrogate_fit_figure(out_of_fold, report)


def search_architecture(context: dict[str, Any], surrogate, params: SearchParams, table: pd.DataFrame | None = None):
    evaluator, space, budget = context["evaluator"], context["space"], context["budget"]
    if params.strategy == "random":
        genome = sample_candidates(space, budget, 1, params.evolution.seed)[0]
        proxies = evaluator.evaluate(genome)
        logger.info("strategy random: a seeded random architecture under the budget, no search")
        return _report_choice(evaluator, space, budget, genome, float("nan"),
                              pd.DataFrame([{"generation": 0, "best": float("nan"), "mean": float("nan"),
                                             "feasible": 1, "real_evaluations": 1}]),
                              pd.DataFrame([{**proxies, "estimate": float("nan")}]))
    if surrogate == EXHAUSTIVE:  # every feasible candidate was measured: pick the best measurement
        best = table.sort_values("distilled_score", ascending=False).iloc[0]
        genome = tuple(int(c) for c in str(best["genome"]))
        genome = space.from_full(genome) if hasattr(space, "from_full") else genome
        return _report_choice(evaluator, space, budget, genome, float(best["distilled_score"]),
                              pd.DataFrame([{"generation": 0, "best": float(best["distilled_score"]),
                                             "mean": float(table["distilled_score"].mean()),
                                             "feasible": len(table), "real_evaluations": len(table)}]),
                              table.assign(estimate=table["distilled_score"]))
    estimates: dict[tuple, float] = {}
    parent_params = count_params(space.parent_config)

    def fitness(genome):
        if genome not in estimates:
            proxies = evaluator.evaluate(genome)
            row = pd.DataFrame([{**proxies, "param_fraction": proxies["params"] / parent_params}])
            estimates[genome] = float(surrogate.predict(row)[0])
        return estimates[genome]

    result = evolve(space, budget, fitness, params.evolution)
    evaluated = pd.DataFrame([{**evaluator.evaluate(g), "estimate": e} for g, e in estimates.items()])
    return _report_choice(evaluator, space, budget, result.best_genome, result.best_fitness,
                          pd.DataFrame(result.history), evaluated)


def _report_choice(evaluator, space, budget: int, genome, score: float, history: pd.DataFrame,
                   evaluated: pd.DataFrame):
    chosen = space.to_string(genome)
    teacher_space = getattr(space, "full", space)
    full_genome = space.to_full(genome) if hasattr(space, "to_full") else genome
    proxies = evaluator.evaluate(genome)
    architecture = {
        "genome": chosen,  # in the coordinates of the plan's teacher (the parent itself on a stand-alone stage)
        "parent_genome": "".join(map(str, space.parent_genome(genome))) if hasattr(space, "parent_genome") else chosen,
        "removed_units": space.removed_keys(genome),
        "removed": describe_removed(teacher_space, full_genome),
        "kept": describe_structure(space.derive(genome).structure),
        "params": proxies["params"],
        "parent_params": count_params(space.parent_config),
        "budget": budget,
        "estimated_distilled_score": score,
        "proxies": {k: proxies[k] for k in ("phi", "theta", "eps_mse")},
        "generations": len(history),
        "real_proxy_evaluations": evaluator.evaluations,
    }
    logger.info("chosen: %s params (budget %s), score %.4f; removes %s", f"{proxies['params']:,}", f"{budget:,}",
                score, ", ".join(architecture["removed_units"]) or "nothing")
    log_metrics({"search.estimate": score, "search.params": proxies["params"],
                 "search.generations": len(history), "search.proxy_evaluations": evaluator.evaluations})
    return architecture, history, convergence_figure(history), population_figure(evaluated, chosen)


def prune_chosen(parent, architecture: dict[str, Any]):
    space = ArchitectureSpace(dict(parent.unet.config))
    return prune(parent.unet, space.parse(architecture["parent_genome"]), space)
