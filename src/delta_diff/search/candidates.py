"""Seeded, diverse sub-architectures of a parent within a parameter budget (the search's starting points and
the surrogate's training candidates).

Random genomes are mostly far from the budget (too big, or needlessly small). Instead each candidate removes
units in a random order until it fits, so candidates sit just under the budget, where the best one must be
(removing more never helps the teacher-likeness the search rewards).
"""

from __future__ import annotations

import random

from delta_diff.architecture import ArchitectureError, ArchitectureSpace, Genome, count_params
from delta_diff.architecture.counting import param_counter


def check_budget(space: ArchitectureSpace, budget: int) -> None:
    parent = count_params(space.parent_config)
    if budget >= parent:
        raise ArchitectureError(f"budget {budget:,} params is not below the parent's {parent:,}: nothing to remove")
    smallest = count_params(space.child_config(smallest_genome(space)))
    if budget < smallest:
        raise ArchitectureError(
            f"budget {budget:,} params is below the smallest sub-architecture of this parent ({smallest:,}); "
            "raise the budget or add a stage to the path"
        )


def smallest_genome(space: ArchitectureSpace) -> Genome:
    """Remove everything removable that stays valid, greedily by unit order."""
    genome = list(space.empty())
    for i in range(len(space.units)):
        trial = genome.copy()
        trial[i] = 1
        if space.is_valid(tuple(trial)):
            genome = trial
    return space.canonical(tuple(genome))


def params_of(space: ArchitectureSpace, genome: Genome) -> int:
    """Parameters of a genome's sub-architecture (fast: see ``delta_diff.architecture.counting``)."""
    return param_counter(space)(genome)


def fill_to_budget(space: ArchitectureSpace, genome: Genome, budget: int, rng: random.Random) -> Genome:
    """Remove random further units until the genome fits the budget (a repair operator)."""
    bits = list(space.canonical(genome))
    order = list(range(len(bits)))
    rng.shuffle(order)
    for i in order:
        if params_of(space, tuple(bits)) <= budget:
            break
        if bits[i]:
            continue
        bits[i] = 1
        if not space.is_valid(tuple(bits)):
            bits[i] = 0
    return space.canonical(tuple(bits))


def sample_candidates(space: ArchitectureSpace, budget: int, n: int, seed: int, max_tries: int = 200) -> list[Genome]:
    """``n`` distinct valid genomes with params <= budget, each close to it."""
    check_budget(space, budget)
    rng = random.Random(seed)
    found: list[Genome] = []
    tries = 0
    while len(found) < n and tries < max_tries * n:
        tries += 1
        genome = fill_to_budget(space, space.empty(), budget, rng)
        if params_of(space, genome) <= budget and space.is_valid(genome) and genome not in found:
            found.append(genome)
    if not found:
        raise ArchitectureError(f"no sub-architecture within {budget:,} params found after {tries} tries")
    return found


def all_feasible(space: ArchitectureSpace, budget: int, max_units: int = 12) -> list[Genome] | None:
    """Every distinct architecture within the budget, when the space is small enough to enumerate (a path
    stage nested between a parent and its student often is); None otherwise."""
    if len(space.units) > max_units:
        return None
    return [g for g in space.enumerate() if params_of(space, g) <= budget]
