"""The one training loop, on accelerate, of the teacher's U-Net and VAE, the world scorer and the distillation.

It owns what the trainers must not each do their own way:

* the ``Accelerator``, made from the run's ``DevicePolicy`` (device, autocast precision), with the model and
  optimizer prepared (DDP under several processes) and gradient accumulation;
* one global batch sampler, the same on every rank (its state is rank 0's), of which each rank trains on its own
  shard, and one ``torch.Generator`` per rank on the device that every random draw of the loss comes from: after a
  resume each rank continues both streams where it stopped;
* clipping, the LR schedule (a ``LambdaLR`` stepped once per real optimizer step: not prepared, because accelerate
  would step a prepared one once per process; not when the fp16 grad scaler skipped the step), the EMA of the
  weights (diffusers' ``EMAModel``, copied into the model at the end);
* a non-finite loss on any rank stops every rank with the same message, before its gradients are used;
* logging: windowed means over ranks into history rows (loss, the loss's parts, lr, samples_per_s) and
  ``log_metrics``, progress, and validation and snapshot callbacks on the main process only (a snapshot sees
  the weights the run would return at that step: the EMA's, when there is one);
* checkpoints (``TrainingCheckpoints``: accelerate's ``save_state``/``load_state`` plus the loop's own states),
  written every ``checkpoint_every`` optimizer steps and at the end; a rerun resumes bit-exactly from the newest.

A trainer supplies the model, its optimizer and a loss function ``loss_fn(context, indices) -> (loss, metrics)``:
``indices`` are the dataset items of this rank's shard of the micro-batch, ``context`` a ``StepContext``.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm

from delta_diff.sd.device import DevicePolicy, same_device

from .batches import BatchSampler
from .checkpoint import TrainingCheckpoints

logger = logging.getLogger(__name__)

MetricsLogger = Callable[[dict[str, float], int], None]


@dataclass(frozen=True)
class StepContext:
    """What a loss function gets from the loop besides its batch indices."""

    model: torch.nn.Module  # prepared (DDP-wrapped under several processes): run the trained forward through it
    module: torch.nn.Module  # the same model unwrapped: hooks, attributes, plain parameter names
    generator: torch.Generator  # this rank's stream on the device: every random draw of a step comes from it
    device: torch.device
    autocast: Callable[[], AbstractContextManager]  # the policy's mixed precision, around the trained forward
    rank: int
    num_processes: int


LossFn = Callable[[StepContext, torch.Tensor], tuple[torch.Tensor, dict[str, float]]]


def constant_lr(step: int) -> float:
    return 1.0


def _cpu_policy() -> DevicePolicy:
    return DevicePolicy(device="cpu")


@dataclass
class TrainingRun:
    """What one training trains and how. ``model`` is trained in place (it must be on the policy's device, in
    fp32); ``batch_size`` is per rank, so a global batch is ``batch_size`` x processes; ``total_steps`` counts
    optimizer steps (each of ``gradient_accumulation`` micro-batches). Rank r's generator starts at
    ``noise_seed + 1000 r``; the sampler's seed is ``seed``."""

    name: str
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    loss_fn: LossFn
    n_items: int
    batch_size: int
    total_steps: int
    seed: int = 0
    noise_seed: int = 1
    lr_lambda: Callable[[int], float] = constant_lr
    gradient_accumulation: int = 1
    max_grad_norm: float = 1.0
    ema_decay: float | None = None  # None: no EMA
    ema_warmup: bool = False
    policy: DevicePolicy = field(default_factory=_cpu_policy)


class _History(list):
    """The logged rows, checkpointed with the rest (a resumed run returns the whole run's history)."""

    def state_dict(self) -> dict:
        return {"rows": list(self)}

    def load_state_dict(self, state: dict) -> None:
        self[:] = state["rows"]


