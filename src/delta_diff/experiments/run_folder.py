"""A run's own project folder: the project's conf (its local env replaced by the run's overrides), the shipped
models linked read-only, its own data/ and MLflow database, so runs never overwrite each other's versions."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import yaml

# What a run links from the project: every world's shipped teacher and scorer (by pattern: a list of names missed
# world v7's, trained after the list was written, and its first claim run stopped on a missing teacher) and SD
# v1.4's U-Net config.
SHIPPED = ("data/06_models/embedded_teacher*", "data/06_models/world_scorer*", "data/01_raw/sd_v1_4_unet_config.json")


def shipped_paths(project: Path) -> list[Path]:
    """The project's shipped models and files, relative to it (a world whose teacher is not trained yet has none)."""
    return sorted({path.relative_to(project) for pattern in SHIPPED for path in project.glob(pattern)})


def make_run_folder(project: Path, folder: Path, overrides: dict | None = None, env: str | None = None) -> Path:
    """Create (or refresh the configuration of) ``folder`` as a runnable copy of ``project``: every environment
    of its conf except ``local``, which holds only ``overrides`` (as ``parameters.yml``) if any are given. With
    ``env`` (e.g. world_v2), ``local`` holds that environment instead, its parameters deep-merged with the
    overrides into one file (Kedro refuses a key set in two files of one environment), so a run is
    ``kedro run`` with the default env either way."""
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
    local = folder / "conf" / "local"
    local.mkdir()
    parameters = {}
    if env is not None:
        source = project / "conf" / env
        if not source.is_dir() or env in ("base", "local"):
            raise ValueError(f"experiment env {env!r}: no conf/{env} environment to run in (give e.g. world_v2)")
        for path in sorted(source.iterdir()):
            if path.name.startswith("parameters") and path.suffix in (".yml", ".yaml"):
                parameters = deep_merge(parameters, yaml.safe_load(path.read_text()) or {})
            elif path.is_file():
                shutil.copy(path, local / path.name)
    parameters = deep_merge(parameters, overrides or {})
    if parameters:
        # In the conf's own key order, not sorted: a world's vocabulary order is meaning (world v7's first group is
        # the one whose colour comes first), and sorted keys gave world v7's runs another order than its teacher's.
        (local / "parameters.yml").write_text(yaml.safe_dump(parameters, sort_keys=False))
    for relative in shipped_paths(project):
        link = folder / relative
        if not link.exists():
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to((project / relative).resolve())
    return folder


def deep_merge(base: dict, override: dict) -> dict:
    """``override`` over ``base``, nested dicts merged key by key (as the project's "soft" parameter merge)."""
    merged = dict(base)
    for key, value in override.items():
        merged[key] = deep_merge(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key), dict) \
            else value
    return merged
