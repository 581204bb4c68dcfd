"""The context-manager half every client shares: ``with Client(...) as c:`` closes it."""

from __future__ import annotations

from types import TracebackType
from typing import Self

__all__ = ["Closeable"]


class Closeable:
    """Mixin for clients: ``__enter__`` returns the client, ``__exit__`` calls ``close()``.

    Subclasses implement :meth:`close`, which must be safe to call twice (the exit of a
    ``with`` block after an explicit ``close()`` calls it again).
    """

    def close(self) -> None:
        """Release what the client holds; safe to call twice."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
