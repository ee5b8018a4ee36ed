"""Distil a student U-Net from its parent on cached latents and text embeddings (BK-SDM's recipe), with
the project's one training loop (``delta_diff.training.train``: accelerate, mixed precision, gradient
accumulation, several processes when launched so).

Kedro-free: config in, trained student out. The device and dtypes are the run's ``DevicePolicy``: the parent must
arrive placed (frozen dtype, on the device; it is checked, never moved or cast), and the student is trained as an
fp32 copy under autocast, so neither model handed in is changed. The student starts from the weights it inherited
when it was pruned from the parent. The noise schedule and prediction type are the caller's ``noise_scheduler``,
the teacher's own (``delta_diff.sd.training_noise_scheduler``). The search calls this for its short distillations, the
``distill_stage`` pipeline for full stages. Checkpoints (the loop's: every ``checkpoint_every`` steps, atomic,
last ``keep_checkpoints`` kept, per-rank random streams) live in one folder per job fingerprint under
``checkpoint_dir``; a rerun of the same job resumes bit-exactly from the newest, a changed job starts beside it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict

from delta_diff.config_types import (Count, Fraction, LearningRate, NonNegativeCount, OpenFraction, PositiveFloat,
                                     Weight)
from delta_diff.durable_files import write_folder_durably
from delta_diff.sd import DevicePolicy, training_target
from delta_diff.training import MetricsLogger, StepContext, TrainingCheckpoints, TrainingRun, train, weights_digest

from .batches import CachedBatches, FolderBatches
from .features import FEATURE_PAIRINGS, collect_outputs, feature_pairing
from .losses import LossWeights, averaged_distillation_loss

logger = logging.getLogger(__name__)

# Settings that may change between a run and its resumption (the rest must match the checkpoint).
RESUMABLE_FIELDS = {"steps", "checkpoint_every", "keep_checkpoints", "log_every", "validate_every", "snapshot_every"}
# The settings a path's hops and its baseline may differ in: how long, how it is kept and logged, and whom the
# hops imitate (the baseline's parent is the teacher whatever the target). Everything else (seed, batch, learning
# rate, loss weights, ...) must be the same, or the comparison is unfair (checked before a run and an experiment).
KEYS_THAT_MAY_DIFFER = {"steps", "snapshot_every", "checkpoint_every", "keep_checkpoints", "log_every",
                        "validate_every", "target"}
SNAPSHOTS = "snapshots"  # <job folder>/snapshots/step-NNNNNN/: the student at every snapshot_every steps


class DistillConfig(BaseModel):
    """One distillation's settings; where it runs and in which precision is the run's ``DevicePolicy``."""

    model_config = ConfigDict(extra="forbid")
    steps: Count = 200
    batch_size: Count = 32
    gradient_accumulation: Count = 1
    learning_rate: LearningRate = 5e-5  # BK-SDM: constant 5e-5 AdamW
    warmup_steps: NonNegativeCount = 0
    task_weight: Weight = 1.0  # BK-SDM: all three lambdas 1.0
    output_weight: Weight = 1.0
    feature_weight: Weight = 1.0
    normalise_features: bool = False
    # Which student stage imitates which parent stage: "auto" is BK-SDM's own pairs where its rule covers the
    # architecture (every BK-SDM preset), else the pre-downsampler pairing (delta_diff.distill.features).
    feature_pairing: Literal[FEATURE_PAIRINGS] = "auto"
    caption_dropout: Fraction = 0.1  # keep the unconditional branch (classifier-free guidance) distilled too
    max_grad_norm: PositiveFloat = 1.0
    gradient_checkpointing: bool = False
    ema_decay: OpenFraction | None = None  # e.g. 0.999; None: no EMA
    seed: int = 0
    checkpoint_every: Count = 100
    keep_checkpoints: Count = 2
    log_every: Count = 25
    validate_every: NonNegativeCount = 0  # 0: no validation images during training
    # Whom each hop imitates (the KD terms): its parent (TAKD, the default), the original teacher, or both averaged
    # (DGKD's remedy for errors building up along the chain). The task term is the same in all three.
    target: Literal["parent", "teacher", "both"] = "parent"
    # > 0: keep the student's weights every this many steps before the last (the baseline's training curve),
    # as save_pretrained folders in the job's checkpoint folder, so they survive an interrupted run.
    snapshot_every: NonNegativeCount = 0


def fingerprint(config: DistillConfig, parent, student, policy: DevicePolicy | None = None, teacher=None) -> str:
    """What a checkpoint must agree on to be resumed: training settings and precision, both architectures and
    the parent's weights (a re-distilled parent of the same shape is another job). Not the device: a job may
    resume on another machine."""
    policy = policy or DevicePolicy()
    settings = {**config.model_dump(exclude=RESUMABLE_FIELDS),
                **policy.model_dump(include={"frozen_dtype", "mixed_precision"})}
    # Not the "_" keys: "_name_or_path" is the folder a model was loaded from, a new catalog version on every run.
    configs = [{k: v for k, v in dict(m.config).items() if not k.startswith("_")} for m in (parent, student)]
    digests = [weights_digest(parent)] + ([weights_digest(teacher)] if teacher is not None else [])
    blob = json.dumps([settings, *configs, *digests], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def distill_student(
    parent,
    student,
    cache,
    noise_scheduler,
    config: DistillConfig,
    checkpoint_dir: str | None = None,
    log_metrics: MetricsLogger | None = None,
    show_progress: bool = True,
    name: str = "distill",
    on_validate: Callable[[int, object], None] | None = None,
    policy: DevicePolicy | None = None,
    text_encoder=None,
    teacher=None,
):
    """Train a copy of ``student`` to imitate ``parent``; returns (trained student, history). ``cache`` is
    ``data_prep``'s cache (a ``TrainingCache``, or a dict of tensors), or a ``FolderBatches`` that encodes a raw
    image folder on the fly; a cache of token ids needs the (placed, frozen) ``text_encoder`` that encodes them.
    ``on_validate(step, student)`` is called every ``validate_every`` steps on the main process (validation
    images). ``policy`` defaults to ``DevicePolicy()`` (CUDA when there is one, fp32). With
    ``config.snapshot_every`` the student is also saved every that many steps, into ``snapshot_folders``'s
    folder of this job (which needs ``checkpoint_dir``). ``teacher``: the path's original teacher U-Net (placed),
    which ``config.target`` "teacher" or "both" imitates instead of or besides the parent; the student must be a
    sub-architecture of it too (every model on a path is, in the teacher's coordinates)."""
    policy = policy or DevicePolicy()
    if config.target != "parent" and teacher is None:
        raise ValueError(f"{name}: distillation target {config.target!r} needs the original teacher's U-Net "
                         "(teacher=...); a stage distilled from the teacher itself has target 'parent'")
    source = cache if isinstance(cache, FolderBatches) else CachedBatches(cache, config.batch_size, text_encoder)
    if source.text_dim != student.config.cross_attention_dim:
        raise ValueError(
            f"text embeddings are {source.text_dim}-d but the U-Net expects "
            f"{student.config.cross_attention_dim}-d: the cache was built with another text encoder; rebuild it"
        )
    pairing = feature_pairing(student, parent, config.feature_pairing)
    # (model, its feature pairs with the student) for each model the KD terms imitate, averaged over them.
    imitated = [(parent, pairing.pairs)] if config.target != "teacher" else []
    if config.target != "parent":
        imitated.append((teacher, feature_pairing(student, teacher, config.feature_pairing).pairs))
    policy.check_placed(parent, "parent U-Net")
    if teacher is not None and config.target != "parent":
        policy.check_placed(teacher, "teacher U-Net")
    weight_dtype = policy.frozen_torch_dtype
    student = policy.trainable_copy(student)  # fp32 master weights; the caller's student stays as it was
    if config.gradient_checkpointing:
        student.enable_gradient_checkpointing()
    stamp = fingerprint(config, parent, student, policy, teacher if config.target != "parent" else None)
    checkpoints = _job_checkpoints(checkpoint_dir, stamp, config.keep_checkpoints, name)
    if config.snapshot_every and not checkpoint_dir:
        raise ValueError(f"{name}: snapshot_every {config.snapshot_every} needs a checkpoint_dir to keep them in")
    on_snapshot = partial(_save_snapshot, Path(checkpoint_dir or ".") / stamp / SNAPSHOTS) \
        if config.snapshot_every else None
    weights = LossWeights(config.task_weight, config.output_weight, config.feature_weight, config.normalise_features)
    n_timesteps = noise_scheduler.config.num_train_timesteps
    student_names = sorted({s for _, pairs in imitated for s, _ in pairs})
    empty_text = source.empty_text.to(policy.torch_device)
    if int(os.environ.get("RANK", "0")) == 0:  # before accelerate starts: torchrun's rank
        logger.info("%s: %s prediction, imitating the %s, feature pairs by %s rule (%d pairs), %s, frozen %s, "
                    "student fp32 under %s", name, noise_scheduler.config.prediction_type, config.target,
                    pairing.rule, len(pairing.pairs), policy.torch_device, policy.frozen_dtype, policy.mixed_precision)

    def batch_loss(step: StepContext, indices: torch.Tensor):
        generator, device = step.generator, step.device
        latents, text = source.batch(indices, generator)  # on the device
        noise = torch.randn(latents.shape, generator=generator, device=device)
        timesteps = torch.randint(0, n_timesteps, (len(indices),), generator=generator, device=device)
        drop = torch.rand(len(indices), generator=generator, device=device) < config.caption_dropout
        text = torch.where(drop[:, None, None], empty_text.expand_as(text), text)
        noisy = noise_scheduler.add_noise(latents, noise, timesteps)
        target = training_target(noise_scheduler, latents, noise, timesteps)
        references = []
        for model, pairs in imitated:
            with torch.no_grad(), collect_outputs(model, [p for _, p in pairs]) as features:
                prediction = model(noisy.to(weight_dtype), timesteps, encoder_hidden_states=text.to(weight_dtype)).sample
            references.append((prediction, features, pairs))
        with step.autocast(), collect_outputs(step.module, student_names) as student_features:
            student_pred = step.model(noisy, timesteps, encoder_hidden_states=text).sample
        return averaged_distillation_loss(student_pred, target, student_features, references, weights)

    warmup = max(1, config.warmup_steps)
    run = TrainingRun(
        name=name, model=student, optimizer=torch.optim.AdamW(student.parameters(), lr=config.learning_rate),
        loss_fn=batch_loss, n_items=len(source), batch_size=config.batch_size, total_steps=config.steps,
        seed=config.seed, noise_seed=config.seed + 1, lr_lambda=lambda s: min(1.0, (s + 1) / warmup),
        gradient_accumulation=config.gradient_accumulation, max_grad_norm=config.max_grad_norm,
        ema_decay=config.ema_decay, policy=policy,
    )
    history = train(run, checkpoints, checkpoint_every=config.checkpoint_every, log_every=config.log_every,
                    log_metrics=log_metrics, show_progress=show_progress, on_validate=on_validate,
                    validate_every=config.validate_every, on_snapshot=on_snapshot,
                    snapshot_every=config.snapshot_every)
    if config.gradient_checkpointing:
        student.disable_gradient_checkpointing()
    for row in history:
        row.setdefault("feature_pairing", pairing.rule)  # which rule this job used, for the stage's report
    return student.eval().requires_grad_(False), history


def _save_snapshot(root: Path, step: int, model) -> None:
    """The student at ``step`` as a save_pretrained folder, written to a partial folder, fsynced and renamed into
    place; one already there (from before a resume) is kept."""
    final = root / f"step-{step:06d}"
    if final.is_dir():
        return
    root.mkdir(parents=True, exist_ok=True)
    write_folder_durably(final, lambda partial: model.save_pretrained(str(partial), safe_serialization=True))


def snapshot_folders(checkpoint_dir: str | Path, config: DistillConfig, parent, student,
                     policy: DevicePolicy | None = None, teacher=None) -> dict[int, Path]:
    """Step -> folder of every snapshot the job (``config``, ``parent``, the undistilled ``student``, the
    ``teacher`` it was given) has kept."""
    stamp = fingerprint(config, parent, student, policy, teacher if config.target != "parent" else None)
    root = Path(checkpoint_dir) / stamp / SNAPSHOTS
    if not root.is_dir():
        return {}
    return {int(p.name.split("-")[1]): p for p in sorted(root.glob("step-[0-9]*")) if p.is_dir()}


def _job_checkpoints(checkpoint_dir: str | None, stamp: str, keep: int, name: str) -> TrainingCheckpoints | None:
    """One folder per fingerprint: a rerun of the same job resumes; a changed job (another architecture chosen by
    the search, other settings, a re-distilled parent) starts at step 0 beside it instead of failing."""
    if not checkpoint_dir:
        return None
    checkpoints = TrainingCheckpoints(Path(checkpoint_dir) / stamp, keep=keep, fingerprint=stamp)
    root = Path(checkpoint_dir)
    others = [p.name for p in root.iterdir() if p.is_dir() and p.name != stamp] if root.is_dir() else []
    if others and checkpoints.latest() is None and int(os.environ.get("RANK", "0")) == 0:
        logger.info("%s: no checkpoint of this job (%s) yet; %s holds %d of other jobs (%s), left untouched",
                    name, stamp, checkpoint_dir, len(others), ", ".join(sorted(others)[:3]))
    return checkpoints
