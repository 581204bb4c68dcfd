"""Helpers shared by the command modules: console, errors, JSON output, progress bars, options."""

from __future__ import annotations

import functools
import json
import logging
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import click
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from redditvision.errors import RedditVisionError

if TYPE_CHECKING:
    from redditvision.models import TrainedModel

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_FAILED",
    "apply_options",
    "backend_option",
    "echo_json",
    "err_console",
    "handle_errors",
    "json_option",
    "parse_split",
    "progress",
    "setup_logging",
    "trained_model_json",
]

F = TypeVar("F", bound=Callable[..., Any])

EXIT_BAD_INPUT = 2
"""Exit status for bad input or configuration (click uses 2 for usage errors too)."""
EXIT_FAILED = 1
"""Exit status for a failure while working."""

_REDIRECTED_WIDTH = 200
"""Columns for tables when standard error is a file or a pipe (rich's own default is 80)."""


def _stderr_console() -> Console:
    """A rich console on standard error that never hard-wraps lines it writes to a file.

    On a terminal it wraps at the terminal's width. Redirected (a file, a pipe, a CI log) it
    soft-wraps (one message, one line, whatever its length) and lays tables out in
    ``_REDIRECTED_WIDTH`` columns instead of rich's 80.
    """
    redirected = sys.stderr is None or not sys.stderr.isatty()
    return Console(
        stderr=True, soft_wrap=redirected, width=_REDIRECTED_WIDTH if redirected else None
    )


err_console = _stderr_console()
"""Rich console on standard error: summaries, tables and progress go here, data to stdout."""


def setup_logging(verbose: int) -> None:
    """Configure logging for the command line (library code never does this).

    Args:
        verbose: 0 for warnings, 1 for info, 2 or more for debug.
    """
    level = logging.WARNING if verbose <= 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(
        level=level,
        format="%(message)s",
        handlers=[RichHandler(console=err_console, show_path=False, rich_tracebacks=False)],
        force=True,
    )


def echo_json(obj: Any) -> None:
    """Print one JSON object on one line to standard output.

    Args:
        obj: JSON-serializable value.
    """
    click.echo(json.dumps(obj, ensure_ascii=False, sort_keys=False, default=str))


def handle_errors(fn: F) -> F:
    """Turn redditvision errors into a one-line message and a non-zero exit status.

    Bad input (``ValueError`` subclasses of :class:`RedditVisionError`) exits with 2, other
    failures with 1. Tracebacks are shown only with ``-vv``.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except RedditVisionError as exc:
            logging.getLogger("redditvision").debug("error", exc_info=True)
            click.echo(f"Error: {exc}", err=True)
            sys.exit(EXIT_BAD_INPUT if isinstance(exc, ValueError) else EXIT_FAILED)

    return wrapper  # type: ignore[return-value]


@contextmanager
def progress(*, disable: bool = False) -> Iterator[Progress]:
    """A rich progress display on standard error (hidden when not a terminal).

    Args:
        disable: Force it off (e.g. with ``--json-summary``).

    Yields:
        The ``rich.progress.Progress``; add tasks with ``add_task``.
    """
    display = Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        disable=disable or not err_console.is_terminal,
        transient=False,
    )
    with display:
        yield display


def apply_options(fn: F, options: Sequence[Callable[[Any], Any]]) -> F:
    """Decorate a command with several click options, listed top to bottom as in ``--help``.

    Args:
        fn: The command function (or an already decorated one).
        options: ``click.option(...)`` decorators in the order ``--help`` shows them.

    Returns:
        ``fn`` with every option applied (the last one first, as stacked decorators would).
    """
    for option in reversed(options):
        fn = option(fn)
    return fn


def parse_split(text: str) -> tuple[float, float, float]:
    """Parse ``--split``: three comma-separated fractions (training, validation, test).

    Args:
        text: For example ``"0.8,0.1,0.1"``.

    Returns:
        The three fractions as given (their sum is checked by the split itself).

    Raises:
        click.BadParameter: Not three numbers (click reports it as a usage error, exit 2).
    """
    try:
        parts = [float(part) for part in text.split(",")]
    except ValueError:
        parts = []
    if len(parts) != 3:
        raise click.BadParameter("give three fractions, e.g. 0.8,0.1,0.1", param_hint="--split")
    return parts[0], parts[1], parts[2]


def backend_option(
    *, deploys: bool | None = None, default: str | None = None, help_text: str
) -> Callable[[F], F]:
    """The ``--backend`` option of the model and cloud commands, over the backend registry.

    Args:
        deploys: Offer only deployers (True: ``deploy``, ``undeploy``), or every backend
            (None).
        default: The backend used without ``--backend`` (default: the first registered
            one of those offered, ``local`` or ``vertex``).
        help_text: The option's help line.

    Returns:
        A click option decorator; one can decorate several commands.
    """
    from redditvision.backends import backend_names

    choices = backend_names(deploys=True if deploys else None)
    return click.option(
        "--backend",
        type=click.Choice(choices),
        default=default or choices[0],
        show_default=True,
        help=help_text,
    )


def json_option(help_text: str) -> Callable[[F], F]:
    """The ``--json`` flag of every command that can print JSON (one spelling everywhere).

    ``--json-summary``, the old spelling of ``download``/``label``/``upload``, stays as a
    hidden alias.

    Args:
        help_text: The option's help line.

    Returns:
        A click option decorator setting the parameter ``as_json``.
    """

    def either(ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
        return bool(value or ctx.params.get("as_json", False))

    def alias(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
        if value:
            ctx.params["as_json"] = True

    def decorate(fn: F) -> F:
        fn = click.option(
            "--json-summary", is_flag=True, hidden=True, expose_value=False, callback=alias
        )(fn)
        return click.option("--json", "as_json", is_flag=True, callback=either, help=help_text)(fn)

    return decorate


def trained_model_json(model: TrainedModel) -> dict[str, Any]:
    """The first keys of ``train --json`` on every backend: model, backend and labels.

    Args:
        model: The trained model.

    Returns:
        ``{"model": resource, "backend": name, "labels": [original label names]}``; the
        caller adds its backend's own keys after these.
    """
    return {
        "model": model.resource,
        "backend": model.backend,
        "labels": [model.label_map.get(label, label) for label in model.labels],
    }
