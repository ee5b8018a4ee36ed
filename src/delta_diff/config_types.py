"""Constrained value types for the settings models (pydantic), so every setting is range-checked when a run
starts and a bad one is refused naming its key, instead of failing deep inside torch or diffusers, or silently
doing the wrong thing (0 steps saving an untrained model, a dropout of 1.5, a NaN learning rate)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

Count = Annotated[int, Field(ge=1)]  # steps, batch sizes, prompts, repeats, every-N intervals: at least one
NonNegativeCount = Annotated[int, Field(ge=0)]  # warm-up steps, layers, "0 = off" intervals
Fraction = Annotated[float, Field(ge=0, lt=1, allow_inf_nan=False)]  # a share that must leave something: dropout
OpenFraction = Annotated[float, Field(gt=0, lt=1, allow_inf_nan=False)]  # a decay, a share of a whole
Probability = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]  # thresholds, mutation probabilities
LearningRate = Annotated[float, Field(gt=0, allow_inf_nan=False)]
Weight = Annotated[float, Field(ge=0, allow_inf_nan=False)]  # loss weights, finite
PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]  # guidance scale, gradient-norm clip
Timestep = Annotated[int, Field(ge=0, le=999)]  # a DDPM training timestep of SD's 1,000-step schedule
