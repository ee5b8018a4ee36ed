"""One training loop for every trainer here: progress bar, periodic atomic checkpoints, resume, metric logging."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm

from .batches import BatchSampler
from .checkpoint import TrainingCheckpoints

logger = logging.getLogger(__name__)

MetricsLogger = Callable[[dict[str, float], int], None]


@dataclass
class TrainingRun:
    """What a loop trains and how; ``loss_fn(batch_indices) -> (loss, metrics)``."""

    name: str
    models: dict[str, torch.nn.Module]
    optimizer: torch.optim.Optimizer
    sampler: BatchSampler
    loss_fn: Callable[[torch.Tensor], tuple[torch.Tensor, dict[str, float]]]
    total_steps: int
    lr_lambda: Callable[[int], float] = lambda step: 1.0
    ema: object | None = None  # diffusers.training_utils.EMAModel
    max_grad_norm: float = 1.0
    history: list[dict] = field(default_factory=list)


def train(
    run: TrainingRun,
    checkpoints: TrainingCheckpoints | None = None,
    checkpoint_every: int = 200,
    log_every: int = 25,
    log_metrics: MetricsLogger | None = None,
    show_progress: bool = True,
) -> list[dict]:
    """Train to ``run.total_steps``, resuming from the newest checkpoint if there is one. Returns the logged
    history (one dict of mean metrics per ``log_every`` steps)."""
    scheduler = torch.optim.lr_scheduler.LambdaLR(run.optimizer, run.lr_lambda)
    parameters = [p for m in run.models.values() for p in m.parameters() if p.requires_grad]
    start = 0
    if checkpoints is not None and checkpoints.latest() is not None:
        names = ["optimizer", "scheduler", "sampler", "rng", "history"] + (["ema"] if run.ema is not None else [])
        states, meta = checkpoints.load(checkpoints.latest(), run.models, names)
        run.optimizer.load_state_dict(states["optimizer"])
        scheduler.load_state_dict(states["scheduler"])
        run.sampler.load_state_dict(states["sampler"])
        torch.random.set_rng_state(states["rng"])
        run.history[:] = states["history"]
        if run.ema is not None:
            run.ema.load_state_dict(states["ema"])
        start = int(meta["step"])
        logger.info("%s: resuming from step %d of %d (%s)", run.name, start, run.total_steps, checkpoints.directory)

    for model in run.models.values():
        model.train()
    window: dict[str, list[float]] = {}
    progress = tqdm(range(start, run.total_steps), desc=run.name, initial=start, total=run.total_steps,
                    disable=not show_progress, mininterval=2.0)
    for step in progress:
        loss, metrics = run.loss_fn(run.sampler.next())
        if not torch.isfinite(loss):
            last = checkpoints.latest() if checkpoints is not None else None
            raise FloatingPointError(
                f"{run.name}: loss became {float(loss)} at step {step + 1}; stopped without saving. "
                + (f"The last good checkpoint is step {last} in {checkpoints.directory}." if last else "No checkpoint was written.")
                + " Lower the learning rate or check the inputs."
            )
        run.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, run.max_grad_norm)
        run.optimizer.step()
        scheduler.step()
        if run.ema is not None:
            run.ema.step(parameters)
        for key, value in {"loss": float(loss), **metrics}.items():
            window.setdefault(key, []).append(value)
        done = step + 1
        if done % log_every == 0 or done == run.total_steps:
            means = {k: sum(v) / len(v) for k, v in window.items()}
            means["lr"] = scheduler.get_last_lr()[0]
            run.history.append({"step": done, **means})
            progress.set_postfix(loss=f"{means['loss']:.4f}")
            if log_metrics is not None:
                log_metrics({f"{run.name}/{k}": v for k, v in means.items()}, done)
            window = {}
        if checkpoints is not None and (done % checkpoint_every == 0 or done == run.total_steps):
            states = {
                "optimizer": run.optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "sampler": run.sampler.state_dict(),
                "rng": torch.random.get_rng_state(),
                "history": run.history,
            }
            if run.ema is not None:
                states["ema"] = run.ema.state_dict()
            checkpoints.save(done, run.models, states)
    for model in run.models.values():
        model.eval()
    return run.history
