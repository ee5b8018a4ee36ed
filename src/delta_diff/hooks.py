"""Project hooks: checks before the first node runs, the MLflow record of a run, and where its time went."""

from __future__ import annotations

from kedro.framework.hooks import hook_impl


class RunEnvironment:
    """The path's stage count shapes the pipeline and is read from conf when the pipelines are built, but
    ``kedro run --env X`` does not export KEDRO_ENV: tell the path builder the session's environment, and have
    Kedro rebuild its (per-process) pipeline registry when an earlier session built it for another one."""

    @hook_impl
    def after_context_created(self, context) -> None:
        import os

        from kedro.framework.project import pipelines

        from delta_diff.pipelines.path import pipeline as path_pipeline

        env = context.env or os.environ.get("KEDRO_ENV") or "local"
        if path_pipeline.run_env != env:
            path_pipeline.run_env = env
            pipelines.configure("delta_diff.pipeline_registry")  # forget pipelines built for another env


class ParameterCheck:
    """Every parameter of the run, not only those its nodes read, validated before any node runs: an unknown key
    anywhere (a top-level typo included) is refused with the nearest known key, every value range-checked
    (``delta_diff.pipelines.parameters``)."""

    @hook_impl
    def before_pipeline_run(self, run_params, pipeline, catalog) -> None:
        from delta_diff.pipelines.parameters import check_parameters

        check_parameters(catalog.load("parameters"))
        _check_pinned_versions(run_params.get("load_versions") or {}, catalog)


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
        # The paper's protocol (the baseline at one hop's steps) is read off the baseline's curve, kept every
        # stage-steps steps; and the path and its baseline must differ only in how long they train.
        stage_config, baseline_config = _distillation(stage), _distillation(baseline)
        snapshot_every = baseline_config.get("snapshot_every", 0)
        if requested > 1 and snapshot_every != stage_steps:
            raise ValueError(
                f"distill_stage.baseline.distillation.snapshot_every is {snapshot_every} but the path's stages train "
                f"{stage_steps} steps; the baseline is kept every stage's steps (the one-hop protocol and its curve "
                "are read off it). Kedro resolves each conf environment separately, so an env that changes the "
                f"stage steps must also set distill_stage.baseline.distillation.snapshot_every: {stage_steps}")
        from delta_diff.distill.trainer import KEYS_THAT_MAY_DIFFER

        differing = sorted(k for k in set(stage_config) | set(baseline_config) if k not in KEYS_THAT_MAY_DIFFER
                           and stage_config.get(k) != baseline_config.get(k))
        if differing:
            key = differing[0]
            raise ValueError(
                f"distill_stage.baseline.distillation.{key} is {baseline_config.get(key)!r} but "
                f"distill_stage.stage.distillation.{key} is {stage_config.get(key)!r}: the path and its baseline must "
                f"train alike (same seed, batch, learning rate, loss) except for their steps; differing: "
                f"{', '.join(differing)}")


