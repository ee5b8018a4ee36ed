"""The whole DELTA-Diff path: Teacher -> stage_1 ... stage_N (search + distil per stage), and the baseline."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
