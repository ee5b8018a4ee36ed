"""Train the embedded world's tiny SD-family teacher and its scorer (run once; output shipped in the repo)."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
