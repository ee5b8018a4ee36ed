"""BK-SDM knowledge distillation: stage matching, losses, and the training function."""

from .features import FEATURE_PAIRINGS, FeaturePairing, collect_outputs, feature_pairing, stage_pairs, unwrap
from .losses import LossWeights, distillation_loss
from .trainer import DistillConfig, distill_student

__all__ = ["FEATURE_PAIRINGS", "DistillConfig", "FeaturePairing", "feature_pairing", "LossWeights", "collect_outputs", "distill_student", "distillation_loss", "stage_pairs", "unwrap"]
