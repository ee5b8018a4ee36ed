"""``architecture_search``: the parent's space report, and one namespaced search stage (DESIGN.md §1 steps 1-4).

``search_stage(namespace, parent)`` is the template every stage of the path reuses: proxies -> surrogate
training data (short real distillations) -> XGBoost surrogate -> pymoo GA -> the chosen, pruned candidate.
Here it runs as ``stage_1`` from the shipped teacher (``kedro run --pipelines architecture_search``).
"""

from kedro.pipeline import Node, Pipeline

from . import search_nodes
from .nodes import report_architecture_space

SHARED_INPUTS = ("prompt_sets", "training_cache", "world_scorer")
SHARED_PARAMETERS = {"params:world", "params:architecture_search.search", "params:runtime"}


def search_stage(namespace: str, parent: str, plan: str | None = None) -> Pipeline:
    """One stage searching below ``parent``; ``plan`` names a dataset with the stage's budget and nesting (a
    path's planner writes it); without one the stage plans itself from ``budget`` in the parameters."""
    planning = [] if plan else [
        Node(search_nodes.plan_single_stage, ["parent", "params:architecture_search.search"], "search_plan",
             name="plan_single_stage")
    ]
    template = Pipeline(
        planning + [
            Node(search_nodes.prepare_search,
                 ["parent", "search_plan", "prompt_sets", "training_cache", "world_scorer", "params:world",
                  "params:architecture_search.search", "params:runtime"],
                 "search_context", name="prepare_search"),
            Node(search_nodes.build_surrogate_training_data,
                 ["search_context", "training_cache", "previous_surrogate_training_data",
                  "params:architecture_search.search"],
                 "surrogate_training_data", name="build_surrogate_training_data"),
            Node(search_nodes.fit_search_surrogate, ["surrogate_training_data", "params:architecture_search.search"],
                 ["surrogate", "surrogate_report", "surrogate_fit_plot"], name="fit_search_surrogate"),
            Node(search_nodes.search_architecture,
                 ["search_context", "surrogate", "params:architecture_search.search", "surrogate_training_data"],
                 ["chosen_architecture", "search_history", "search_convergence_plot", "search_population_plot"],
                 name="search_architecture"),
            Node(search_nodes.prune_chosen, ["parent", "chosen_architecture"], "candidate_unet", name="prune_chosen"),
        ]
    )
    inputs = {"parent": parent, **{i: i for i in SHARED_INPUTS}}
    if plan:
        inputs["search_plan"] = plan
    return Pipeline(template, namespace=namespace, inputs=inputs, parameters=SHARED_PARAMETERS)


def create_pipeline(**kwargs) -> Pipeline:
    report = Pipeline(
        [
            Node(
                report_architecture_space,
                inputs=["parent_unet_config", "params:architecture_search.space_report"],
                outputs="architecture_space_report",
                name="report_architecture_space",
            )
        ]
    )
    return report + search_stage("stage_1", parent="embedded_teacher")
