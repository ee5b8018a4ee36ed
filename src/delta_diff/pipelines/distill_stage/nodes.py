"""Thin nodes of one distillation stage: (prune a preset student,) distil it from its parent, export a pipeline."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from delta_diff.architecture import ArchitectureSpace, PresetName, preset_genome, prune
from delta_diff.config_types import Count, PositiveFloat
from delta_diff.distill import DistillConfig, distill_student
from delta_diff.distill.trainer import snapshot_folders
from delta_diff.distill.launch import distill_in_processes
from delta_diff.reporting.image_grid import image_grid
from delta_diff.sd import DevicePolicy, generate_images, training_noise_scheduler, unet_swapped_in
from delta_diff.tracking import log_figure, log_metrics, log_tags, mlflow_metrics_logger

logger = logging.getLogger(__name__)


class StudentParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    preset: PresetName | None = "bk-sdm-small"
    genome: str | None = None  # bit string or comma list of unit keys; used when preset is null


class DistillStageParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    distillation: DistillConfig = DistillConfig()
    checkpoint_root: str = "data/06_models/checkpoints"
    num_processes: Count = 1  # > 1: torchrun subprocess of delta_diff.distill.launch (several GPUs, or CPU ranks)
    validation_prompts: Count = 8
    validation_steps: Count = 25
    guidance_scale: PositiveFloat = 4.0
    validation_resolution: int | None = Field(None, ge=8)  # px; None: the U-Net's native size


def prune_student(parent, params: StudentParams):
    """The student architecture pruned from the parent (weights inherited), from a preset or a genome."""
    space = ArchitectureSpace(dict(parent.unet.config))
    if params.preset:
        genome = preset_genome(space, params.preset)
    elif params.genome:
        genome = space.parse(params.genome)
    else:
        raise ValueError("distill_stage.student: give a preset or a genome")
    logger.info("student removes %s", ", ".join(space.removed_keys(genome)) or "nothing")
    return prune(parent.unet, genome, space)


NO_TEACHER = "no teacher target: the stage imitates its parent only"  # Kedro hands over no None


def teacher_target(teacher, params: DistillStageParams):
    """The original teacher's U-Net when a stage's KD terms imitate it (``distillation.target``: teacher or both),
    else a placeholder: its own node, so a stage that imitates only its parent never holds a second model."""
    return teacher.unet if params.distillation.target != "parent" else NO_TEACHER


def distill_stage(stage: str, parent, student_unet, training_cache, prompt_sets, params: DistillStageParams,
                  runtime: DevicePolicy, snapshots: bool = False, teacher_unet=None):
    """Distil ``student_unet`` from ``parent.unet`` under the run's device policy, with the parent's own noise
    schedule and prediction type; resumes from ``<checkpoint_root>/<stage>`` if a run was interrupted. Returns
    the student (the input stays the pruned, undistilled model), the loss history and validation images; with
    ``snapshots`` also the student every ``distillation.snapshot_every`` steps (``{"step_000150": loader}``: the
    baseline's training curve, which evaluate measures). ``teacher_unet``: the original teacher's U-Net (or
    ``NO_TEACHER``) for a stage whose parent is an assistant; without it the parent is the teacher, and the
    stage imitates it whatever ``distillation.target`` says."""
    if not ArchitectureSpace(dict(parent.unet.config)):
        raise ValueError("parent is not an SD-family U-Net")
    distillation = params.distillation
    if teacher_unet is None or isinstance(teacher_unet, str):
        teacher_unet = None
        if distillation.target != "parent":  # the parent is the teacher: imitating "both" is imitating it
            distillation = distillation.model_copy(update={"target": "parent"})
    else:
        runtime.place_frozen(teacher_unet)
    if distillation.target != "parent" and params.num_processes > 1:
        raise ValueError(f"{stage}: distillation target {distillation.target!r} with num_processes > 1 is not "
                         "supported yet (the launched ranks get the parent only); use target: parent or one process")
    every, steps = params.distillation.snapshot_every, params.distillation.steps
    if snapshots and not 0 < every < steps:
        raise ValueError(f"{stage}: distill_stage.{'baseline' if stage == 'baseline' else 'stage'}.distillation."
                         f"snapshot_every is {every}; the curve needs 0 < snapshot_every < steps ({steps}), e.g. "
                         "the path's steps per stage")
    checkpoint_dir = Path(params.checkpoint_root) / stage
    if not prompt_sets.get("search"):
        raise ValueError("prompt_sets has no search prompts (made before the search had its own split?); rerun "
                         "data_prep (kedro run --pipelines data_prep)")
    validation = prompt_sets["search"][: params.validation_prompts]  # never evaluate's prompts
    runtime.place_frozen(parent)  # this node's own freshly loaded parent
    noise_scheduler = training_noise_scheduler(parent)

    def on_validate(step, model):
        images = _samples(parent, runtime.frozen_copy(model), validation, params)
        figure = image_grid(images, [e["text"] for e in validation], columns=4)
        log_figure(figure, f"{stage}/validation_step_{step:06d}.png")

    if params.num_processes > 1:
        student, history = distill_in_processes(parent.unet, student_unet, training_cache, noise_scheduler,
                                                distillation, params.num_processes, str(checkpoint_dir), stage,
                                                policy=runtime, text_encoder=parent.text_encoder)
        for row in history:
            log_metrics({f"{stage}/{k}": v for k, v in row.items() if k not in ("step", "feature_pairing")},
                        row["step"])
    else:
        student, history = distill_student(
            parent.unet, student_unet, training_cache, noise_scheduler, distillation,
            checkpoint_dir=str(checkpoint_dir), log_metrics=mlflow_metrics_logger(), name=stage,
            on_validate=on_validate, policy=runtime, text_encoder=parent.text_encoder, teacher=teacher_unet,
        )
    images = _samples(parent, runtime.frozen_copy(student), validation, params)
    figure = image_grid(images, [e["text"] for e in validation], columns=4)
    figure.suptitle(f"{stage}: student after {params.distillation.steps} steps", fontsize=9)
    log_metrics({f"{stage}.final_loss": history[-1]["loss"]} if history else {})
    if history:  # which feature-KD pairs the stage used (BK-SDM's own, or the pre-downsampler rule)
        log_tags({f"{stage}.feature_pairing": history[-1]["feature_pairing"]})
    if not snapshots:
        return student, pd.DataFrame(history), figure
    kept = snapshot_folders(checkpoint_dir, distillation, parent.unet, student_unet, runtime, teacher_unet)
    wanted = list(range(every, steps, every))
    missing = [s for s in wanted if s not in kept]
    if missing:  # e.g. a run resumed past a step from a checkpoint written before snapshots were asked for
        logger.warning("%s: no snapshot of steps %s (the run passed them without snapshot_every); the curve "
                       "lacks them", stage, missing)
    return student, pd.DataFrame(history), figure, {f"step_{s:06d}": kept[s] for s in wanted if s in kept}


def _samples(parent, unet, prompts, params: DistillStageParams):
    with unet_swapped_in(parent, unet) as pipeline:
        return generate_images(pipeline, [e["text"] for e in prompts], [int(e["seed"]) for e in prompts],
                               params.validation_steps, params.guidance_scale, show_progress=False,
                               resolution=params.validation_resolution)


def export_student_pipeline(parent, student_unet):
    """The parent's tokenizer, text encoder, VAE and scheduler around the student U-Net: a stock pipeline."""
    return type(parent)(**{**parent.components, "unet": student_unet})
