"""Project hooks: checks before the first node runs, the MLflow record of a run, and where its time went."""

from __future__ import annotations

from kedro.framework.hooks import hook_impl


class PathShapeCheck:
    """The stage count shapes the pipeline (read from conf before parameters load), so a different
    ``path.n_stages`` given at run time (``--params``) could only be honoured by a different pipeline: refuse it
    before any node runs instead of after data preparation."""

    @hook_impl
    def before_pipeline_run(self, run_params, pipeline, catalog) -> None:
        planners = [node for node in pipeline.nodes if node.name == "plan_path"]
        if not planners:
            return
        from delta_diff.pipelines.path.pipeline import read_n_stages

        requested = catalog.load("params:path")
        requested = requested.n_stages if hasattr(requested, "n_stages") else requested["n_stages"]
        built = read_n_stages()
        if requested != built:
            raise ValueError(
                f"path.n_stages is {requested} but the pipeline was built with {built} stages from "
                "conf/<env>/parameters_path.yml; the stage count shapes the pipeline, so set it in that file, "
                "not with --params"
            )
        # The claim compares at equal total training steps. The base conf derives the baseline's steps with an
        # interpolation, but Kedro resolves each environment on its own, so an override of n_stages or of the
        # stage steps in another env would leave the baseline with base's total: refuse that mismatch here.
        stage, baseline = catalog.load("params:distill_stage.stage"), catalog.load("params:distill_stage.baseline")
        stage_steps, baseline_steps = _steps(stage), _steps(baseline)
        if baseline_steps != requested * stage_steps:
            raise ValueError(
                f"distill_stage.baseline.distillation.steps is {baseline_steps} but the path trains {requested} "
                f"stages x {stage_steps} steps = {requested * stage_steps}; the baseline must get the path's total. "
                "Kedro resolves each conf environment separately, so an env that changes path.n_stages or the "
                f"stage steps must also set distill_stage.baseline.distillation.steps: {requested * stage_steps}"
            )


def _steps(stage_params) -> int:
    distillation = stage_params["distillation"] if isinstance(stage_params, dict) else stage_params.distillation
    return distillation["steps"] if isinstance(distillation, dict) else distillation.steps


class MlflowRunRecord:
    """After a run: the results table and figures as MLflow artifacts, and a tag with the catalog save version
    (every versioned checkpoint and report this run wrote carries it), so a run in the MLflow UI names the
    exact files behind it."""

    ARTIFACTS = ("results_markdown", "results_table", "comparison_grid", "attention_maps_figure", "path_plot")

    @hook_impl
    def after_pipeline_run(self, run_params, pipeline, catalog) -> None:
        import mlflow

        if mlflow.active_run() is None:
            return
        mlflow.set_tag("kedro.save_version", str(run_params.get("session_id")))
        outputs = pipeline.all_outputs()
        for name in self.ARTIFACTS:
            if name in outputs:
                path = catalog.get(name)._get_load_path()
                mlflow.log_artifact(str(path), artifact_path="results")


class NodeProfile:
    """Where a run's time goes: wall seconds per node, logged as a table at the end (slowest first), to MLflow as
    ``profile.<node>`` metrics and a ``profile/node_seconds.json`` artifact, with the process's peak RSS."""

    def __init__(self):
        self.started: dict[str, float] = {}
        self.seconds: dict[str, float] = {}

    @hook_impl
    def before_pipeline_run(self, run_params, pipeline, catalog) -> None:
        self.started.clear()
        self.seconds.clear()

    @hook_impl
    def before_node_run(self, node, catalog, inputs, is_async, run_id) -> None:
        import time

        self.started[node.name] = time.perf_counter()

    @hook_impl
    def after_node_run(self, node, catalog, inputs, outputs, is_async, run_id) -> None:
        import time

        self.seconds[node.name] = time.perf_counter() - self.started.pop(node.name, time.perf_counter())

    @hook_impl
    def after_pipeline_run(self, run_params, pipeline, catalog) -> None:
        import json
        import logging
        import resource
        import tempfile
        from pathlib import Path

        if not self.seconds:
            return
        total = sum(self.seconds.values())
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        rows = sorted(self.seconds.items(), key=lambda item: -item[1])
        lines = [f"{seconds:8.1f} s {seconds / total:6.1%}  {name}" for name, seconds in rows]
        logging.getLogger(__name__).info("time by node (%.1f s in nodes, peak RSS %.0f MB):\n%s", total, peak_mb,
                                         "\n".join(lines))
        import mlflow

        if mlflow.active_run() is None:
            return
        mlflow.log_metrics({f"profile.{name}": seconds for name, seconds in self.seconds.items()}
                           | {"profile.total_node_seconds": total, "profile.peak_rss_mb": peak_mb})
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "node_seconds.json"
            path.write_text(json.dumps({"node_seconds": dict(rows), "peak_rss_mb": peak_mb}, indent=1))
            mlflow.log_artifact(str(path), artifact_path="profile")
