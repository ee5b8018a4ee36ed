"""Custom Kedro datasets (the only part of the library that imports Kedro besides ``pipelines/``)."""

from .diffusers_model import DiffusersModelDataset

__all__ = ["DiffusersModelDataset"]
