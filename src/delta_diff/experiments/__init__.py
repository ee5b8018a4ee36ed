"""Experiments over whole `kedro run`s (the claim under test, ablations): each run in its own project folder,
resumable, aggregated into one table and figure. Kedro-free: it only writes folders and starts processes."""

from .aggregate import aggregate_results
from .design import ExperimentDesign, RunSpec, expand_runs
from .figures import results_figure
from .runner import run_experiment

__all__ = ["ExperimentDesign", "RunSpec", "aggregate_results", "expand_runs", "results_figure", "run_experiment"]
