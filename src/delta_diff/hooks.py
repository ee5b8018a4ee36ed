"""Project hooks: checks that must happen before the first node runs."""

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
