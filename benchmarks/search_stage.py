"""One search stage's inputs from the Kedro catalog of an environment, for the benchmarks that measure the search
(short_distil_length.py, surrogate_fidelity.py): the teacher, training cache, prompt sets, scorer and validated
settings, and the evaluator the pipeline itself would build (``prepare_search``), so a benchmark measures what a
run does. ``data_prep`` must have run in that environment."""

from __future__ import annotations

from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]


def search_stage(env: str | None, fraction_of_parent: float | None = None) -> dict:
    """``{"teacher", "cache", "search", "policy", "context"}``; ``context`` is ``prepare_search``'s (evaluator,
    space, budget). ``fraction_of_parent`` replaces the configured budget."""
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    from delta_diff.pipelines.architecture_search.search_nodes import SearchParams, plan_single_stage, prepare_search
    from delta_diff.sd import DevicePolicy
    from delta_diff.world import WorldSpec

    bootstrap_project(PROJECT)
    with KedroSession.create(project_path=PROJECT, env=env) as session:
        catalog = session.load_context().catalog
        teacher = catalog.load("embedded_teacher")
        cache = catalog.load("training_cache")
        prompt_sets = catalog.load("prompt_sets")
        # Kedro hands parameters over validated (as the nodes' models) or as dicts, depending on the run
        world, policy = catalog.load("params:world"), catalog.load("params:runtime")
        world = world if isinstance(world, WorldSpec) else WorldSpec(**world)
        policy = policy if isinstance(policy, DevicePolicy) else DevicePolicy(**policy)
        search = catalog.load("params:architecture_search")["search"]
        search = search if isinstance(search, SearchParams) else SearchParams(**search)
        classifier = catalog.load("world_scorer") if search.theta.scorer == "world" else None
    if fraction_of_parent is not None:
        search = search.model_copy(update={"budget": search.budget.model_copy(
            update={"fraction_of_parent": fraction_of_parent, "params": None})})
    context = prepare_search(teacher, plan_single_stage(teacher, search), prompt_sets, cache, classifier, world,
                             search, policy)
    return {"teacher": teacher, "cache": cache, "search": search, "policy": policy, "context": context}
