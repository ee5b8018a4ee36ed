"""Training plumbing shared by the teacher's, the scorer's and the students' trainers: one loop on accelerate,
checkpoints that resume bit-exactly, batching and the LR schedule."""

from .batches import BatchSampler, cosine_with_warmup
from .checkpoint import CheckpointError, TrainingCheckpoints, job_fingerprint, weights_digest
from .loop import MetricsLogger, StepContext, TrainingRun, make_accelerator, train

__all__ = ["BatchSampler", "CheckpointError", "MetricsLogger", "StepContext", "TrainingCheckpoints", "TrainingRun",
           "cosine_with_warmup", "job_fingerprint", "make_accelerator", "train", "weights_digest"]
