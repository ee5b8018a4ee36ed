"""One search stage's orchestration, Kedro-free (the ``architecture_search`` nodes only adapt to it):

* ``surrogate_table``: the surrogate's training rows (short real distillations), reusing an earlier table's rows
  made with the same setup stamp, or distilling every feasible architecture when there are no more of them than
  the table would hold (then the measurement is the answer: ``exhaustive``);
* ``choose_architecture``: the stage's strategy -- the surrogate-driven pymoo search (fitness = the surrogate's
  estimate from the candidate's proxies), the best measured architecture of an exhaustive table, or a seeded
  random architecture under the budget (an ablation);
* ``describe_choice``: the chosen architecture in the teacher's and the parent's coordinates, for the report.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from typing import Any

import pandas as pd

from delta_diff.architecture import count_params, describe_removed, describe_structure
from delta_diff.training import weights_digest

from .candidates import all_feasible, sample_candidates
from .evolution import EvolutionConfig, evolve
from .proxies import ProxyEvaluator
from .surrogate_data import DistilFn, collect_surrogate_data

logger = logging.getLogger(__name__)


def setup_stamp(parent_unet, settings: dict[str, Any]) -> str:
    """Rows of an earlier table are reusable only for the same parent weights, proxies and distillation."""
    blob = weights_digest(parent_unet) + json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def surrogate_table(evaluator: ProxyEvaluator, space, budget: int, distil: DistilFn, n_candidates: int, seed: int,
                    stamp: str, previous: pd.DataFrame | None = None) -> pd.DataFrame:
    """The surrogate's training rows; ``previous`` rows with this ``stamp`` are reused, not recomputed."""
    reusable = None
    if previous is not None and len(previous) and "setup" in previous:
        reusable = previous[previous["setup"] == stamp]
        logger.info("reusing %d of %d rows of the previous surrogate table", len(reusable), len(previous))
    feasible = all_feasible(space, budget)
    exhaustive = feasible is not None and len(feasible) <= n_candidates
    if exhaustive:
        # Fewer architectures fit than we would distil anyway: distil them all; the measurement is the answer.
        logger.info("only %d architectures fit the budget: distilling every one (no surrogate needed)", len(feasible))
        candidates = feasible
    else:
        candidates = sample_candidates(space, budget, n_candidates, seed)
    table = collect_surrogate_data(evaluator, candidates, distil, existing=reusable)
    table["setup"] = stamp
    table["exhaustive"] = exhaustive
    return table


@dataclass
class StageChoice:
    genome: tuple[int, ...]  # in the stage's search-space coordinates
    score: float  # the surrogate's estimate, the measured score (exhaustive), or NaN (random)
    history: pd.DataFrame  # one row per generation / round
    evaluated: pd.DataFrame  # every candidate given real proxies, with its estimate


def choose_architecture(evaluator: ProxyEvaluator, space, budget: int, strategy: str, surrogate,
                        table: pd.DataFrame, evolution: EvolutionConfig) -> StageChoice:
    """``strategy`` "random" (seeded, no search), else the best of an exhaustive ``table`` when ``surrogate`` is
    None, else the surrogate-assisted GA."""
    if strategy == "random":
        genome = sample_candidates(space, budget, 1, evolution.seed)[0]
        proxies = evaluator.evaluate(genome)
        logger.info("strategy random: a seeded random architecture under the budget, no search")
        history = pd.DataFrame([{"generation": 0, "best": float("nan"), "mean": float("nan"), "feasible": 1,
                                 "real_evaluations": 1}])
        return StageChoice(genome, float("nan"), history, pd.DataFrame([{**proxies, "estimate": float("nan")}]))
    if surrogate is None:  # every feasible candidate was measured: pick the best measurement
        best = table.sort_values("distilled_score", ascending=False).iloc[0]
        genome = tuple(int(c) for c in str(best["genome"]))
        genome = space.from_full(genome) if hasattr(space, "from_full") else genome
        history = pd.DataFrame([{"generation": 0, "best": float(best["distilled_score"]),
                                 "mean": float(table["distilled_score"].mean()), "feasible": len(table),
                                 "real_evaluations": len(table)}])
        return StageChoice(genome, float(best["distilled_score"]), history,
                           table.assign(estimate=table["distilled_score"]))
    estimates: dict[tuple, float] = {}
    parent_params = count_params(space.parent_config)

    def fitness(genome):  # the surrogate's estimate of the score after distillation, from real proxies
        if genome not in estimates:
            proxies = evaluator.evaluate(genome)
            row = pd.DataFrame([{**proxies, "param_fraction": proxies["params"] / parent_params}])
            estimates[genome] = float(surrogate.predict(row)[0])
        return estimates[genome]

    result = evolve(space, budget, fitness, evolution)
    evaluated = pd.DataFrame([{**evaluator.evaluate(g), "estimate": e} for g, e in estimates.items()])
    return StageChoice(result.best_genome, result.best_fitness, pd.DataFrame(result.history), evaluated)


def describe_choice(evaluator: ProxyEvaluator, space, budget: int, choice: StageChoice) -> dict[str, Any]:
    """The chosen architecture: genome in the plan's teacher coordinates and in the parent's own, what it removes
    and keeps, its size against the budget, its proxies and the search's effort."""
    genome = choice.genome
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
        "estimated_distilled_score": choice.score,
        "proxies": {k: proxies[k] for k in ("phi", "theta", "eps_mse")},
        "generations": len(choice.history),
        "real_proxy_evaluations": evaluator.evaluations,
    }
    logger.info("chosen: %s params (budget %s), score %.4f; removes %s", f"{proxies['params']:,}", f"{budget:,}",
                choice.score, ", ".join(architecture["removed_units"]) or "nothing")
    return architecture
