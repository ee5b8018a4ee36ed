"""Training plumbing shared by the teacher's and the students' trainers: checkpoints that resume, batching."""

from .checkpoint import CheckpointError, TrainingCheckpoints, weights_digest
from .batches import BatchSampler, cosine_with_warmup
from .loop import TrainingRun, train

__all__ = ["BatchSampler", "CheckpointError", "TrainingCheckpoints", "TrainingRun", "cosine_with_warmup", "train", "weights_digest"]
