"""The command modules, in flow order; each exposes ``COMMANDS``.

Plain imports: there is no plugin story for commands (backends have theirs, the backend
registry), so the list is code, checked by the type checker, not names given to importlib.
"""

from __future__ import annotations

import click

from redditvision.cli import (
    _audit,
    _classify,
    _cloud,
    _collect,
    _compare,
    _dataset,
    _download,
    _label_studio,
    _models,
    _run,
    _serve,
)

__all__ = ["MODULES", "commands"]

MODULES = (
    _collect,
    _download,
    _dataset,
    _audit,
    _label_studio,
    _models,
    _cloud,
    _compare,
    _classify,
    _serve,
    _run,
)
"""The command modules, one per step, in flow order."""


def commands() -> list[click.Command]:
    """Return the commands of every command module, in order.

    Returns:
        The click commands to register on the ``redditvision`` group.
    """
    found: list[click.Command] = []
    for module in MODULES:
        found.extend(module.COMMANDS)
    return found
