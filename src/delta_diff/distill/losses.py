"""BK-SDM's distillation loss (Kim et al., 2023, eq. 1-3):

    L = l_task * MSE(eps_S, target) + l_out * MSE(eps_S, eps_T) + l_feat * sum_stages MSE(F_S, F_T)

``target`` is the noise (epsilon prediction) or the velocity (v-prediction schedulers). Optional, off by default:
feature terms normalised by the parent feature's energy (LAPTOP-Diff), so that no stage dominates by scale.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class LossWeights:
    task: float = 1.0
    output: float = 1.0
    feature: float = 1.0
    normalise_features: bool = False


def feature_loss(student_features: dict[str, torch.Tensor], parent_features: dict[str, torch.Tensor],
                 pairs: list[tuple[str, str]], normalise: bool = False) -> torch.Tensor:
    total = None
    for student_name, parent_name in pairs:
        s, p = student_features[student_name].float(), parent_features[parent_name].float()
        if s.shape != p.shape:  # never let broadcasting turn a mismatched pair into a plausible number
            raise ValueError(f"feature pair {student_name!r} -> {parent_name!r}: student output {tuple(s.shape)} "
                             f"vs parent {tuple(p.shape)}; the stages are not counterparts")
        term = F.mse_loss(s, p)
        if normalise:
            term = term / p.pow(2).mean().clamp_min(1e-8)
        total = term if total is None else total + term
    return total if total is not None else torch.zeros(())


def distillation_loss(student_pred: torch.Tensor, parent_pred: torch.Tensor, target: torch.Tensor,
                      student_features: dict[str, torch.Tensor], parent_features: dict[str, torch.Tensor],
                      pairs: list[tuple[str, str]], weights: LossWeights) -> tuple[torch.Tensor, dict[str, float]]:
    task = F.mse_loss(student_pred.float(), target.float())
    output = F.mse_loss(student_pred.float(), parent_pred.float())
    feature = feature_loss(student_features, parent_features, pairs, weights.normalise_features)
    total = weights.task * task + weights.output * output + weights.feature * feature
    return total, {"task": task.detach().item(), "out_kd": output.detach().item(), "feat_kd": feature.detach().item()}


def averaged_distillation_loss(student_pred: torch.Tensor, target: torch.Tensor,
                               student_features: dict[str, torch.Tensor],
                               references: list[tuple[torch.Tensor, dict[str, torch.Tensor], list[tuple[str, str]]]],
                               weights: LossWeights) -> tuple[torch.Tensor, dict[str, float]]:
    """The loss against each imitated model (its prediction, features and feature pairs), averaged: the task term
    once, the KD terms the mean over the models (one model: exactly ``distillation_loss``). DGKD (Son et al. 2021)
    imitates the parent and the original teacher together this way."""
    losses = [distillation_loss(student_pred, prediction, target, student_features, features, pairs, weights)
              for prediction, features, pairs in references]
    total = sum(loss for loss, _ in losses) / len(losses)
    parts = {key: sum(p[key] for _, p in losses) / len(losses) for key in losses[0][1]}
    return total, parts
