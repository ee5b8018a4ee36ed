"""Find each teacher-assistant architecture: describe the parent's space (and, in later stages, search it)."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
