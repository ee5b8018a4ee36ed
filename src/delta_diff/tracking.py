"""MLflow glue for nodes: a metrics callback for the Kedro-free trainers, active only inside a tracked run."""

from __future__ import annotations

from collections.abc import Callable


def mlflow_metrics_logger() -> Callable[[dict[str, float], int], None] | None:
    """``mlflow.log_metrics`` when kedro-mlflow has opened a run, else None (tests, plain library use)."""
    import mlflow

    return log_metrics if mlflow.active_run() is not None else None


def log_metrics(metrics: dict[str, float], step: int | None = None) -> None:
    """Log to the active MLflow run, if any (nodes call this; outside ``kedro run`` it does nothing)."""
    import mlflow

    if mlflow.active_run() is not None:
        mlflow.log_metrics({k: float(v) for k, v in metrics.items()}, step=step)


def log_tags(tags: dict[str, str]) -> None:
    """Tag the active MLflow run, if any (what a run chose: e.g. each stage's feature-KD pairing rule)."""
    import mlflow

    if mlflow.active_run() is not None:
        mlflow.set_tags({k: str(v) for k, v in tags.items()})


def log_figure(figure, artifact_file: str) -> None:
    """Log a matplotlib figure as an MLflow artifact of the active run (validation images during training)."""
    import matplotlib.pyplot as plt
    import mlflow

    if mlflow.active_run() is not None:
        mlflow.log_figure(figure, artifact_file)
    plt.close(figure)
