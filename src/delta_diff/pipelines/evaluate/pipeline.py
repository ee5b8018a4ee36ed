"""``evaluate``: the teacher, every assistant, the path's student and the baseline, measured the same way."""

from kedro.pipeline import Node, Pipeline

from delta_diff.pipelines.path.pipeline import read_n_stages

from . import nodes
from delta_diff.sd import DevicePolicy
from delta_diff.world import WorldSpec

from .nodes import EvaluateParams


def evaluate_pipeline(n_stages: int) -> Pipeline:
    names = ["teacher"] + [f"stage_{i}" for i in range(1, n_stages + 1)] + ["baseline"]
    datasets = ["embedded_teacher"] + [f"{n}.student_pipeline" for n in names[1:]]
    roles = {"teacher": "teacher", "baseline": "baseline", f"stage_{n_stages}": "student"}
    roles.update({f"stage_{i}": "assistant" for i in range(1, n_stages)})
    # With several stages the baseline's run kept its student every steps-per-stage steps (path/pipeline.py):
    # those are measured too, as the baseline's curve.
    curve = ["baseline.curve_unets"] if n_stages > 1 else []

    # Every "params:" input typed: Kedro validates a parameter into its model only from the node's own hints (run
    # alone, with no other node asking for the model, an untyped one arrives as a raw dict).
    def evaluate_models(prompt_sets, training_cache, world_scorer, world: WorldSpec, params: EvaluateParams,
                        runtime: DevicePolicy, *pipelines):
        models = dict(zip(names, pipelines))
        if curve:
            models.update(nodes.curve_pipelines(models["teacher"], pipelines[-1]))
        return nodes.evaluate_models(models, {**roles, **{n: "baseline_curve" for n in models if n not in roles}},
                                     prompt_sets, training_cache, world_scorer, world, params, runtime)

    return Pipeline([
        Node(evaluate_models,
             ["prompt_sets", "training_cache", "world_scorer", "params:world", "params:evaluate", "params:runtime",
              *datasets, *curve],
             ["results_table", "results_markdown", "comparison_grid", "attention_maps_figure", "path_plot",
              "evaluation_notes"],
             name="evaluate_models"),
    ])


def create_pipeline(**kwargs) -> Pipeline:
    return evaluate_pipeline(read_n_stages())
