"""The ``redditvision`` command line.

Commands: collect, download, label, audit, label-studio
(export, import), upload, train, evaluate, predict, deploy,
undeploy, compare, classify, serve, and run (the whole job).

Each command lives in its own private module and is registered on :func:`main` below.
"""

from __future__ import annotations

import click

from redditvision import __version__
from redditvision.cli._common import setup_logging

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="redditvision")
@click.option("-v", "--verbose", count=True, help="More log output on stderr (-v info, -vv debug).")
def main(verbose: int) -> None:
    """Build custom image classifiers from Reddit.

    The main job is `redditvision run CONFIG.toml`; each step also has its own command.
    """
    setup_logging(verbose)


def _register() -> None:
    # Each step's commands, in flow order. Imported here so `main` holds them all.
    from redditvision.cli import _commands_registry

    for command in _commands_registry.commands():
        main.add_command(command)


_register()
