"""BK-SDM knowledge distillation: stage matching, losses, and the training function."""

from .features import collect_outputs, stage_pairs, unwrap
from .losses import LossWeights, distillation_loss
from .trainer import DistillConfig, distill_student

__all__ = ["DistillConfig", "LossWeights", "collect_outputs", "distill_student", "distillation_loss", "stage_pairs", "unwrap"]
