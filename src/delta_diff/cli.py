"""Project CLI (Kedro loads ``<package>.cli`` and lets its commands override the built-in ones): ``kedro run`` is
Kedro's own command, with every option it has, but a run refused for bad input ends with one line that names what
was wrong and the fix, instead of a 100-400-line traceback; the traceback goes to ``logs/last_failure.log``.

Bad input is an error about what the run was given: Kedro's or pydantic's refusal of a parameter value, or a
``ValueError`` (the project's own checks), a missing file or a dataset error raised in the project's code. Anything else --
an unexpected error anywhere, or any error inside torch or a library -- keeps its traceback on screen.
``kedro run --verbose-errors`` keeps it for bad input too.
"""

from __future__ import annotations

import sys
import traceback
from pathlib import Path

import click
from kedro.framework.cli.project import run as kedro_run
from kedro.io.core import DatasetError
from kedro.validation.exceptions import ParameterValidationError
from pydantic import ValidationError

PACKAGE = Path(__file__).resolve().parent
FAILURE_LOG = Path("logs") / "last_failure.log"


@click.group(name="delta_diff")
def cli() -> None:
    """delta-diff's project commands."""


def is_bad_input(error: BaseException) -> bool:
    """Whether ``error`` reports bad input (see the module docstring): Kedro's or pydantic's refusal of a value,
    or a ValueError / FileNotFoundError / DatasetError raised in the project's own code."""
    if isinstance(error, ParameterValidationError):
        return True
    if not isinstance(error, (ValueError, FileNotFoundError, DatasetError)):
        return False
    if isinstance(error, ValidationError):  # pydantic refusing a value: input validation by definition
        return True
    frames = traceback.extract_tb(error.__traceback__)
    return bool(frames) and PACKAGE in Path(frames[-1].filename).resolve().parents


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())


def _run(verbose_errors: bool, **kwargs) -> None:
    try:
        kedro_run.callback(**kwargs)
    except Exception as error:  # noqa: BLE001 -- sorted into bad input (one line) and everything else (re-raised)
        if verbose_errors or not is_bad_input(error):
            raise
        FAILURE_LOG.parent.mkdir(exist_ok=True)
        FAILURE_LOG.write_text("".join(traceback.format_exception(error)))
        click.secho(f"error: {_one_line(error)}", fg="red", err=True)
        click.echo(f"(the run stopped on bad input; traceback in {FAILURE_LOG}, or rerun with --verbose-errors)",
                   err=True)
        sys.exit(1)


cli.add_command(click.Command(
    name="run", callback=_run, help=kedro_run.help, short_help=kedro_run.short_help,
    params=[*kedro_run.params, click.Option(["--verbose-errors"], is_flag=True, default=False,
                                            help="Show the full traceback of a run refused for bad input.")],
))
