"""The evolutionary search (pymoo GA) over genomes under a parameter budget.

Fitness is any function of a genome (the surrogate's estimate from the genome's real proxies, in the pipeline);
the budget is a constraint (params - budget <= 0), and a repair operator pulls infeasible offspring back under it
by removing random further units, so the population stays near the budget. Stops when the best fitness has not
improved for ``patience`` generations, or at ``max_generations``. Uses pymoo's ask-and-tell loop so every
generation's history is recorded and the stopping rule is ours.

Computing a genome's real proxies is the expensive part, so with ``prescreen`` (NSGANetV2-style acquisition)
each generation's new offspring are first ranked by a cheap model of fitness from the genome bits, fitted on
every genome evaluated for real so far; only the ``real_evaluations_per_generation`` most promising are evaluated
for real, the others enter selection with their predicted fitness (and can never be reported as the best).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from pydantic import BaseModel, ConfigDict
from pymoo.algorithms.soo.nonconvex.ga import GA
from pymoo.core.population import Population
from pymoo.core.problem import Problem
from pymoo.core.repair import Repair
from pymoo.core.sampling import Sampling
from pymoo.operators.crossover.pntx import TwoPointCrossover
from pymoo.operators.mutation.bitflip import BitflipMutation
from tqdm.auto import tqdm

from delta_diff.architecture import ArchitectureSpace, Genome

from .candidates import fill_to_budget, params_of, sample_candidates


class EvolutionConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    population: int = 16
    max_generations: int = 30
    patience: int = 5
    mutation_prob: float = 0.1  # per gene
    prescreen: bool = True
    real_evaluations_per_generation: int = 4
    seed: int = 0


@dataclass
class SearchResult:
    best_genome: Genome
    best_fitness: float
    history: list[dict] = field(default_factory=list)  # per generation: best, mean, evaluations
    population: list[tuple[Genome, float]] = field(default_factory=list)
    real_evaluations: int = 0


class _BudgetRepair(Repair):
    def __init__(self, space: ArchitectureSpace, budget: int, seed: int):
        super().__init__()
        self.space, self.budget, self.rng = space, budget, random.Random(seed)

    def _do(self, problem, X, **kwargs):
        repaired = []
        for row in np.asarray(X).astype(int):
            genome = tuple(int(b) for b in row)
            if not self.space.is_valid(genome):
                genome = self._make_valid(genome)
            repaired.append(fill_to_budget(self.space, genome, self.budget, self.rng))
        return np.array(repaired, dtype=bool)

    def _make_valid(self, genome: Genome) -> Genome:
        bits = list(genome)
        for i in self.rng.sample(range(len(bits)), len(bits)):  # undo removals until the combination is possible
            if self.space.is_valid(tuple(bits)):
                break
            bits[i] = 0
        return tuple(bits) if self.space.is_valid(tuple(bits)) else self.space.empty()


class _Seeded(Sampling):
    def __init__(self, genomes: list[Genome]):
        super().__init__()
        self.genomes = genomes

    def _do(self, problem, n_samples, **kwargs):
        return np.array([self.genomes[i % len(self.genomes)] for i in range(n_samples)], dtype=bool)


def evolve(space: ArchitectureSpace, budget: int, fitness: Callable[[Genome], float], config: EvolutionConfig,
           show_progress: bool = True) -> SearchResult:
    """Maximise ``fitness`` over genomes with params <= budget."""
    initial = sample_candidates(space, budget, config.population, config.seed)
    problem = Problem(n_var=len(space), n_obj=1, n_ieq_constr=1, xl=0, xu=1, vtype=bool)
    algorithm = GA(
        pop_size=config.population,
        sampling=_Seeded(initial),
        crossover=TwoPointCrossover(),
        mutation=BitflipMutation(prob=1.0, prob_var=config.mutation_prob),
        repair=_BudgetRepair(space, budget, config.seed),
        eliminate_duplicates=True,
    )
    algorithm.setup(problem, seed=config.seed, termination=("n_gen", config.max_generations + 1))
    result = SearchResult(best_genome=initial[0], best_fitness=-np.inf)
    real: dict[Genome, float] = {}
    stale = 0
    progress = tqdm(range(config.max_generations), desc="search", disable=not show_progress)
    for generation in progress:
        population: Population = algorithm.ask()
        genomes = [space.canonical(tuple(int(b) for b in row)) for row in population.get("X").astype(int)]
        chosen = _to_evaluate(genomes, real, config, generation)
        for genome in chosen:
            real[genome] = float(fitness(genome))
        unknown = [g for g in genomes if g not in real]
        predicted = _predict(unknown, real, config) if unknown else {}
        values = np.array([real[g] if g in real else predicted[g] for g in genomes])
        violation = np.array([[params_of(space, g) - budget] for g in genomes], dtype=float)
        population.set("F", -values[:, None], "G", violation)
        algorithm.tell(infills=population)
        feasible = violation[:, 0] <= 0
        improved = False
        for genome, value, ok in zip(genomes, values, feasible):
            if ok and genome in real and value > result.best_fitness + 1e-12:
                result.best_genome, result.best_fitness, improved = genome, float(value), True
        result.history.append({"generation": generation, "best": result.best_fitness,
                               "mean": float(values[feasible].mean()) if feasible.any() else float("nan"),
                               "feasible": int(feasible.sum()), "real_evaluations": len(real)})
        progress.set_postfix(best=f"{result.best_fitness:.4f}")
        stale = 0 if improved else stale + 1
        if stale >= config.patience:
            break
    result.real_evaluations = len(real)
    final = algorithm.pop
    result.population = [(space.canonical(tuple(int(b) for b in x)), float(-f[0]))
                         for x, f in zip(final.get("X").astype(int), final.get("F"))]
    return result


def _to_evaluate(genomes: list[Genome], real: dict[Genome, float], config: EvolutionConfig, generation: int) -> list[Genome]:
    """Which new genomes get a real fitness evaluation this generation."""
    new = list(dict.fromkeys(g for g in genomes if g not in real))
    if not config.prescreen or generation == 0 or len(new) <= config.real_evaluations_per_generation:
        return new
    predicted = _predict(new, real, config)
    return sorted(new, key=lambda g: -predicted[g])[: config.real_evaluations_per_generation]


def _predict(genomes: list[Genome], real: dict[Genome, float], config: EvolutionConfig) -> dict[Genome, float]:
    """Fitness predicted from genome bits by a small XGBoost model fitted on the real evaluations so far."""
    import xgboost as xgb

    known = list(real)
    model = xgb.XGBRegressor(n_estimators=60, max_depth=3, learning_rate=0.2, random_state=config.seed, n_jobs=1)
    model.fit(np.array(known, dtype=np.float32), np.array([real[g] for g in known], dtype=np.float32))
    unknown = [g for g in genomes if g not in real]
    if not unknown:
        return {}
    return dict(zip(unknown, model.predict(np.array(unknown, dtype=np.float32)).tolist()))
