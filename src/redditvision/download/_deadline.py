"""Deadlines that hold while bytes trickle: a watchdog that cuts a late item's connection.

A read timeout is per read: a server sending one byte a second never trips it, in the
body or in the headers. The deadline of each item is therefore enforced twice:

* by the download loop, after every chunk of the body (and the minimum transfer rate);
* by :class:`Watchdog`, one daemon thread per downloader, for reads that block (headers,
  a chunk that never completes): at the deadline it shuts the item's socket down
  (``shutdown(SHUT_RDWR)``), which ends the blocked ``recv`` at once, and the attempt
  then reports the deadline rather than the broken connection.

The connection in use by an item is attached by the guarded connection class of
:mod:`redditvision.download._netguard`, through a thread-local (each worker thread
downloads one item at a time): its socket as soon as it is connected, so a TLS handshake
is watched too, and the connection when it sends a request (new or reused from the pool).
Name resolution is not watched: ``getaddrinfo`` cannot be interrupted, the system
resolver's own timeout bounds it.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

__all__ = ["DeadlineExceededError", "Watch", "Watchdog", "attach_connection"]

_local = threading.local()


class DeadlineExceededError(Exception):
    """Raised inside an attempt that reaches a connection after its deadline passed."""


class Watch:
    """The deadline of one attempt in one worker thread, and the connection it uses.

    Attributes:
        deadline: ``time.monotonic()`` value at which the item is late.
        expired: Set by the watchdog (or a late attach) once the deadline passed.
        received: Body bytes received so far, for the message.
    """

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.expired = False
        self.received = 0
        self.connection: Any = None

    def remaining(self) -> float:
        """Seconds left before the deadline (negative once past it)."""
        return self.deadline - time.monotonic()


def attach_connection(connection: Any) -> None:
    """Tell the current thread's watch which connection (or socket) carries its request.

    Called by the guarded urllib3 connection with its new socket as soon as it is
    connected (before any TLS handshake), and with itself before it sends a request.

    Raises:
        DeadlineExceededError: The current watch's deadline has already passed.
    """
    watch: Watch | None = getattr(_local, "watch", None)
    if watch is None:
        return
    watch.connection = connection
    if watch.expired or watch.remaining() <= 0:
        watch.expired = True
        raise DeadlineExceededError


def _cut(connection: Any) -> None:
    sock = (
        connection if isinstance(connection, socket.socket) else getattr(connection, "sock", None)
    )
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


class Watchdog:
    """Cuts the connection of every watched attempt whose deadline passes.

    The thread starts on the first :meth:`watch` and sleeps until the earliest deadline
    (or a new watch); :meth:`close` stops it. Cost: one thread per downloader, woken once
    per watch and once per deadline.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._watches: set[Watch] = set()
        self._thread: threading.Thread | None = None
        self._closed = False

    @contextlib.contextmanager
    def watch(self, deadline: float) -> Iterator[Watch]:
        """Watch the calling thread's requests until ``deadline`` (``time.monotonic()``).

        Args:
            deadline: When the attempt is late.

        Yields:
            The :class:`Watch`; its ``expired`` tells, after a failure, whether the
            deadline caused it.
        """
        watch = Watch(deadline)
        with self._cond:
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(
                    target=self._run, name="redditvision-deadlines", daemon=True
                )
                self._thread.start()
            self._watches.add(watch)
            self._cond.notify()
        _local.watch = watch
        try:
            yield watch
        finally:
            _local.watch = None
            with self._cond:
                self._watches.discard(watch)

    def _run(self) -> None:
        with self._cond:
            while not self._closed:
                now = time.monotonic()
                earliest: float | None = None
                for watch in self._watches:
                    if watch.expired:
                        continue
                    if watch.deadline <= now:
                        watch.expired = True
                        _cut(watch.connection)
                    elif earliest is None or watch.deadline < earliest:
                        earliest = watch.deadline
                self._cond.wait(None if earliest is None else max(0.0, earliest - now))

    def close(self) -> None:
        """Stop the thread (safe twice)."""
        with self._cond:
            self._closed = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
