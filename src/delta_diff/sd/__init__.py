"""Generic Stable Diffusion helpers, Kedro-free and not tied to the embedded world: the device and dtype policy,
the teacher's own noise schedule, and sampling with a swapped-in U-Net."""

from .device import DTYPES, DevicePolicy
from .sampling import generate_images, unet_swapped_in
from .scheduler import training_noise_scheduler, training_target

__all__ = ["DTYPES", "DevicePolicy", "generate_images", "training_noise_scheduler", "training_target",
           "unet_swapped_in"]
