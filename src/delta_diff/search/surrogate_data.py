"""Surrogate training data: candidates that were really (briefly) distilled from the parent, then scored.

The distillation function is passed in (``search`` does not import ``distill``; DESIGN.md §4), with the
signature ``distil(parent_unet, student_unet) -> student_unet``.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pandas as pd
from tqdm.auto import tqdm

from delta_diff.architecture import Genome, count_params

from .proxies import ProxyEvaluator

DistilFn = Callable[[object, object], object]


def collect_surrogate_data(evaluator: ProxyEvaluator, candidates: list[Genome], distil: DistilFn,
                           existing: pd.DataFrame | None = None, show_progress: bool = True) -> pd.DataFrame:
    """One row per candidate: genome, params, proxies, post-distillation score and timings. Rows of
    ``existing`` (an earlier run's table for the same parent) are reused, not recomputed."""
    parent_params = count_params(evaluator.space.parent_config)
    done = set(existing["genome"]) if existing is not None and len(existing) else set()
    rows = [] if existing is None else existing.to_dict(orient="records")
    todo = [g for g in candidates if evaluator.space.to_string(evaluator.space.canonical(g)) not in done]
    for genome in tqdm(todo, desc="surrogate data (short distillations)", disable=not show_progress):
        proxies = evaluator.evaluate(genome)
        start = time.perf_counter()
        student = evaluator.prune(genome)
        student = distil(evaluator.parent, student)
        distil_seconds = time.perf_counter() - start
        rows.append({
            **proxies,
            "param_fraction": proxies["params"] / parent_params,
            "removed": ",".join(evaluator.space.removed_keys(genome)),
            "distilled_score": evaluator.theta_of(student.eval()),
            "distil_seconds": distil_seconds,
        })
    return pd.DataFrame(rows)
