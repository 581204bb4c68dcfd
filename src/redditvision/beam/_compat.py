"""The guard that names the install command when Apache Beam is missing."""

from __future__ import annotations

from types import ModuleType

from redditvision.errors import MissingDependencyError

INSTALL_HINT = "pip install 'redditvision[beam]'"


def require_beam() -> ModuleType:
    """Return the ``apache_beam`` module, or explain how to install it.

    Returns:
        The imported ``apache_beam`` package.

    Raises:
        MissingDependencyError: Apache Beam is not installed; the message names
            ``pip install 'redditvision[beam]'``.
    """
    try:
        import apache_beam
    except ImportError as exc:
        raise MissingDependencyError(
            f"redditvision.beam needs Apache Beam, which is not installed: {INSTALL_HINT}"
        ) from exc
    return apache_beam