class RunInputsCheck:
    """Cheap checks of what the run is about to use, before any node runs (seconds, not after hours):
    a world that is not the one the teacher learnt (its folder's ``world.json``; order counts), an SD teacher
    (CLIP's 49,408-token text encoder) with the embedded world's scorer configured (it reads only world captions),
    a teacher whose scheduler predicts what distillation cannot train, a student preset or genome the teacher
    cannot reach, and a training cache the run does not build itself that was made by another text encoder or at
    another resolution."""

    TEACHER = "embedded_teacher"

    @hook_impl
    def before_pipeline_run(self, run_params, pipeline, catalog) -> None:
        import json
        from pathlib import Path

        steps = {node.name.rsplit(".", 1)[-1] for node in pipeline.nodes}
        if self.TEACHER not in pipeline.inputs() or not {"prepare_search", "distill", "evaluate_models",
                                                          "cache_latents_and_text"} & steps:
            return
        teacher = Path(str(catalog.get(self.TEACHER)._get_load_path()))
        if not (teacher / "model_index.json").is_file():
            return  # the dataset's own load names the problem
        from delta_diff.datasets.diffusers_model import check_safetensors_folder

        check_safetensors_folder(teacher, pipeline=True)  # every weights file's header: truncated ones named now
        if "params:world" in pipeline.inputs():  # a world teacher records the world it learnt, order included
            from delta_diff.world import WorldSpec
            from delta_diff.world.record import check_world_matches_teacher

            world = catalog.load("params:world")
            check_world_matches_teacher(WorldSpec.model_validate(world) if isinstance(world, dict) else world, teacher)
        text_config = json.loads((teacher / "text_encoder" / "config.json").read_text())
        sd_teacher = text_config.get("vocab_size") == 49408  # CLIP's BPE (SD v1 and v2); the world's is its own
        if sd_teacher and "prepare_search" in steps and _param(catalog, "architecture_search", "search", "theta",
                                                              "scorer") == "world":
            raise ValueError(
                f"the teacher {teacher} is a Stable Diffusion model but architecture_search.search.theta.scorer is "
                "'world' (the embedded world's scorer reads only its own captions); set theta.scorer: hps_v2 with "
                "theta.hps_checkpoint (conf/sd_v1_4 does)")
        if sd_teacher and "evaluate_models" in steps and _param(catalog, "evaluate", "world_score"):
            raise ValueError(
                f"the teacher {teacher} is a Stable Diffusion model but evaluate.world_score is true (the embedded "
                "world's scorer reads only its own captions); set evaluate.world_score: false and "
                "evaluate.hps_checkpoint")
        for node_name, group in (("plan_path", "path"), ("prune_student", "distill_stage")):
            if node_name in steps:
                _check_student(teacher, group, _param(catalog, group, "student"))
        from delta_diff.sd.scheduler import PREDICTION_TYPES

        prediction = json.loads((teacher / "scheduler" / "scheduler_config.json").read_text()).get(
            "prediction_type", "epsilon")
        if prediction not in PREDICTION_TYPES:
            raise ValueError(f"the teacher's scheduler ({teacher}/scheduler) predicts {prediction!r}; distillation "
                             f"trains {' or '.join(PREDICTION_TYPES)} students only")
        if "training_cache" in pipeline.inputs():  # used but not rebuilt by this run: it must fit the teacher
            from delta_diff.data.cache_spec import cache_problem

            folder = catalog.get("training_cache").current_folder()
            if folder is None:  # never built: the loading node names that
                return
            problem = cache_problem(folder, teacher, _param(catalog, "data_prep", "cache", "resolution"))
            if problem:
                raise ValueError(problem)


def _check_pinned_versions(load_versions: dict[str, str], catalog) -> None:
    """``--load-versions name:version``: refuse a version that is not on disk before any node runs, listing the
    versions that are (Kedro would fail only when the node loads it, after the work before it)."""
    from pathlib import Path

    for name, version in load_versions.items():
        try:
            dataset = catalog.get(name)
        except Exception:  # noqa: BLE001 -- Kedro names an unknown dataset itself
            continue
        filepath = getattr(dataset, "_filepath", None)
        if filepath is None:
            continue
        root = Path(str(filepath))
        if (root / version).exists():
            continue
        existing = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")) \
            if root.is_dir() else []
        listed = ", ".join(existing[-5:]) + (f" (and {len(existing) - 5} older)" if len(existing) > 5 else "")
        raise ValueError(f"--load-versions {name}:{version}: no such version under {root}; "
                         + (f"saved versions: {listed}" if existing else "it has no saved version yet"))


def _check_student(teacher, group: str, student) -> None:
    """Refuse a student preset or genome that the teacher's architecture space cannot reach (read from its U-Net
    config alone, no weights), naming the key, before data_prep spends its time."""
    import json

    from delta_diff.architecture import ArchitectureError, ArchitectureSpace, preset_genome

    preset = student["preset"] if isinstance(student, dict) else student.preset
    genome = student["genome"] if isinstance(student, dict) else student.genome
    if not preset and not genome:
        return  # the parameter model names this
    space = ArchitectureSpace(json.loads((teacher / "unet" / "config.json").read_text()))
    key, value = (f"{group}.student.preset", preset) if preset else (f"{group}.student.genome", genome)
    try:
        preset_genome(space, preset) if preset else space.parse(genome)
    except ArchitectureError as error:
        raise ValueError(f"{key} is {value!r}, which the teacher {teacher} cannot reach: {error}. Choose another "
                         "preset or genome (`python -m delta_diff.architecture` lists what it can lose)") from None


def _param(catalog, group: str, *keys):
    """A parameter by path, whether the catalog holds it as a dict or as a validated model."""
    value = catalog.load(f"params:{group}")
    for key in keys:
        value = value[key] if isinstance(value, dict) else getattr(value, key)
    return value


def _distillation(stage_params) -> dict:
    distillation = stage_params["distillation"] if isinstance(stage_params, dict) else stage_params.distillation
    return dict(distillation) if isinstance(distillation, dict) else distillation.model_dump()


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
