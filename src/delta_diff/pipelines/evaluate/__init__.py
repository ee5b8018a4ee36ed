"""Score students against the teacher: image metric, HPS v2 where available, cross-attention similarity."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
