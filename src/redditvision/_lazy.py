"""The one way the package defers imports: a module ``__getattr__`` over a name table.

``import redditvision`` must stay cheap and load no cloud client (the Vertex AI and AutoML
GAPIC packages take about a second to import). So the packages that re-export public names
(:mod:`redditvision`, :mod:`redditvision.backends`, :mod:`redditvision.backends.vertex`,
:mod:`redditvision.backends.automl`) do not import them: they map each name to the private
module that defines it, and :func:`lazy_exports` builds the module ``__getattr__``
(PEP 562) that imports it on first access and caches it in the package. Type checkers see
the names through an ``if TYPE_CHECKING:`` block of plain imports beside the table.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, table: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Build the ``__getattr__`` and ``__dir__`` of a package that re-exports lazily.

    Args:
        package: The package's ``__name__``.
        table: Public name -> the module that defines it.

    Returns:
        ``(__getattr__, __dir__)`` to assign at the package's top level.
    """

    def __getattr__(name: str) -> Any:  # noqa: N807 - the PEP 562 hook
        module = table.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:  # noqa: N807 - the PEP 562 hook
        return sorted(set(vars(sys.modules[package])) | set(table))

    return __getattr__, __dir__
