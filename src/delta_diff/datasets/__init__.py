"""Custom Kedro datasets (the only part of the library that imports Kedro besides ``pipelines/``)."""

from .diffusers_model import DiffusersModelDataset
from .image_folder import ImageFolderDataset
from .latest_version import LatestVersionCSVDataset
from .model_snapshots import ModelSnapshotsDataset
from .training_cache import TrainingCacheDataset

__all__ = ["DiffusersModelDataset", "ImageFolderDataset", "LatestVersionCSVDataset", "ModelSnapshotsDataset",
           "TrainingCacheDataset"]
