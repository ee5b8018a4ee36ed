"""Run an experiment's `kedro run`s one after another, each in its own folder; finished runs are skipped, a
broken one resumes (`--only-missing-outputs`, and its stages' own checkpoints)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from fnmatch import fnmatchcase
from pathlib import Path

from delta_diff.project_config import load_project_config

from .design import ExperimentDesign, RunSpec, expand_runs
from .run_folder import make_run_folder

logger = logging.getLogger(__name__)

DONE = "DONE.json"
THREADS_UNSET = "unset (torch's default: one per core)"  # DONE.json's omp_num_threads without OMP_NUM_THREADS


def base_stage_steps(project: Path, env: str | None = None) -> int:
    """Steps per path stage in the project's base conf (with ``env`` over it)."""
    parameters = load_project_config(project / "conf", "parameters", env)
    return int(parameters["distill_stage"]["stage"]["distillation"]["steps"])


class UnknownRunPattern(ValueError):
    """An ``--only`` pattern that names none of the design's runs (a typo would otherwise run nothing, silently)."""


def unmatched_patterns(runs: list[RunSpec], only: list[str]) -> list[str]:
    """The patterns of ``only`` (shell-style, e.g. ``path_n?__bk-sdm-tiny__seed0``) that name none of ``runs``."""
    return [pattern for pattern in only if not any(fnmatchcase(run.name, pattern) for run in runs)]


def run_experiment(design: ExperimentDesign, project: Path, dry_run: bool = False,
                   only: list[str] | None = None) -> list[Path]:
    """Every run of ``design`` -- or, with ``only``, the runs whose names match one of its patterns (a first look
    before a long experiment; the rest later, with the same design) -- and returns every finished run folder,
    selected or not, in run order, so the aggregates cover all that is done."""
    # Seed by seed, so that a stopped experiment leaves every variant with the same seeds done.
    runs = sorted(expand_runs(design, base_stage_steps(project, design.env)), key=lambda run: run.seed)
    if only:
        unmatched = unmatched_patterns(runs, only)
        if unmatched:
            raise UnknownRunPattern(f"--only {' '.join(unmatched)} names none of the design's runs "
                                    f"({', '.join(run.name for run in runs[:3])}, ...; see --dry-run)")
    root = project / design.output / "runs"
    finished = []
    for index, run in enumerate(runs, 1):
        folder = root / run.name
        if (folder / DONE).is_file():
            logger.info("[%d/%d] %s: finished earlier, skipped", index, len(runs), run.name)
            finished.append(folder)
            continue
        if only and not any(fnmatchcase(run.name, pattern) for pattern in only):
            logger.info("[%d/%d] %s: not selected by --only, left for later", index, len(runs), run.name)
            continue
        if dry_run:
            logger.info("[%d/%d] %s: would run with %s", index, len(runs), run.name, json.dumps(run.params))
            continue
        make_run_folder(project, folder, run.params, env=design.env)
        logger.info("[%d/%d] %s: kedro run (log: %s)", index, len(runs), run.name, folder / "run.log")
        start = time.perf_counter()
        with open(folder / "run.log", "a") as log:
            result = subprocess.run([sys.executable, "-m", "kedro", "run", "--only-missing-outputs"], cwd=folder,
                                    stdout=log, stderr=subprocess.STDOUT,
                                    env={**os.environ, "KEDRO_DISABLE_TELEMETRY": "1", "KEDRO_ENV": "local"})
        if result.returncode != 0:
            raise RuntimeError(f"run {run.name} failed (exit {result.returncode}); see {folder / 'run.log'}. "
                               "Fix the cause and start the experiment again: finished runs are skipped and this "
                               "one resumes")
        seconds = time.perf_counter() - start
        # The thread count changes the order of float reductions and so the training trajectory: the same
        # distillation on 1 and 2 threads ended 0.011 and 0.029 of the teacher's world score apart (README "At the
        # plateau").
        threads = os.environ.get("OMP_NUM_THREADS", THREADS_UNSET)
        (folder / DONE).write_text(json.dumps({**run.model_dump(), "wall_seconds": seconds,
                                               "omp_num_threads": threads}, indent=1))
        logger.info("[%d/%d] %s: done in %.1f min", index, len(runs), run.name, seconds / 60)
        finished.append(folder)
    return finished
