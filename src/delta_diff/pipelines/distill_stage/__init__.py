"""Distil one stage of the path (M_{i-1} -> M_i) with BK-SDM's output and feature losses."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
