"""A run's own project folder: the project's conf (its local env replaced by the run's overrides), the shipped
models linked read-only, its own data/ and MLflow database, so runs never overwrite each other's versions."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import yaml

SHIPPED = ("data/06_models/embedded_teacher", "data/06_models/world_scorer", "data/01_raw/sd_v1_4_unet_config.json")


def make_run_folder(project: Path, folder: Path, overrides: dict | None = None) -> Path:
    """Create (or refresh the configuration of) ``folder`` as a runnable copy of ``project``: every environment
    of its conf except ``local``, which holds only ``overrides`` (as ``parameters.yml``) if any are given."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(project / "pyproject.toml", folder / "pyproject.toml")
    (folder / "src").mkdir(exist_ok=True)  # the package itself is imported from the installed project
    shutil.rmtree(folder / "conf", ignore_errors=True)
    shutil.copytree(project / "conf", folder / "conf", ignore=shutil.ignore_patterns("local"))
    # An absolute URI per folder: mlflow caches one store per URI string, so a relative one would keep pointing
    # at the first folder used in a process.
    mlflow_yml = folder / "conf" / "base" / "mlflow.yml"
    mlflow_yml.write_text(re.sub(r"mlflow_tracking_uri: .*", f"mlflow_tracking_uri: sqlite:///{folder.resolve()}/mlflow.db",
                                 mlflow_yml.read_text()))
    (folder / "conf" / "local").mkdir()
    if overrides:
        (folder / "conf" / "local" / "parameters.yml").write_text(yaml.safe_dump(overrides, sort_keys=True))
    for relative in SHIPPED:
        link = folder / relative
        if not link.exists():
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to((project / relative).resolve())
    return folder
