"""Thin nodes of one search stage: set up proxies, collect surrogate data, fit the surrogate, search, prune."""

from __future__ import annotations

import logging
from functools import partial
from typing import Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from delta_diff.architecture import ArchitectureSpace, NestedSpace, count_params, prune
from delta_diff.config_types import Count, PositiveFloat, Timestep
from delta_diff.distill import DistillConfig, distill_student
from delta_diff.reporting.search_figures import (
    convergence_figure,
    exhaustive_figure,
    population_figure,
    surrogate_fit_figure,
)
from delta_diff.scoring import AttributeClassifier, WorldScorer
from delta_diff.scoring.hps_v2 import checkpoint_problem
from delta_diff.sd import DevicePolicy, training_noise_scheduler
from delta_diff.search import (
    EvolutionConfig,
    ProxyEvaluator,
    SurrogateConfig,
    ThetaSetup,
    check_budget,
    choose_architecture,
    describe_choice,
    fit_surrogate,
    setup_stamp,
    surrogate_table,
)
from delta_diff.similarity import probe_from_cache
from delta_diff.tracking import log_metrics
from delta_diff.world import WorldSpec, parse_caption

logger = logging.getLogger(__name__)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BudgetParams(_Strict):
    fraction_of_parent: float | None = 0.75
    params: Count | None = None

    @model_validator(mode="after")
    def _one(self) -> BudgetParams:
        if (self.fraction_of_parent is None) == (self.params is None):
            raise ValueError("give exactly one of budget.fraction_of_parent and budget.params")
        if self.fraction_of_parent is not None and not 0 < self.fraction_of_parent < 1:
            raise ValueError(f"budget.fraction_of_parent {self.fraction_of_parent} must be in (0, 1)")
        return self


class ProbeParams(_Strict):
    n_prompts: Count = 16
    timesteps: list[Timestep] = Field([300, 600], min_length=1)
    seed: int = 0


class ThetaParams(_Strict):
    n_prompts: Count = 8
    steps: Count = 10
    guidance_scale: PositiveFloat = 4.0
    resolution: int | None = Field(None, ge=8)  # image size in px; None: the teacher U-Net's native size
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
    n_candidates: Count = 10
    seed: int = 0
    reuse_previous: bool = True  # extend the newest saved table (same parent and settings) instead of redoing it
    distillation: DistillConfig = DistillConfig(steps=40, batch_size=32, learning_rate=5e-4, log_every=10)
    # (runs under the run's DevicePolicy, params:runtime, like every distillation)


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
                   classifier: AttributeClassifier, world: WorldSpec, params: SearchParams,
                   runtime: DevicePolicy) -> dict[str, Any]:
    """Everything each candidate is measured against, on the run's device; fails here (seconds) on a bad budget
    or empty prompts."""
    space = search_space(plan)
    budget = int(plan["budget"])
    check_budget(space, budget)
    # The search's own prompts, never evaluate's (data_prep checks they are disjoint).
    search_prompts = prompt_sets.get("search") or []
    if not search_prompts:
        raise ValueError("prompt_sets has no search prompts (made before the search had its own split?); rerun "
                         "data_prep (kedro run --pipelines data_prep)")
    chosen = search_prompts[: params.theta.n_prompts]
    runtime.place_frozen(parent)  # this node's own freshly loaded parent
    tokenizer = parent.tokenizer
    special = [tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id]
    probe = probe_from_cache(training_cache, special, params.probe.n_prompts, params.probe.timesteps,
                             training_noise_scheduler(parent), params.probe.seed, text_encoder=parent.text_encoder)
    if params.theta.scorer == "hps_v2":
        from delta_diff.scoring.hps_v2 import load_hps_scorer

        scorer = load_hps_scorer(params.theta.hps_checkpoint, model_name=params.theta.hps_model_name,
                                 policy=runtime, key="theta.hps_checkpoint")
    else:
        scorer = WorldScorer(runtime.place_frozen(classifier), lambda prompt: parse_caption(prompt, world))
    theta = ThetaSetup([e["text"] for e in chosen], [int(e["seed"]) for e in chosen], params.theta.steps,
                       params.theta.guidance_scale, params.theta.resolution)
    evaluator = ProxyEvaluator(parent, space, probe, scorer, theta)
    logger.info("search space: %d free units; parent %s params; budget %s params; on %s in %s", len(space),
                f"{count_params(space.parent_config):,}", f"{budget:,}", runtime.torch_device, runtime.frozen_dtype)
    return {"evaluator": evaluator, "budget": budget, "space": space, "policy": runtime}


def build_surrogate_training_data(context: dict[str, Any], training_cache, previous: pd.DataFrame,
                                  params: SearchParams) -> pd.DataFrame:
    evaluator = context["evaluator"]
    settings = params.model_dump(include={"probe", "theta", "surrogate_data"},
                                 exclude={"surrogate_data": {"n_candidates", "reuse_previous", "seed"}})
    stamp = setup_stamp(evaluator.parent, {**settings, **context["policy"].model_dump(exclude={"device"})})
    distil = partial(_short_distil, cache=training_cache, config=params.surrogate_data.distillation,
                     noise_scheduler=training_noise_scheduler(evaluator.parent_pipeline), policy=context["policy"],
                     text_encoder=evaluator.parent_pipeline.text_encoder)
    table = surrogate_table(evaluator, context["space"], context["budget"], distil,
                            params.surrogate_data.n_candidates, params.surrogate_data.seed, stamp,
                            previous if params.surrogate_data.reuse_previous else None)
    log_metrics({"surrogate_data.rows": len(table), "surrogate_data.mean_distil_seconds": table["distil_seconds"].mean(),
                 "surrogate_data.mean_proxy_seconds": table["proxy_seconds"].mean()})
    return table


def _short_distil(parent, student, cache, config: DistillConfig, noise_scheduler, policy: DevicePolicy,
                  text_encoder=None):
    student, _ = distill_student(parent, student, cache, noise_scheduler, config, show_progress=False,
                                 name="short_distil", policy=policy, text_encoder=text_encoder)
    return policy.place_frozen(student)  # scored in the parent's (frozen) pipeline


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
    choice = choose_architecture(evaluator, space, budget, params.strategy,
                                 None if surrogate == EXHAUSTIVE else surrogate, table, params.evolution)
    architecture = describe_choice(evaluator, space, budget, choice)
    log_metrics({"search.estimate": choice.score, "search.params": architecture["params"],
                 "search.generations": len(choice.history), "search.proxy_evaluations": evaluator.evaluations})
    return (architecture, choice.history, convergence_figure(choice.history),
            population_figure(choice.evaluated, architecture["genome"]))


def prune_chosen(parent, architecture: dict[str, Any]):
    """The chosen candidate pruned from this node's freshly loaded parent (its stored precision: the student's
    fp32 master weights start from the parent's full-precision weights, not a half-precision copy)."""
    space = ArchitectureSpace(dict(parent.unet.config))
    return prune(parent.unet, space.parse(architecture["parent_genome"]), space)
