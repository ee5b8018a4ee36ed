"""Distil a student U-Net from its parent on cached latents and text embeddings (BK-SDM's recipe), with
accelerate (mixed precision, gradient accumulation; several processes when launched so).

Kedro-free: config in, trained student out. The device and dtypes are the run's ``DevicePolicy``: the parent must
arrive placed (frozen dtype, on the device; it is checked, never moved or cast), and the student is trained as an
fp32 copy under autocast, so neither model handed in is changed. The student starts from the weights it inherited
when it was pruned from the parent. The noise schedule and prediction type are the caller's ``noise_scheduler``,
the teacher's own (``delta_diff.sd.training_noise_scheduler``). The search calls this for its short distillations, the
``distill_stage`` pipeline for full stages. Checkpoints (every ``checkpoint_every`` steps, atomic, last
``keep_checkpoints`` kept) carry the student, optimizer, sampler, RNG and EMA states; a rerun resumes from the
newest one, refusing one written for another configuration.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState
from diffusers.training_utils import EMAModel
from pydantic import BaseModel, ConfigDict
from tqdm.auto import tqdm

from delta_diff.sd import DevicePolicy, training_target
from delta_diff.sd.device import same_device
from delta_diff.training import BatchSampler, TrainingCheckpoints
from delta_diff.training.checkpoint import CheckpointError, weights_digest
from delta_diff.training.loop import MetricsLogger

from .batches import CachedBatches, FolderBatches
from .features import FEATURE_PAIRINGS, collect_outputs, feature_pairing
from .losses import LossWeights, distillation_loss

logger = logging.getLogger(__name__)

# Settings that may change between a run and its resumption (the rest must match the checkpoint).
RESUMABLE_FIELDS = {"steps", "checkpoint_every", "keep_checkpoints", "log_every", "validate_every"}


class DistillConfig(BaseModel):
    """One distillation's settings; where it runs and in which precision is the run's ``DevicePolicy``."""

    model_config = ConfigDict(extra="forbid")
    steps: int = 200
    batch_size: int = 32
    gradient_accumulation: int = 1
    learning_rate: float = 5e-5  # BK-SDM: constant 5e-5 AdamW
    warmup_steps: int = 0
    task_weight: float = 1.0  # BK-SDM: all three lambdas 1.0
    output_weight: float = 1.0
    feature_weight: float = 1.0
    normalise_features: bool = False
    # Which student stage imitates which parent stage: "auto" is BK-SDM's own pairs where its rule covers the
    # architecture (every BK-SDM preset), else the pre-downsampler pairing (delta_diff.distill.features).
    feature_pairing: Literal[FEATURE_PAIRINGS] = "auto"
    caption_dropout: float = 0.1  # keep the unconditional branch (classifier-free guidance) distilled too
    max_grad_norm: float = 1.0
    gradient_checkpointing: bool = False
    ema_decay: float | None = None  # e.g. 0.999; None: no EMA
    seed: int = 0
    checkpoint_every: int = 100
    keep_checkpoints: int = 2
    log_every: int = 25
    validate_every: int = 0  # 0: no validation images during training


def fingerprint(config: DistillConfig, parent, student, policy: DevicePolicy | None = None) -> str:
    """What a checkpoint must agree on to be resumed: training settings and precision, both architectures and
    the parent's weights (a re-distilled parent of the same shape is another job). Not the device: a job may
    resume on another machine."""
    policy = policy or DevicePolicy()
    settings = {**config.model_dump(exclude=RESUMABLE_FIELDS),
                **policy.model_dump(include={"frozen_dtype", "mixed_precision"})}
    # Not the "_" keys: "_name_or_path" is the folder a model was loaded from, a new catalog version on every run.
    configs = [{k: v for k, v in dict(m.config).items() if not k.startswith("_")} for m in (parent, student)]
    blob = json.dumps([settings, *configs, weights_digest(parent)], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def distill_student(
    parent,
    student,
    cache: dict[str, torch.Tensor] | FolderBatches,
    noise_scheduler,
    config: DistillConfig,
    checkpoint_dir: str | None = None,
    log_metrics: MetricsLogger | None = None,
    show_progress: bool = True,
    name: str = "distill",
    on_validate: Callable[[int, object], None] | None = None,
    policy: DevicePolicy | None = None,
):
    """Train a copy of ``student`` to imitate ``parent``; returns (trained student, history). ``cache`` is
    ``data_prep``'s cache, or a ``FolderBatches`` that encodes a raw image folder on the fly.
    ``on_validate(step, student)`` is called every ``validate_every`` steps on the main process (validation
    images). ``policy`` defaults to ``DevicePolicy()`` (CUDA when there is one, fp32)."""
    policy = policy or DevicePolicy()
    source = cache if isinstance(cache, FolderBatches) else CachedBatches(cache, config.batch_size)
    n = len(source)
    if source.text_dim != student.config.cross_attention_dim:
        raise ValueError(
            f"text embeddings are {source.text_dim}-d but the U-Net expects "
            f"{student.config.cross_attention_dim}-d: the cache was built with another text encoder; rebuild it"
        )
    pairing = feature_pairing(student, parent, config.feature_pairing)
    pairs = pairing.pairs
    policy.check_placed(parent, "parent U-Net")
    accelerator = _accelerator(policy, config.gradient_accumulation)
    if accelerator.num_processes > 1:
        logger.info("%s: rank %d of %d (%s)", name, accelerator.process_index, accelerator.num_processes,
                    accelerator.distributed_type)
    if not same_device(accelerator.device, policy.torch_device):
        raise ValueError(f"{name}: accelerate trains on {accelerator.device} but the policy's device is "
                         f"{policy.torch_device}; under torchrun give each rank its own device (launch.py does)")
    weight_dtype = policy.frozen_torch_dtype
    student = policy.trainable_copy(student)  # fp32 master weights; the caller's student stays as it was
    if config.gradient_checkpointing:
        student.enable_gradient_checkpointing()
    ema = EMAModel(student.parameters(), decay=config.ema_decay) if config.ema_decay else None
    optimizer = torch.optim.AdamW(student.parameters(), lr=config.learning_rate)
    warmup = max(1, config.warmup_steps)
    lr_schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / warmup))
    # Every rank draws the same global batch (one sampler, one seed) and trains on its own shard of it, so the
    # ranks together see each item once per epoch, and rank 0's sampler state is every rank's.
    world, rank = accelerator.num_processes, accelerator.process_index
    if config.batch_size * world > n:
        raise ValueError(f"{name}: batch_size {config.batch_size} x {world} processes is larger than the training "
                         f"set ({n} items)")
    sampler = BatchSampler(n, config.batch_size * world, config.seed)
    device = accelerator.device
    # Noise, timesteps and caption dropout are drawn where they are used, from each rank's own stream.
    generator = policy.generator(config.seed + 1 + 1000 * rank, device)
    stamp = fingerprint(config, parent, student, policy)
    # One folder per fingerprint: a rerun of the same job resumes; a changed job (another architecture chosen by
    # the search, other settings, a re-distilled parent) starts at step 0 beside it instead of failing.
    checkpoints = None
    if checkpoint_dir:
        checkpoints = TrainingCheckpoints(str(Path(checkpoint_dir) / stamp), keep=config.keep_checkpoints)
        others = [p.name for p in Path(checkpoint_dir).iterdir() if p.is_dir() and p.name != stamp] \
            if Path(checkpoint_dir).is_dir() else []
        if others and checkpoints.latest() is None and accelerator.is_main_process:
            logger.info("%s: no checkpoint of this job (%s) yet; %s holds %d of other jobs (%s), left untouched",
                        name, stamp, checkpoint_dir, len(others), ", ".join(sorted(others)[:3]))

    history: list[dict] = []
    start = 0
    if checkpoints is not None and checkpoints.latest() is not None:
        names = ["optimizer", "scheduler", "sampler", "rng", "generator", "history"] + (["ema"] if ema else [])
        states, meta = checkpoints.load(checkpoints.latest(), {"student": student}, names)
        if meta.get("fingerprint") != stamp:
            raise CheckpointError(
                f"checkpoint {checkpoints.directory}/step-{checkpoints.latest():06d} was written for another "
                "configuration or architecture; delete the folder to start over, or restore the settings it was made with"
            )
        optimizer.load_state_dict(states["optimizer"])
        lr_schedule.load_state_dict(states["scheduler"])
        sampler.load_state_dict(states["sampler"])
        rngs, generators = _per_rank(states["rng"]), _per_rank(states["generator"])
        if len(generators) != world:
            raise CheckpointError(
                f"checkpoint {checkpoints.directory}/step-{checkpoints.latest():06d} was written by {len(generators)} "
                f"process(es) and this run has {world}: resume with num_processes {len(generators)}, or delete the "
                "folder to start over")
        torch.random.set_rng_state(rngs[rank])  # each rank continues its own random streams
        generator.set_state(generators[rank])
        history = list(states["history"])
        if ema is not None:
            ema.load_state_dict(states["ema"])
        start = int(meta["step"])
        logger.info("%s: resuming from step %d of %d (%s)", name, start, config.steps, checkpoints.directory)

    # The LR schedule is not prepared: accelerate would step a prepared one once per process, ending warm-up
    # num_processes times early; here it steps once per optimizer step.
    model, optimizer = accelerator.prepare(student, optimizer)
    unwrapped = accelerator.unwrap_model(model)  # hooks and checkpoints use plain module names
    weights = LossWeights(config.task_weight, config.output_weight, config.feature_weight, config.normalise_features)
    n_timesteps = noise_scheduler.config.num_train_timesteps
    student_names, parent_names = [s for s, _ in pairs], [p for _, p in pairs]
    empty_text = source.empty_text.to(device)
    if accelerator.is_main_process:
        logger.info("%s: %s prediction, feature pairs by %s rule (%d pairs), %s, frozen %s, student fp32 under %s",
                    name, noise_scheduler.config.prediction_type, pairing.rule, len(pairs), device,
                    policy.frozen_dtype, policy.mixed_precision)

    def batch_loss(batch):
        latents, text = source.batch(batch, generator)  # on the device
        noise = torch.randn(latents.shape, generator=generator, device=device)
        timesteps = torch.randint(0, n_timesteps, (len(batch),), generator=generator, device=device)
        drop = torch.rand(len(batch), generator=generator, device=device) < config.caption_dropout
        text = torch.where(drop[:, None, None], empty_text.expand_as(text), text)
        noisy = noise_scheduler.add_noise(latents, noise, timesteps)
        target = training_target(noise_scheduler, latents, noise, timesteps)
        with torch.no_grad(), collect_outputs(parent, parent_names) as parent_features:
            parent_pred = parent(noisy.to(weight_dtype), timesteps, encoder_hidden_states=text.to(weight_dtype)).sample
        with accelerator.autocast(), collect_outputs(unwrapped, student_names) as student_features:
            student_pred = model(noisy, timesteps, encoder_hidden_states=text).sample
        return distillation_loss(student_pred, parent_pred, target, student_features, parent_features, pairs, weights)

    window: dict[str, list[float]] = {}
    clock = time.perf_counter()
    progress = tqdm(range(start, config.steps), desc=name, initial=start, total=config.steps, mininterval=2.0,
                    disable=not (show_progress and accelerator.is_main_process))
    for step in progress:
        for _ in range(config.gradient_accumulation):
            with accelerator.accumulate(model):
                global_batch = sampler.next()
                loss, parts = batch_loss(global_batch[rank * config.batch_size: (rank + 1) * config.batch_size])
                _stop_unless_finite(loss, accelerator, name, step + 1, checkpoints)
                accelerator.backward(loss)
                if accelerator.sync_gradients:
                    accelerator.clip_grad_norm_(model.parameters(), config.max_grad_norm)
                optimizer.step()  # accelerate skips it until the last accumulation micro-step
                if accelerator.sync_gradients and not accelerator.optimizer_step_was_skipped:
                    lr_schedule.step()  # (fp16: not when the grad scaler skipped the step)
                optimizer.zero_grad(set_to_none=True)
            for key, value in {"loss": loss.item(), **parts}.items():
                window.setdefault(key, []).append(value)
        if ema is not None:
            ema.step(unwrapped.parameters())
        done = step + 1
        if done % config.log_every == 0 or done == config.steps:
            elapsed = time.perf_counter() - clock
            means = {k: sum(v) / len(v) for k, v in window.items()}
            samples = len(window["loss"]) * config.batch_size * accelerator.num_processes
            means.update(lr=lr_schedule.get_last_lr()[0], samples_per_s=samples / max(elapsed, 1e-9))
            history.append({"step": done, **means})
            progress.set_postfix(loss=f"{means['loss']:.4f}", sps=f"{means['samples_per_s']:.0f}")
            if log_metrics is not None and accelerator.is_main_process:
                log_metrics({f"{name}/{k}": v for k, v in means.items()}, done)
            window, clock = {}, time.perf_counter()
        if on_validate is not None and config.validate_every and done % config.validate_every == 0 \
                and accelerator.is_main_process:
            on_validate(done, unwrapped.eval())
            unwrapped.train()
        if checkpoints is not None and (done % config.checkpoint_every == 0 or done == config.steps):
            # Every rank's random states, so a resumed rank continues its own streams, not rank 0's.
            rngs, generators = _gathered(torch.random.get_rng_state(), accelerator), \
                _gathered(generator.get_state(), accelerator)
            accelerator.wait_for_everyone()
            if accelerator.is_main_process:  # one writer; the others would race on the same folder
                states = {"optimizer": optimizer.state_dict(), "scheduler": lr_schedule.state_dict(),
                          "sampler": sampler.state_dict(), "rng": rngs, "generator": generators,
                          "history": history}
                if ema is not None:
                    states["ema"] = ema.state_dict()
                checkpoints.save(done, {"student": unwrapped}, states, {"fingerprint": stamp})
    accelerator.wait_for_everyone()
    student = accelerator.unwrap_model(model)
    if ema is not None:
        ema.copy_to(student.parameters())
    if config.gradient_checkpointing:
        student.disable_gradient_checkpointing()
    for row in history:
        row.setdefault("feature_pairing", pairing.rule)  # which rule this job used, for the stage's report
    return student.eval().requires_grad_(False), history


def _stop_unless_finite(loss: torch.Tensor, accelerator: Accelerator, name: str, step: int, checkpoints) -> None:
    """Raise on every rank, with the same message, when the loss of any rank is not finite (a rank that raised
    alone would leave the others waiting in the next gradient all-reduce)."""
    losses = loss.detach().float().reshape(1)
    if accelerator.num_processes > 1:
        losses = accelerator.gather(losses)
    bad = [(rank, float(value)) for rank, value in enumerate(losses.cpu().tolist()) if not math.isfinite(value)]
    if not bad:
        return
    where = "" if accelerator.num_processes == 1 else \
        " on " + ", ".join(f"rank {rank}" for rank, _ in bad) + f" of {accelerator.num_processes}"
    last = checkpoints.latest() if checkpoints is not None else None
    raise FloatingPointError(
        f"{name}: loss became {bad[0][1]}{where} at step {step}; stopped without saving. "
        + (f"The last good checkpoint is step {last} in {checkpoints.directory}." if last
           else "No checkpoint was written.") + " Lower the learning rate or check the cache."
    )


def _gathered(state: torch.Tensor, accelerator: Accelerator) -> list[torch.Tensor]:
    """One rank's RNG state from every rank, in rank order (all ranks must call it)."""
    if accelerator.num_processes == 1:
        return [state]
    from accelerate.utils import gather_object

    return [s.cpu() for s in gather_object([state])]


def _per_rank(saved) -> list[torch.Tensor]:
    """A checkpoint's per-rank RNG states (older checkpoints hold one state, a single process's)."""
    return list(saved) if isinstance(saved, (list, tuple)) else [saved]


def _accelerator(policy: DevicePolicy, gradient_accumulation: int) -> Accelerator:
    # accelerate keeps one process-wide state; a run has one policy, but a process that distils under two (tests,
    # notebooks) must start the state afresh or accelerate refuses the second precision.
    if AcceleratorState._shared_state and AcceleratorState().mixed_precision != policy.mixed_precision:
        AcceleratorState._reset_state(reset_partial_state=True)
    # cpu=True on a CPU policy: under torchrun accelerate then forms a gloo process group (MULTI_CPU); without it,
    # each rank would believe it is alone and all of them would write the same checkpoints.
    return Accelerator(mixed_precision=policy.mixed_precision, gradient_accumulation_steps=gradient_accumulation,
                       cpu=policy.is_cpu)
