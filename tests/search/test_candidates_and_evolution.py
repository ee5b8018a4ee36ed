import numpy as np
import pandas as pd
import pytest

from delta_diff.architecture import ArchitectureError, ArchitectureSpace, count_params
from delta_diff.search import (
    EvolutionConfig,
    SurrogateConfig,
    evolve,
    fit_surrogate,
    params_of,
    sample_candidates,
    smallest_genome,
)

from tests.conftest import tiny_unet_config


@pytest.fixture(scope="module")
def space():
    return ArchitectureSpace(tiny_unet_config())


def test_candidates_fit_the_budget_are_distinct_and_seeded(space):
    budget = int(0.7 * count_params(space.parent_config))
    first = sample_candidates(space, budget, 6, seed=1)
    assert len(set(first)) == 6 and all(params_of(space, g) <= budget for g in first)
    assert sample_candidates(space, budget, 6, seed=1) == first
    assert sample_candidates(space, budget, 6, seed=2) != first


def test_impossible_budgets_fail_before_any_work(space):
    parent = count_params(space.parent_config)
    with pytest.raises(ArchitectureError, match="not below the parent"):
        sample_candidates(space, parent + 1, 3, seed=0)
    smallest = params_of(space, smallest_genome(space))
    with pytest.raises(ArchitectureError, match="below the smallest sub-architecture"):
        sample_candidates(space, smallest - 1, 3, seed=0)


def test_evolution_finds_the_optimum_of_a_known_objective_and_is_repeatable(space):
    budget = int(0.75 * count_params(space.parent_config))
    parent = count_params(space.parent_config)
    attention = [i for i, u in enumerate(space.units) if "attn" in u.kind]

    def fitness(genome):  # keep every attention, then be as large as the budget allows
        return -sum(genome[i] for i in attention) + params_of(space, genome) / parent

    config = EvolutionConfig(population=12, max_generations=25, patience=6, seed=3)
    result = evolve(space, budget, fitness, config, show_progress=False)
    assert params_of(space, result.best_genome) <= budget
    assert not any(result.best_genome[i] for i in attention)
    again = evolve(space, budget, fitness, config, show_progress=False)
    assert again.best_genome == result.best_genome and again.history == result.history
    assert [h["generation"] for h in result.history] == list(range(len(result.history)))


def synthetic_table(n=24, seed=0):
    rng = np.random.default_rng(seed)
    phi = rng.uniform(0.3, 1.0, n)
    theta = rng.uniform(0.2, 0.9, n)
    return pd.DataFrame({"genome": [f"g{i}" for i in range(n)], "phi": phi, "theta": theta,
                         "eps_mse": rng.uniform(0, 0.2, n), "param_fraction": rng.uniform(0.5, 0.8, n),
                         "distilled_score": 0.7 * phi + 0.3 * theta + rng.normal(0, 0.01, n)})


def test_surrogate_learns_a_clear_relation_and_reports_honestly():
    surrogate, report, out_of_fold = fit_surrogate(synthetic_table(), SurrogateConfig())
    assert report["surrogate"]["kendall_tau"] > 0.6 and report["folds"] == 5
    assert {"phi_alone", "theta_alone", "better_than_best_single_proxy"} <= set(report)
    assert len(out_of_fold) == 24 and "predicted" in out_of_fold
    assert surrogate.predict(synthetic_table(4, seed=9)).shape == (4,)


def test_surrogate_refuses_too_few_rows():
    with pytest.raises(ValueError, match="has 3 rows; at least 6"):
        fit_surrogate(synthetic_table(3), SurrogateConfig())


def test_prescreening_spends_fewer_real_evaluations(space):
    budget = int(0.75 * count_params(space.parent_config))
    parent = count_params(space.parent_config)
    calls = []

    def fitness(genome):
        calls.append(genome)
        return params_of(space, genome) / parent - 0.1 * sum(genome)

    common = dict(population=12, max_generations=12, patience=12, seed=0)
    plain = evolve(space, budget, fitness, EvolutionConfig(prescreen=False, **common), show_progress=False)
    plain_calls = len(calls)
    calls.clear()
    screened = evolve(space, budget, fitness, EvolutionConfig(prescreen=True, real_evaluations_per_generation=3, **common),
                      show_progress=False)
    assert len(calls) == screened.real_evaluations < plain_calls == plain.real_evaluations
    assert len(calls) <= 12 + 11 * 3


@pytest.mark.parametrize("prescreen", [True, False])
def test_a_budgeted_space_no_bigger_than_the_population_is_used_up_not_crashed(prescreen):
    """pymoo ends its run once it can mate no unseen genome (a late stage of a short path hit this)."""
    space = ArchitectureSpace(tiny_unet_config(layers_per_block=1))  # 13 units: enumerable
    ranked = sorted((params_of(space, g), g) for g in space.enumerate())
    budget = ranked[7][0]  # only a handful of architectures fit
    inside = [g for g in space.enumerate() if params_of(space, g) <= budget]
    assert 2 <= len(inside) <= 12
    fitness = lambda g: float(params_of(space, g))  # noqa: E731
    config = EvolutionConfig(population=12, max_generations=10, patience=5, prescreen=prescreen, seed=0)
    result = evolve(space, budget, fitness, config, show_progress=False)
    assert result.best_fitness == max(fitness(g) for g in inside)
    assert result.real_evaluations <= len(inside)