def make_accelerator(policy: DevicePolicy, gradient_accumulation: int = 1, name: str = "train"):
    """An ``Accelerator`` for ``policy``: its device and autocast precision."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    # accelerate keeps one process-wide state; a run has one policy, but a process that trains under two (tests,
    # notebooks, a `kedro run` that trains the teacher on the CPU and distils on a GPU) must start the state
    # afresh, or accelerate refuses the second precision and keeps the first device.
    if AcceleratorState._shared_state:
        state = AcceleratorState()
        if state.mixed_precision != policy.mixed_precision or not same_device(state.device, policy.torch_device):
            AcceleratorState._reset_state(reset_partial_state=True)
    # cpu=True on a CPU policy: under torchrun accelerate then forms a gloo process group (MULTI_CPU); without it,
    # each rank would believe it is alone and all of them would write the same checkpoints.
    accelerator = Accelerator(mixed_precision=policy.mixed_precision, cpu=policy.is_cpu,
                              gradient_accumulation_steps=gradient_accumulation)
    if not same_device(accelerator.device, policy.torch_device):
        raise ValueError(f"{name}: accelerate trains on {accelerator.device} but the policy's device is "
                         f"{policy.torch_device}; under torchrun give each rank its own device (launch.py does)")
    return accelerator


def train(
    run: TrainingRun,
    checkpoints: TrainingCheckpoints | None = None,
    checkpoint_every: int = 200,
    log_every: int = 25,
    log_metrics: MetricsLogger | None = None,
    show_progress: bool = True,
    on_validate: Callable[[int, torch.nn.Module], None] | None = None,
    validate_every: int = 0,
    on_snapshot: Callable[[int, torch.nn.Module], None] | None = None,
    snapshot_every: int = 0,
) -> list[dict]:
    """Train ``run.model`` to ``run.total_steps``, resuming from the newest loadable checkpoint if there is one;
    returns the history (one row of means per ``log_every`` steps, the same on every rank). The model ends
    unwrapped, in eval mode, with the EMA weights when there is an EMA. ``on_validate(step, model)`` runs on the
    main process every ``validate_every`` steps; ``on_snapshot(step, model)`` every ``snapshot_every`` steps before
    the last (also at the step a run resumes from, for a job extended past its old end), with the EMA weights in the
    model when there is an EMA (e.g. to keep a training curve's models)."""
    from diffusers.training_utils import EMAModel

    accelerator = make_accelerator(run.policy, run.gradient_accumulation, run.name)
    world, rank, main = accelerator.num_processes, accelerator.process_index, accelerator.is_main_process
    if world > 1:
        logger.info("%s: rank %d of %d (%s)", run.name, rank, world, accelerator.distributed_type)
    batch = run.batch_size
    if batch * world > run.n_items:
        if world > 1:
            raise ValueError(f"{run.name}: batch_size {batch} x {world} processes is larger than the training set "
                             f"({run.n_items} items)")
        batch = run.n_items  # one process: a batch of everything (as the sampler always allowed)
    # Every rank draws the same global batch (one sampler, one seed) and trains on its own shard of it, so the
    # ranks together see each item once per epoch, and rank 0's sampler state is every rank's.
    sampler = BatchSampler(run.n_items, batch * world, run.seed)
    generator = run.policy.generator(run.noise_seed + 1000 * rank, accelerator.device)
    lr_schedule = torch.optim.lr_scheduler.LambdaLR(run.optimizer, run.lr_lambda)
    model, optimizer = accelerator.prepare(run.model, run.optimizer)
    module = accelerator.unwrap_model(model)
    ema = EMAModel(module.parameters(), decay=run.ema_decay, use_ema_warmup=run.ema_warmup) \
        if run.ema_decay else None
    history = _History()
    states = {"sampler": sampler, "lr_schedule": lr_schedule, "history": history}
    if ema is not None:
        states["ema"] = ema

    start = 0
    if checkpoints is not None:
        start = checkpoints.resume(accelerator, states, generator)
        if ema is not None:
            ema.to(device=accelerator.device)  # loaded on the CPU
        if start and main:
            logger.info("%s: resuming from step %d of %d (%s)", run.name, start, run.total_steps,
                        checkpoints.directory)

    def snapshot_due(done: int) -> bool:
        return (on_snapshot is not None and bool(snapshot_every) and done % snapshot_every == 0
                and 0 < done < run.total_steps and main)

    def take_snapshot(done: int) -> None:
        if ema is not None:
            ema.store(module.parameters())
            ema.copy_to(module.parameters())
        on_snapshot(done, module.eval())
        if ema is not None:
            ema.restore(module.parameters())
        module.train()

    # A job extended past its old end (the claim's N = 3 baseline resuming N = 2's at 2 x S) resumes at a step whose
    # snapshot the shorter job never took (it was its last step): take it now, from the resumed weights.
    # on_snapshot keeps a snapshot already there, so a plain resume rewrites nothing.
    if snapshot_due(start):
        take_snapshot(start)

    context = StepContext(model, module, generator, accelerator.device, accelerator.autocast, rank, world)
    module.train()
    window: dict[str, list[float]] = {}
    clock = time.perf_counter()
    progress = tqdm(range(start, run.total_steps), desc=run.name, initial=start, total=run.total_steps,
                    mininterval=2.0, disable=not (show_progress and main))
    for step in progress:
        stepped = False
        for _ in range(run.gradient_accumulation):
            with accelerator.accumulate(model):
                indices = sampler.next()[rank * batch: (rank + 1) * batch]
                loss, parts = run.loss_fn(context, indices)
                _stop_unless_finite(loss, accelerator, run.name, step + 1, checkpoints)
                accelerator.backward(loss)
                if accelerator.sync_gradients:
                    accelerator.clip_grad_norm_(model.parameters(), run.max_grad_norm)
                optimizer.step()  # accelerate skips it until the last accumulation micro-step
                if accelerator.sync_gradients and not accelerator.optimizer_step_was_skipped:
                    lr_schedule.step()  # (fp16: not when the grad scaler skipped the step)
                    stepped = True
                optimizer.zero_grad(set_to_none=True)
            for key, value in {"loss": loss.item(), **parts}.items():
                window.setdefault(key, []).append(value)
        if ema is not None and stepped:
            ema.step(module.parameters())
        done = step + 1
        if done % log_every == 0 or done == run.total_steps:
            elapsed = time.perf_counter() - clock
            means = _mean_over_ranks({k: sum(v) / len(v) for k, v in window.items()}, accelerator)
            samples = len(window["loss"]) * batch * world
            means.update(lr=lr_schedule.get_last_lr()[0], samples_per_s=samples / max(elapsed, 1e-9))
            history.append({"step": done, **means})
            progress.set_postfix(loss=f"{means['loss']:.4f}", sps=f"{means['samples_per_s']:.0f}")
            if log_metrics is not None and main:
                log_metrics({f"{run.name}/{k}": v for k, v in means.items()}, done)
            window, clock = {}, time.perf_counter()
        if on_validate is not None and validate_every and done % validate_every == 0 and main:
            on_validate(done, module.eval())
            module.train()
        if snapshot_due(done):
            take_snapshot(done)
        if checkpoints is not None and (done % checkpoint_every == 0 or done == run.total_steps):
            checkpoints.save(accelerator, done, states, generator)
    progress.close()
    accelerator.wait_for_everyone()
    trained = accelerator.unwrap_model(model, keep_fp32_wrapper=False)  # its own forward again, without autocast
    if ema is not None:
        ema.copy_to(trained.parameters())
    trained.eval()
    return list(history)


def _mean_over_ranks(means: dict[str, float], accelerator) -> dict[str, float]:
    """The window's means over every rank's shards (the global batch's), so every rank logs the same row."""
    if accelerator.num_processes == 1:
        return means
    keys = sorted(means)
    values = torch.tensor([means[k] for k in keys], dtype=torch.float64, device=accelerator.device)
    return dict(zip(keys, accelerator.reduce(values, reduction="mean").cpu().tolist()))


def _stop_unless_finite(loss: torch.Tensor, accelerator, name: str, step: int,
                        checkpoints: TrainingCheckpoints | None) -> None:
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
           else "No checkpoint was written.") + " Lower the learning rate or check the training data."
    )
