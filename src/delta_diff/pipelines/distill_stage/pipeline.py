"""``distill_stage``: one stage of the path, M_{i-1} -> M_i (DESIGN.md §1 step 5; BK-SDM's loss).

``distill_stage_template(namespace, parent, student)`` is reused by every stage and by the single-step
baseline. Registered alone it distils the shipped teacher into a BK-SDM-Small-analogue student
(``kedro run --pipelines distill_stage``); the path's ``baseline`` is the same with the path's total steps.
"""

from kedro.pipeline import Node, Pipeline

from . import nodes
from delta_diff.sd import DevicePolicy

from .nodes import DistillStageParams

SHARED_INPUTS = ("training_cache", "prompt_sets")


def _for_stage(stage: str, snapshots: bool):
    # A closure, not functools.partial: Kedro validates "params:" inputs from the node function's own type
    # hints, which a partial hides (the parameters would arrive unvalidated, as a dict).
    def distill_stage(parent, student_unet, training_cache, prompt_sets, params: DistillStageParams,
                      runtime: DevicePolicy, teacher_target=None):
        return nodes.distill_stage(stage, parent, student_unet, training_cache, prompt_sets, params, runtime,
                                   snapshots=snapshots, teacher_unet=teacher_target)

    distill_stage.__doc__ = nodes.distill_stage.__doc__
    return distill_stage


def distill_stage_template(namespace: str, parent: str, student: str | None = None,
                           params: str = "params:distill_stage.stage", snapshots: bool = False,
                           teacher: str | None = None) -> Pipeline:
    """Distil ``student`` (a dataset holding a pruned U-Net) from ``parent`` (a pipeline dataset); without
    ``student``, prune the preset or genome of ``params:distill_stage.student`` first. ``snapshots``: also output
    ``<namespace>.curve_unets``, the student every ``distillation.snapshot_every`` steps (the baseline's curve).
    ``teacher``: a dataset with the original teacher's U-Net (or a placeholder), for a stage whose parent is an
    assistant and whose ``distillation.target`` is teacher or both."""
    steps = []
    if student is None:
        steps.append(Node(nodes.prune_student, ["parent", "params:distill_stage.student"], "student_unet",
                          name="prune_student"))
    steps += [
        Node(_for_stage(namespace, snapshots), ["parent", "student_unet", "training_cache", "prompt_sets", params,
                                                "params:runtime"] + (["teacher_target"] if teacher else []),
             ["distilled_unet", "distill_history", "validation_samples"] + (["curve_unets"] if snapshots else []),
             name="distill"),
        Node(nodes.export_student_pipeline, ["parent", "distilled_unet"], "student_pipeline",
             name="export_student_pipeline"),
    ]
    inputs = {"parent": parent, **{i: i for i in SHARED_INPUTS}}
    if student is not None:
        inputs["student_unet"] = student
    if teacher is not None:
        inputs["teacher_target"] = teacher
    shared = {params, "params:runtime"} | ({"params:distill_stage.student"} if student is None else set())
    return Pipeline(steps, namespace=namespace, inputs=inputs, parameters=shared)


def create_pipeline(**kwargs) -> Pipeline:
    return distill_stage_template("bk_sdm_small", parent="embedded_teacher")

