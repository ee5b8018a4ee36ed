"""Thin nodes of one distillation stage: (prune a preset student,) distil it from its parent, export a pipeline."""

from __future__ import annotations

import copy
import logging
from pathlib import Path

import pandas as pd
from pydantic import BaseModel, ConfigDict

from delta_diff.architecture import ArchitectureSpace, preset_genome, prune
from delta_diff.distill import DistillConfig, distill_student
from delta_diff.distill.launch import distill_in_processes
from delta_diff.tracking import log_figure, log_metrics, mlflow_metrics_logger
from delta_diff.world.components import sd_v1_noise_scheduler
from delta_diff.world.sampling import generate_images, image_grid, unet_swapped_in

logger = logging.getLogger(__name__)


class StudentParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    preset: str | None = "bk-sdm-small"
    genome: str | None = None  # bit string or comma list of unit keys; used when preset is null


class DistillStageParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    distillation: DistillConfig = DistillConfig()
    checkpoint_root: str = "data/06_models/checkpoints"
    num_processes: int = 1  # > 1: torchrun subprocess of delta_diff.distill.launch (several GPUs, or CPU ranks)
    validation_prompts: int = 8
    validation_steps: int = 25
    guidance_scale: float = 4.0


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


def distill_stage(stage: str, parent, student_unet, training_cache, prompt_sets, params: DistillStageParams):
    """Distil ``student_unet`` from ``parent.unet``; resumes from ``<checkpoint_root>/<stage>`` if a run was
    interrupted. Returns the student, the loss history and a grid of validation images."""
    if not ArchitectureSpace(dict(parent.unet.config)):
        raise ValueError("parent is not an SD-family U-Net")
    checkpoint_dir = Path(params.checkpoint_root) / stage
    student = copy.deepcopy(student_unet)  # the input stays the pruned, undistilled model
    validation = prompt_sets["eval"][: params.validation_prompts]

    def on_validate(step, model):
        images = _samples(parent, model, validation, params)
        figure = image_grid(images, [e["text"] for e in validation], columns=4)
        log_figure(figure, f"{stage}/validation_step_{step:06d}.png")

    if params.num_processes > 1:
        student, history = distill_in_processes(parent.unet, student, training_cache, sd_v1_noise_scheduler(),
                                                params.distillation, params.num_processes, str(checkpoint_dir), stage)
        for row in history:
            log_metrics({f"{stage}/{k}": v for k, v in row.items() if k != "step"}, row["step"])
    else:
        student, history = distill_student(
            parent.unet, student, training_cache, sd_v1_noise_scheduler(), params.distillation,
            checkpoint_dir=str(checkpoint_dir), log_metrics=mlflow_metrics_logger(), name=stage,
            on_validate=on_validate,
        )
    images = _samples(parent, student, validation, params)
    figure = image_grid(images, [e["text"] for e in validation], columns=4)
    figure.suptitle(f"{stage}: student after {params.distillation.steps} steps", fontsize=9)
    log_metrics({f"{stage}.final_loss": history[-1]["loss"]} if history else {})
    return student, pd.DataFrame(history), figure


def _samples(parent, unet, prompts, params: DistillStageParams):
    with unet_swapped_in(parent, unet) as pipeline:
        return generate_images(pipeline, [e["text"] for e in prompts], [int(e["seed"]) for e in prompts],
                               params.validation_steps, params.guidance_scale, show_progress=False)


def export_student_pipeline(parent, student_unet):
    """The parent's tokenizer, text encoder, VAE and scheduler around the student U-Net: a stock pipeline."""
    return type(parent)(**{**parent.components, "unet": student_unet})
