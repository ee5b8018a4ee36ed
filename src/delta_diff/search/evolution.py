"""The evolutionary search (pymoo GA) over genomes under a parameter budget.

Fitness is any function of a genome (the surrogate's estimate from the genome's real proxies, in the pipeline);
the budget is a constraint (params - budget <= 0), and a repair operator pulls infeasible offspring back under it
by removing random further units, so the population stays near the budget. Stops when the best fitness has not
improved for ``patience`` generations, or at ``max_generations``. Uses pymoo's ask-and-tell loop so every
generation's history is recorded and the stopping rule is ours.

Computing a genome's real proxies is the expensive part. With ``prescreen`` the search is surrogate-assisted in
NSGANetV2's way (Lu et al., 2020): an archive of genomes evaluated for real starts from ``population`` seeded
candidates; each iteration fits a cheap model of fitness on the archive (XGBoost on the genome bits and the
parameter share), runs the same pymoo GA on that model's predictions for ``inner_generations`` (milliseconds per
generation), and evaluates for real only the ``real_evaluations_per_generation`` best predicted genomes not yet
in the archive. Only real evaluations can become the reported best. Without ``prescreen`` every new offspring of
the GA is evaluated for real (the surrogate-free GA the benchmark compares against).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from pymoo.algorithms.soo.nonconvex.ga import GA
from pymoo.core.population import Population
from pymoo.core.problem import Problem
from pymoo.core.repair import Repair
from pymoo.core.sampling import Sampling
from pymoo.operators.crossover.pntx import TwoPointCrossover
from pymoo.operators.mutation.bitflip import BitflipMutation
from tqdm.auto import tqdm

from delta_diff.architecture import ArchitectureSpace, Genome
from delta_diff.config_types import Count, Probability

from .candidates import fill_to_budget, params_of, sample_candidates


class EvolutionConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    population: Annotated[int, Field(ge=2)] = 16  # crossover needs two parents
    max_generations: Count = 30
    patience: Count = 5
    mutation_prob: Probability = 0.1  # per gene
    prescreen: bool = True  # surrogate-assisted (NSGANetV2-style); False: every offspring evaluated for real
    real_evaluations_per_generation: Count = 4  # with prescreen: real evaluations per iteration
    inner_generations: Count = 20  # with prescreen: GA generations run on the cheap model per iteration
    seed: int = 0


@dataclass
class SearchResult:
    best_genome: Genome
    best_fitness: float
    history: list[dict] = field(default_factory=list)  # per generation: best, mean, evaluations
    population: list[tuple[Genome, float]] = field(default_factory=list)
    real_evaluations: int = 0

    def offer(self, genomes: list[Genome], values: np.ndarray) -> bool:
        """Take the best of these real evaluations if it beats the best so far; True if it did."""
        improved = False
        for genome, value in zip(genomes, values):
            if value > self.best_fitness + 1e-12:
                self.best_genome, self.best_fitness, improved = genome, float(value), True
        return improved


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
    """Maximise ``fitness`` over genomes with params <= budget (``fitness`` is only called on such genomes)."""
    initial = sample_candidates(space, budget, config.population, config.seed)
    params = lambda genome: params_of(space, genome)  # noqa: E731
    if config.prescreen:
        return _surrogate_assisted(space, budget, fitness, config, initial, params, show_progress)
    real: dict[Genome, float] = {}

    def evaluate(genomes: list[Genome]) -> np.ndarray:
        for genome in genomes:
            if genome not in real:
                real[genome] = float(fitness(genome))
        return np.array([real[g] for g in genomes])

    result = SearchResult(best_genome=initial[0], best_fitness=-np.inf)
    stale = 0
    progress = tqdm(range(config.max_generations), desc="search", disable=not show_progress)
    ga = _GeneticAlgorithm(space, budget, params, config.population, config.mutation_prob, config.seed, initial)
    for generation in progress:
        genomes, values = ga.step(evaluate)
        if ga.exhausted:  # every genome pymoo can still reach has been evaluated
            break
        improved = result.offer(genomes, values)
        result.history.append({"generation": generation, "best": result.best_fitness,
                               "mean": float(values.mean()), "feasible": len(genomes), "real_evaluations": len(real)})
        progress.set_postfix(best=f"{result.best_fitness:.4f}", evaluations=len(real))
        stale = 0 if improved else stale + 1
        if stale >= config.patience:
            break
    result.real_evaluations = len(real)
    result.population = ga.population()
    return result


def _surrogate_assisted(space, budget: int, fitness, config: EvolutionConfig, initial: list[Genome],
                        params, show_progress: bool) -> SearchResult:
    real: dict[Genome, float] = {}
    result = SearchResult(best_genome=initial[0], best_fitness=-np.inf)
    parent = params(space.empty())
    stale = 0
    progress = tqdm(range(config.max_generations), desc="search", disable=not show_progress)
    for iteration in progress:
        if iteration == 0:
            chosen = initial
        else:
            model = _fit_cheap_model(real, params, parent, config.seed + iteration)
            predict = lambda genomes: _predict(model, genomes, params, parent)  # noqa: E731
            ga = _GeneticAlgorithm(space, budget, params, config.population, config.mutation_prob,
                                   config.seed + iteration, _elite(real, config.population))
            seen: dict[Genome, float] = {}
            for _ in range(config.inner_generations):
                genomes, values = ga.step(predict)
                if ga.exhausted:
                    break
                seen.update(zip(genomes, values.tolist()))
            fresh = sorted((g for g in seen if g not in real), key=lambda g: -seen[g])
            chosen = fresh[: config.real_evaluations_per_generation]
            if not chosen:  # the cheap model's GA only revisits known genomes: converged
                break
        values = np.array([float(fitness(g)) for g in chosen])
        real.update(zip(chosen, values.tolist()))
        improved = result.offer(chosen, values)
        result.history.append({"generation": iteration, "best": result.best_fitness, "mean": float(values.mean()),
                               "feasible": len(chosen), "real_evaluations": len(real)})
        progress.set_postfix(best=f"{result.best_fitness:.4f}", evaluations=len(real))
        stale = 0 if improved else stale + 1
        if iteration > 0 and stale >= config.patience:
            break
    result.real_evaluations = len(real)
    result.population = sorted(real.items(), key=lambda item: -item[1])[: config.population]
    return result


class _GeneticAlgorithm:
    """pymoo's GA driven by ask and tell, one generation per ``step``; genomes come out canonical and in budget."""

    def __init__(self, space, budget: int, params: Callable[[Genome], int], population: int, mutation_prob: float, seed: int,
                 initial: list[Genome]):
        self.space, self.budget, self.params = space, budget, params
        problem = Problem(n_var=len(space), n_obj=1, n_ieq_constr=1, xl=0, xu=1, vtype=bool)
        self.algorithm = GA(
            pop_size=population,
            sampling=_Seeded(initial),
            crossover=TwoPointCrossover(),
            mutation=BitflipMutation(prob=1.0, prob_var=mutation_prob),
            repair=_BudgetRepair(space, budget, seed),
            eliminate_duplicates=True,
        )
        self.algorithm.setup(problem, seed=seed, termination=("n_gen", 10**9))
        self.exhausted = False

    def step(self, evaluate: Callable[[list[Genome]], np.ndarray]) -> tuple[list[Genome], np.ndarray]:
        """One generation; ([], []) once pymoo can mate no genome it has not seen (a small budgeted space, e.g.
        a late stage of a short path, is used up: pymoo then ends the run and ``ask`` returns None)."""
        if self.exhausted:
            return [], np.empty(0)
        population: Population | None = self.algorithm.ask()
        if population is None or len(population) == 0:
            self.exhausted = True
            return [], np.empty(0)
        genomes = [self.space.canonical(tuple(int(b) for b in row)) for row in population.get("X").astype(int)]
        violation = np.array([[self.params(g) - self.budget] for g in genomes], dtype=float)
        feasible = violation[:, 0] <= 0
        values = np.full(len(genomes), -np.inf)
        inside = [g for g, ok in zip(genomes, feasible) if ok]
        if inside:
            values[feasible] = evaluate(inside)
        population.set("F", -np.where(feasible, values, 0.0)[:, None], "G", violation)
        self.algorithm.tell(infills=population)
        return inside, values[feasible]

    def population(self) -> list[tuple[Genome, float]]:
        final = self.algorithm.pop
        return [(self.space.canonical(tuple(int(b) for b in x)), float(-f[0]))
                for x, f in zip(final.get("X").astype(int), final.get("F"))]


def _features(genomes: list[Genome], params, parent: int) -> np.ndarray:
    return np.array([[*g, params(g) / parent] for g in genomes], dtype=np.float32)


def _fit_cheap_model(real: dict[Genome, float], params, parent: int, seed: int):
    """Fitness from genome bits and parameter share: XGBoost, fitted on every real evaluation so far."""
    import xgboost as xgb

    known = list(real)
    model = xgb.XGBRegressor(n_estimators=80, max_depth=3, learning_rate=0.2, random_state=seed, n_jobs=1)
    model.fit(_features(known, params, parent), np.array([real[g] for g in known], dtype=np.float32))
    return model


def _predict(model, genomes: list[Genome], params, parent: int) -> np.ndarray:
    return model.predict(_features(genomes, params, parent)).astype(float)


def _elite(real: dict[Genome, float], n: int) -> list[Genome]:
    return [g for g, _ in sorted(real.items(), key=lambda item: -item[1])[:n]]
