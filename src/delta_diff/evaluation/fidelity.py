"""Fidelity to the teacher: the same prompt and seed should give the teacher's image (PSNR, higher is closer)."""

from __future__ import annotations

import numpy as np
from PIL import Image


def psnr(reference: list[Image.Image], images: list[Image.Image]) -> float:
    values = []
    for a, b in zip(reference, images):
        x = np.asarray(a, dtype=np.float64) / 255.0
        y = np.asarray(b, dtype=np.float64) / 255.0
        mse = float(np.mean((x - y) ** 2))
        values.append(100.0 if mse == 0 else 10 * np.log10(1.0 / mse))
    return float(np.mean(values))
