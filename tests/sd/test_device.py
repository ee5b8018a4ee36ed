"""The device and dtype policy: bad devices and dtypes refused naming the key; placement in place and idempotent;
no callee changes a model it was handed (the search's parent before and after a short distillation)."""

import logging

import pytest
import torch
from diffusers import UNet2DConditionModel
from pydantic import ValidationError

from delta_diff.architecture import ArchitectureSpace, preset_genome, prune
from delta_diff.distill import DistillConfig, distill_student
from delta_diff.sd import DevicePolicy
from delta_diff.world.components import sd_v1_noise_scheduler

from tests.conftest import tiny_unet_config
from tests.distill.test_trainer import tiny_cache


def test_auto_is_the_cpu_without_a_gpu():
    assert not torch.cuda.is_available()  # this machine; on a GPU machine auto is cuda
    assert DevicePolicy().torch_device == torch.device("cpu")


@pytest.mark.parametrize("device, message", [
    ("cuda", "runtime.device is 'cuda' but torch sees no CUDA device"),
    ("cuda:3", "runtime.device is 'cuda:3' but torch sees no CUDA device"),
    ("tpu", "runtime.device 'tpu' is not a device name"),
    ("mps", "only auto, cpu, cuda and cuda:N"),
])
def test_a_device_that_does_not_exist_is_refused_naming_the_key(device, message):
    with pytest.raises(ValidationError, match=message):
        DevicePolicy(device=device)


def test_a_dtype_the_device_cannot_run_is_refused_naming_the_key(monkeypatch):
    import delta_diff.sd.device as device_module

    monkeypatch.setattr(device_module, "dtype_problem",
                        lambda device, dtype: "no bf16 here" if dtype == "bf16" else None)
    with pytest.raises(ValidationError, match="runtime.frozen_dtype is 'bf16' but no bf16 here"):
        DevicePolicy(frozen_dtype="bf16")
    with pytest.raises(ValidationError, match="runtime.mixed_precision is 'bf16' but no bf16 here"):
        DevicePolicy(mixed_precision="bf16")
    DevicePolicy(frozen_dtype="fp16")


def test_the_cpu_really_runs_the_half_dtypes_it_accepts():
    from delta_diff.sd.device import dtype_problem

    assert dtype_problem("cpu", "bf16") is None and dtype_problem("cpu", "fp16") is None


def test_unknown_keys_and_values_are_refused():
    with pytest.raises(ValidationError):
        DevicePolicy(frozen_dtype="fp8")
    with pytest.raises(ValidationError):
        DevicePolicy(devices="cpu")


def _parent():
    torch.manual_seed(0)
    return UNet2DConditionModel(**tiny_unet_config()).eval()


def test_place_frozen_is_in_place_and_idempotent():
    policy = DevicePolicy(frozen_dtype="bf16")
    unet = _parent()
    assert policy.place_frozen(unet) is unet and unet.dtype == torch.bfloat16
    assert not any(p.requires_grad for p in unet.parameters()) and not unet.training
    before = [p.data_ptr() for p in unet.parameters()]
    policy.place_frozen(unet)
    assert [p.data_ptr() for p in unet.parameters()] == before  # nothing moved or copied the second time


def test_trainable_copy_is_fp32_and_leaves_the_original():
    policy = DevicePolicy(frozen_dtype="bf16")
    unet = policy.place_frozen(_parent())
    trained = policy.trainable_copy(unet)
    assert trained is not unet and trained.dtype == torch.float32 and trained.training
    assert unet.dtype == torch.bfloat16 and not unet.training


def test_a_copy_that_keeps_its_dtype_does_not_make_diffusers_warn():
    """diffusers' ``to`` warns whenever a dtype is named; an fp32 copy of an fp32 model names none."""
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    diffusers_logger = logging.getLogger("diffusers.models.modeling_utils")
    diffusers_logger.addHandler(handler)
    try:
        trained = DevicePolicy().trainable_copy(_parent())
        assert trained.dtype == torch.float32 and not records
        DevicePolicy(frozen_dtype="bf16").place_frozen(_parent())  # a real cast still goes through diffusers' to
        assert any("float32" in r.getMessage() for r in records)
    finally:
        diffusers_logger.removeHandler(handler)


def test_an_unplaced_parent_is_refused_not_moved():
    policy = DevicePolicy(frozen_dtype="bf16")
    parent = _parent()  # fp32: not what the policy says
    space = ArchitectureSpace(dict(parent.config))
    student = prune(parent, preset_genome(space, "bk-sdm-small"), space)
    with pytest.raises(ValueError, match="parent U-Net is on cpu in torch.float32 but this run's policy"):
        distill_student(parent, student, tiny_cache(), sd_v1_noise_scheduler(), DistillConfig(batch_size=4, steps=1),
                        show_progress=False, policy=policy)
    assert parent.dtype == torch.float32


def test_a_distillation_changes_neither_model_it_was_handed():
    """Half-precision frozen parent, fp32 student under bf16 autocast: the parent is the same object with the same
    weights, dtype and mode afterwards; the pruned student handed in is untouched; the result is an fp32 copy."""
    policy = DevicePolicy(frozen_dtype="bf16", mixed_precision="bf16")
    parent = policy.place_frozen(_parent())
    space = ArchitectureSpace(dict(parent.config))
    student = prune(parent, preset_genome(space, "bk-sdm-small"), space)
    parent_before = {k: v.clone() for k, v in parent.state_dict().items()}
    student_before = {k: v.clone() for k, v in student.state_dict().items()}
    trained, history = distill_student(parent, student, tiny_cache(), sd_v1_noise_scheduler(),
                                       DistillConfig(batch_size=4, steps=2, log_every=1, learning_rate=1e-3),
                                       show_progress=False, policy=policy)
    assert parent.dtype == torch.bfloat16 and not parent.training
    assert all(torch.equal(parent.state_dict()[k], v) for k, v in parent_before.items())
    assert student.dtype == torch.bfloat16 and all(torch.equal(student.state_dict()[k], v)
                                                    for k, v in student_before.items())
    assert trained is not student and trained.dtype == torch.float32
    assert any(not torch.equal(trained.state_dict()[k].to(torch.bfloat16), v) for k, v in student_before.items())
    assert history[-1]["feature_pairing"] == "bk_sdm" and len(history) == 2


def test_cpu_and_cpu_0_are_one_device():
    """accelerate names a gloo rank's device cpu:0; the policy says cpu (found by the 2-rank test)."""
    from delta_diff.sd.device import same_device

    assert same_device("cpu:0", "cpu") and same_device(torch.device("cpu"), "cpu")
    assert not same_device("cpu", "meta")
