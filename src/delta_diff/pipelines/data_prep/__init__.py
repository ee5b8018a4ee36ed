"""Prompt sets and image folders (BK-SDM's image-folder format) for distillation and evaluation."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
