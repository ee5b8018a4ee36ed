"""A plain BK-SDM-style knowledge-distillation step, written the way BK-SDM's training script does it: every step
encodes its images with the VAE and its captions with the text encoder, runs the frozen teacher and the student
with forward hooks on the matched stages, and takes one AdamW step on

    L = MSE(eps_S, noise) + MSE(eps_S, eps_T) + sum over stages MSE(F_S, F_T)   (BK-SDM: all lambdas 1.0).

It uses torch, diffusers and transformers objects only (none of delta_diff's distillation code), so it is the
reference that ``benchmarks/sd_kd_step.py`` (CPU) and ``benchmarks/gpu_check.py`` (GPU) time delta-diff's cached
``distill_student`` against. Epsilon prediction only, as BK-SDM (SD v1.4).
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

# BK-SDM's feature-KD module lists (their distillation script), as (student module, teacher module) pairs.
BK_SDM_FEATURE_PAIRS = {
    "bk-sdm-small": tuple((f"{side}_blocks.{i}", f"{side}_blocks.{i}") for side in ("down", "up") for i in range(4)),
    "bk-sdm-tiny": (
        ("down_blocks.0", "down_blocks.0"),
        ("down_blocks.1", "down_blocks.1"),
        ("down_blocks.2.attentions.0.proj_out", "down_blocks.2.attentions.1.proj_out"),
        ("up_blocks.0", "up_blocks.1"),
        ("up_blocks.1", "up_blocks.2"),
        ("up_blocks.2", "up_blocks.3"),
    ),
}


@dataclass
class PlainKD:
    """Everything one plain step needs. The VAE, text encoder and teacher are frozen and already placed on the
    device in their dtype; ``student`` is the trained model (fp32 master weights on the same device);
    ``pixels`` is N x 3 x H x W in [-1, 1] on the device and ``captions`` its N captions."""

    vae: torch.nn.Module
    text_encoder: torch.nn.Module
    tokenizer: object
    teacher: torch.nn.Module
    student: torch.nn.Module
    noise_scheduler: object  # a diffusers DDPMScheduler with the teacher's betas
    pairs: tuple[tuple[str, str], ...]
    pixels: torch.Tensor
    captions: list[str]
    batch_size: int
    learning_rate: float = 5e-5  # BK-SDM: constant 5e-5 AdamW
    max_grad_norm: float = 1.0
    autocast_dtype: torch.dtype | None = None  # the student's forward precision; None: its own (fp32)
    seed: int = 0
    optimizer: torch.optim.Optimizer = field(init=False)
    generator: torch.Generator = field(init=False)

    def __post_init__(self):
        if self.batch_size > len(self.pixels):
            raise ValueError(f"batch_size {self.batch_size} is larger than the {len(self.pixels)} images given")
        self.device = self.pixels.device
        self.optimizer = torch.optim.AdamW(self.student.parameters(), lr=self.learning_rate)
        self.generator = torch.Generator(device=self.device).manual_seed(self.seed)
        self.student.train().requires_grad_(True)
        self._synchronize = torch.cuda.synchronize if self.device.type == "cuda" else (lambda: None)

    def step(self) -> dict[str, float]:
        """One optimizer step; returns its loss and the seconds of each phase (the device is synchronised at
        each phase boundary, so the phases add up to the step)."""
        times, clock = {}, _Clock(self._synchronize)
        index = torch.randint(0, len(self.pixels), (self.batch_size,), generator=self.generator, device=self.device)
        frozen_dtype = self.teacher.dtype
        with torch.no_grad():
            posterior = self.vae.encode(self.pixels[index].to(self.vae.dtype)).latent_dist
            latents = posterior.sample(self.generator).float() * self.vae.config.scaling_factor
            times["vae_encode_s"] = clock.lap()
            ids = self.tokenizer([self.captions[i] for i in index.tolist()], padding="max_length", truncation=True,
                                 max_length=self.tokenizer.model_max_length, return_tensors="pt").input_ids
            text = self.text_encoder(ids.to(self.device))[0].float()
            times["text_encode_s"] = clock.lap()
        noise = torch.randn(latents.shape, generator=self.generator, device=self.device)
        timesteps = torch.randint(0, self.noise_scheduler.config.num_train_timesteps, (self.batch_size,),
                                  generator=self.generator, device=self.device)
        noisy = self.noise_scheduler.add_noise(latents, noise, timesteps)
        with torch.no_grad(), _hooked(self.teacher, [t for _, t in self.pairs]) as teacher_features:
            teacher_pred = self.teacher(noisy.to(frozen_dtype), timesteps,
                                        encoder_hidden_states=text.to(frozen_dtype)).sample
        times["teacher_forward_s"] = clock.lap()
        autocast = torch.autocast(self.device.type, dtype=self.autocast_dtype) if self.autocast_dtype \
            else nullcontext()
        with autocast, _hooked(self.student, [s for s, _ in self.pairs]) as student_features:
            student_pred = self.student(noisy, timesteps, encoder_hidden_states=text).sample
        loss = F.mse_loss(student_pred.float(), noise) + F.mse_loss(student_pred.float(), teacher_pred.float())
        for student_name, teacher_name in self.pairs:
            loss = loss + F.mse_loss(student_features[student_name].float(), teacher_features[teacher_name].float())
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.student.parameters(), self.max_grad_norm)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        times["student_step_s"] = clock.lap()
        times["loss"] = float(loss.detach())
        times["step_s"] = sum(v for k, v in times.items() if k.endswith("_s"))
        return times


class _Clock:
    def __init__(self, synchronize):
        self.synchronize = synchronize
        synchronize()
        self.last = time.perf_counter()

    def lap(self) -> float:
        self.synchronize()  # device work is asynchronous: wait for it before reading the clock
        now = time.perf_counter()
        elapsed, self.last = now - self.last, now
        return elapsed


class _hooked:
    """Collect the named submodules' outputs during the forward passes inside the block."""

    def __init__(self, model: torch.nn.Module, names: list[str]):
        self.model, self.names = model, names

    def __enter__(self) -> dict[str, torch.Tensor]:
        self.outputs: dict[str, torch.Tensor] = {}
        self.handles = []
        for name in self.names:
            def hook(module, inputs, output, name=name):
                self.outputs[name] = output[0] if isinstance(output, tuple) else output
            self.handles.append(self.model.get_submodule(name).register_forward_hook(hook))
        return self.outputs

    def __exit__(self, *exc):
        for handle in self.handles:
            handle.remove()
        return False
