"""The list of command modules, in flow order; each exposes ``COMMANDS``."""

from __future__ import annotations

import importlib

import click

__all__ = ["MODULES", "commands"]

MODULES: tuple[str, ...] = (
    # one line per step's command module, e.g. "redditvision.cli._collect",
    "redditvision.cli._collect",
    "redditvision.cli._download",
    "redditvision.cli._dataset",
    "redditvision.cli._models",
    "redditvision.cli._cloud",
    "redditvision.cli._compare",
    "redditvision.cli._classify",
    "redditvision.cli._serve",
    "redditvision.cli._run",
)


def commands() -> list[click.Command]:
    """Import every command module and return their commands, in order.

    Returns:
        The click commands to register on the ``redditvision`` group.
    """
    found: list[click.Command] = []
    for name in MODULES:
        module = importlib.import_module(name)
        found.extend(module.COMMANDS)
    return found
