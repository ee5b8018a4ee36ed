"""One device and dtype policy for every model and tensor of a run (DESIGN.md §7).

* Frozen models (teacher, parent, VAE, text encoder, scorers) run in ``frozen_dtype`` on ``device``.
* A trained student keeps fp32 master weights on ``device`` and runs its forward under autocast in
  ``mixed_precision`` (accelerate's meaning of the word).
* Only the node that loaded a model places it (``place_frozen``, in place and idempotent: a freshly loaded
  pipeline is the node's own object). Library functions never move or cast a model they are handed; they
  check where it is and make their own copies (``trainable_copy``), so a parent is the same object, on the same
  device and dtype, before and after a distillation.
* Tensors and random generators are made on the device they are used on (``generator``).

The policy is ``params:runtime`` in every pipeline; a device that does not exist or a dtype it cannot run is
refused when the run starts, naming the key.
"""

from __future__ import annotations

import copy
from contextlib import nullcontext
from functools import lru_cache
from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, field_validator, model_validator

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA when torch sees a GPU, else the CPU; ``cpu``, ``cuda``, ``cuda:N`` as given."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"runtime.device {name!r} is not a device name; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cpu":
        return device
    if device.type != "cuda":
        raise ValueError(f"runtime.device {name!r}: only auto, cpu, cuda and cuda:N are supported")
    if not torch.cuda.is_available():
        raise ValueError(f"runtime.device is {name!r} but torch sees no CUDA device here; set runtime.device: auto "
                         "(or cpu)")
    if device.index is not None and device.index >= torch.cuda.device_count():
        raise ValueError(f"runtime.device {name!r}: this machine has {torch.cuda.device_count()} CUDA device(s), "
                         f"cuda:0..cuda:{torch.cuda.device_count() - 1}")
    # With an index, so it compares equal to where a parameter on it says it is.
    return device if device.index is not None else torch.device("cuda", torch.cuda.current_device())


def same_device(a: torch.device | str, b: torch.device | str) -> bool:
    """Whether two device names are one device: ``cpu`` and ``cpu:0`` are (accelerate names a gloo rank's CPU
    ``cpu:0``); ``cuda`` is the current CUDA device."""
    a, b = torch.device(a), torch.device(b)
    if a.type != b.type:
        return False
    if a.type == "cpu":
        return True
    current = torch.cuda.current_device() if a.type == "cuda" and (a.index is None or b.index is None) else None
    return (a.index if a.index is not None else current) == (b.index if b.index is not None else current)


@lru_cache(maxsize=16)
def dtype_problem(device: str, dtype: str) -> str | None:
    """Why ``device`` cannot run a U-Net's operations in ``dtype``, or None when it can. Tried, not assumed:
    a convolution, a group norm, an attention product and a linear layer in that dtype."""
    if dtype == "fp32":
        return None
    target = torch.device(device)
    if target.type == "cuda" and dtype == "bf16" and not torch.cuda.is_bf16_supported():
        return f"{torch.cuda.get_device_name(target)} has no bf16 support (compute capability < 8.0)"
    kind = DTYPES[dtype]
    try:
        x = torch.randn(1, 8, 4, 4, device=target, dtype=kind)
        x = torch.nn.functional.conv2d(x, torch.randn(8, 8, 3, 3, device=target, dtype=kind), padding=1)
        x = torch.nn.functional.group_norm(x, 4)
        q = x.flatten(2).transpose(1, 2)
        torch.nn.functional.scaled_dot_product_attention(q, q, q)
        torch.nn.functional.linear(q, torch.randn(8, 8, device=target, dtype=kind))
    except (RuntimeError, NotImplementedError) as error:
        return f"{device} cannot run {dtype} operations ({str(error).splitlines()[0]})"
    return None


