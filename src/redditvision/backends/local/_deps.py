"""Imports of the ``[local]`` extra, with a clear error when it is not installed."""

from __future__ import annotations

import importlib
from types import ModuleType

from redditvision.errors import MissingDependencyError

__all__ = ["INSTALL_HINT", "require"]

INSTALL_HINT = "pip install 'redditvision[local]'"
"""The command that installs the local backend's dependencies."""


def require(module: str) -> ModuleType:
    """Import a module of the ``[local]`` extra.

    Args:
        module: The dotted module name, e.g. ``"torch"`` or ``"sklearn.linear_model"``.

    Returns:
        The imported module.

    Raises:
        MissingDependencyError: The module is not installed; the message names
            ``pip install 'redditvision[local]'``.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".", 1)[0]
        raise MissingDependencyError(
            f"the local backend needs {top!r}, which is not installed: run "
            f"{INSTALL_HINT} (install a CPU build of torch first, see the local backend docs)"
        ) from exc
