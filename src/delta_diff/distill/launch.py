"""Multi-process distillation: a Kedro-free entry point that every rank runs, and the launcher that starts it.

``accelerate launch ... kedro run`` would run every Kedro node on every rank (DESIGN.md §5). Instead the node
calls ``distill_in_processes``, which writes the inputs to a work folder and starts this module under
``torch.distributed.run`` (torchrun); accelerate picks up the process group from its environment (NCCL on GPUs,
gloo on CPUs). Every rank trains on its own shard of each global batch with gradients averaged by DDP (the
training loop, ``delta_diff.training.train``); only rank 0 writes the models, the shared checkpoint files and the
result (each rank writes its own random states into the checkpoint).

    python -m torch.distributed.run --nproc_per_node 2 -m delta_diff.distill.launch WORK_DIR
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file


def distill_in_processes(parent_unet, student_unet, cache, noise_scheduler, config, num_processes: int,
                         checkpoint_dir: str | None = None, name: str = "distill", policy=None, text_encoder=None):
    """Run ``distill_student`` in ``num_processes`` processes; returns (student, history) like it. Each rank
    places its own copy of the parent (and of ``text_encoder``, for a cache of token ids) on its own device with
    the policy's dtypes (``device`` is per rank) and reads the on-disk cache itself."""
    from delta_diff.sd import DevicePolicy

    policy = policy or DevicePolicy()
    from diffusers import UNet2DConditionModel

    with tempfile.TemporaryDirectory(prefix="delta-diff-distill-") as work:
        work_dir = Path(work)
        write_job(work_dir, parent_unet, student_unet, cache, noise_scheduler, config, checkpoint_dir, name, policy,
                  text_encoder)
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={num_processes}",
                   "-m", "delta_diff.distill.launch", str(work_dir)]
        returncode, tail, errors = _stream(command, name)
        if returncode != 0:
            # The ranks' own error lines first (torchrun's summary after them says only which ranks exited).
            reason = "; ".join(dict.fromkeys(errors)) or "see the log above"
            raise RuntimeError(f"multi-process distillation failed (exit {returncode}): {reason}\n" + "\n".join(tail))
        student = UNet2DConditionModel.from_pretrained(work_dir / "result", use_safetensors=True)
        history = json.loads((work_dir / "history.json").read_text())
    return student, history


def write_job(work_dir: Path, parent_unet, student_unet, cache, noise_scheduler, config,
              checkpoint_dir: str | None, name: str, policy, text_encoder=None) -> None:
    """The work folder that ``main`` reads on every rank: models, scheduler, the cache (the on-disk cache's folder,
    which every rank reads lazily; a small in-memory cache as a file) and the job's settings."""
    from delta_diff.data.sharded_cache import TrainingCache

    parent_unet.save_pretrained(work_dir / "parent")
    student_unet.save_pretrained(work_dir / "student")
    noise_scheduler.save_pretrained(work_dir / "scheduler")
    if text_encoder is not None:
        text_encoder.save_pretrained(work_dir / "text_encoder")
    if isinstance(cache, TrainingCache):
        cache_folder = str(cache.folder.resolve())
    else:
        cache_folder = None
        save_file({k: v.contiguous() for k, v in cache.items()}, str(work_dir / "cache.safetensors"))
    (work_dir / "job.json").write_text(json.dumps({"config": config.model_dump(), "name": name,
                                                    "checkpoint_dir": checkpoint_dir, "cache_folder": cache_folder,
                                                    "policy": policy.model_dump()}))


def _stream(command: list[str], name: str) -> tuple[int, list[str], list[str]]:
    """Run the ranks, passing every line they print on to this process's log as it comes (progress included);
    returns the exit code, the last lines and the ranks' exception messages ("[rank1]: FloatingPointError: ...")."""
    import collections
    import logging
    import re

    logger = logging.getLogger(__name__)
    tail: collections.deque[str] = collections.deque(maxlen=25)
    errors: list[str] = []
    rank_error = re.compile(r"^\[rank\d+\]: (?:[\w.]+\.)?(\w*(?:Error|Exception)): (.*)$")
    environment = {**os.environ, "PYTHONUNBUFFERED": "1"}  # line by line, not at exit
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
                          env=environment) as process:
        for line in process.stdout:
            line = line.rstrip()
            if line:
                tail.append(line)
                logger.info("%s | %s", name, line)
                found = rank_error.match(line)
                if found:
                    errors.append(f"{found.group(1)}: {found.group(2)}")
    return process.returncode, list(tail), errors


def main(work_dir: str) -> None:
    from diffusers import DDPMScheduler, UNet2DConditionModel

    from delta_diff.sd import DevicePolicy

    from .trainer import DistillConfig, distill_student

    work = Path(work_dir)
    job = json.loads((work / "job.json").read_text())
    # One GPU per rank (torchrun's LOCAL_RANK), or the CPU for gloo ranks; the dtypes are the run's.
    device = f"cuda:{os.environ.get('LOCAL_RANK', '0')}" if torch.cuda.is_available() else "cpu"
    policy = DevicePolicy(**{**job["policy"], "device": device})
    parent = policy.place_frozen(UNet2DConditionModel.from_pretrained(work / "parent", use_safetensors=True))
    student = UNet2DConditionModel.from_pretrained(work / "student", use_safetensors=True)
    scheduler = DDPMScheduler.from_pretrained(work / "scheduler")
    if job.get("cache_folder"):
        from delta_diff.data.sharded_cache import open_training_cache

        cache = open_training_cache(job["cache_folder"])
    else:
        cache = load_file(str(work / "cache.safetensors"))
    text_encoder = None
    if (work / "text_encoder").is_dir():
        from transformers import CLIPTextModel

        text_encoder = policy.place_frozen(CLIPTextModel.from_pretrained(work / "text_encoder", use_safetensors=True))
    student, history = distill_student(parent, student, cache, scheduler, DistillConfig(**job["config"]),
                                       checkpoint_dir=job["checkpoint_dir"], name=job["name"],
                                       show_progress=int(os.environ.get("RANK", "0")) == 0, policy=policy,
                                       text_encoder=text_encoder)
    if int(os.environ.get("RANK", "0")) == 0:  # the only writer
        student.save_pretrained(work / "result")
        (work / "history.json").write_text(json.dumps(history))


if __name__ == "__main__":
    main(sys.argv[1])