class DevicePolicy(BaseModel):
    """``params:runtime``: where models run and in which precision (validated when the run starts)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    device: str = "auto"  # auto: cuda when torch sees a GPU, else cpu
    frozen_dtype: Literal["fp32", "fp16", "bf16"] = "fp32"  # teacher, parent, VAE, text encoder, scorers
    mixed_precision: Literal["no", "fp16", "bf16"] = "no"  # the trained student's autocast; master weights fp32

    @field_validator("device")
    @classmethod
    def _device_exists(cls, value: str) -> str:
        resolve_device(value)
        return value

    @model_validator(mode="after")
    def _dtypes_run_here(self) -> DevicePolicy:
        device = str(self.torch_device)
        for key, dtype in (("frozen_dtype", self.frozen_dtype), ("mixed_precision", self.mixed_precision)):
            problem = dtype_problem(device, "fp32" if dtype == "no" else dtype)
            if problem:
                raise ValueError(f"runtime.{key} is {dtype!r} but {problem}; choose another runtime.{key} "
                                 "(fp32 / no always works)")
        return self

    @property
    def torch_device(self) -> torch.device:
        return resolve_device(self.device)

    @property
    def frozen_torch_dtype(self) -> torch.dtype:
        return DTYPES[self.frozen_dtype]

    @property
    def is_cpu(self) -> bool:
        return self.torch_device.type == "cpu"

    def place_frozen(self, model):
        """Put a frozen model or pipeline on the device in the frozen dtype, in eval mode without gradients;
        returns it. In place and idempotent: call it on the object a node just loaded, never on a caller's."""
        for module in _modules(model):
            module.eval().requires_grad_(False)
            if not self._placed(module):
                _move(module, self.torch_device, self.frozen_torch_dtype)
        return model

    def trainable_copy(self, model: torch.nn.Module) -> torch.nn.Module:
        """A copy of ``model`` with fp32 master weights on the device, in train mode with gradients (the
        original is left as it was)."""
        trained = copy.deepcopy(model)
        _move(trained, self.torch_device, torch.float32)
        return trained.train().requires_grad_(True)

    def frozen_copy(self, model: torch.nn.Module) -> torch.nn.Module:
        """A placed copy of a model that is being trained (e.g. to sample validation images with it in the
        frozen pipeline); the model itself when it already is placed."""
        if self._placed(model) and not model.training:
            return model
        return self.place_frozen(copy.deepcopy(model))

    def generator(self, seed: int, device: torch.device | str | None = None) -> torch.Generator:
        """A seeded generator on the policy's device (or ``device``), where the random tensors are made."""
        return torch.Generator(device=device or self.torch_device).manual_seed(int(seed))

    def autocast(self):
        """The student's forward precision (a no-op with mixed_precision 'no')."""
        if self.mixed_precision == "no":
            return nullcontext()
        return torch.autocast(self.torch_device.type, dtype=DTYPES[self.mixed_precision])

    def check_placed(self, model, role: str) -> None:
        """Raise unless every module of ``model`` is on the device in the frozen dtype (library functions call
        this instead of moving a model they were handed)."""
        for module in _modules(model):
            device, dtype = _placement(module)
            if device is not None and not self._placed(module):
                raise ValueError(
                    f"the {role} is on {device} in {dtype} but this run's policy is {self.torch_device} in "
                    f"{self.frozen_torch_dtype}; the node that loads it must place it with "
                    "DevicePolicy.place_frozen before handing it on"
                )


    def _placed(self, module: torch.nn.Module) -> bool:
        device, dtype = _placement(module)
        return device is None or (same_device(device, self.torch_device) and dtype == self.frozen_torch_dtype)


def _modules(model) -> list[torch.nn.Module]:
    """The torch modules of a model or a diffusers pipeline (its U-Net, VAE, text encoder, ...)."""
    if isinstance(model, torch.nn.Module):
        return [model]
    components = getattr(model, "components", None)
    if components is None:
        raise TypeError(f"cannot place a {type(model).__name__}: not a torch module or a diffusers pipeline")
    return [c for c in components.values() if isinstance(c, torch.nn.Module)]


def _move(module: torch.nn.Module, device: torch.device, dtype: torch.dtype) -> None:
    """``module.to(device, dtype)``, naming the dtype only when a floating tensor changes dtype: diffusers' ``to``
    warns on every call that names a dtype ("modules ... should be kept in float32: []"), even for models that keep
    none, so the search's many fp32 short distillations would log that warning once per candidate."""
    tensors = [*module.parameters(), *module.buffers()]
    if any(t.is_floating_point() and t.dtype != dtype for t in tensors):
        module.to(device=device, dtype=dtype)
    else:
        module.to(device=device)


def _placement(module: torch.nn.Module) -> tuple[torch.device | None, torch.dtype | None]:
    parameter = next(module.parameters(), None)
    if parameter is None:
        return None, None
    return parameter.device, parameter.dtype
