"""Running the app on uvicorn: in the foreground (``serve_app``) or on a thread."""

from __future__ import annotations

import ipaddress
import logging
import signal
import socket
import sys
import threading
from collections.abc import Callable
from types import FrameType, TracebackType
from typing import Any

from redditvision.errors import ConfigError, MissingDependencyError, PredictionError

try:
    import uvicorn
except ImportError as exc:  # pragma: no cover - the [serve] extra is missing
    raise MissingDependencyError(
        "serving needs the [serve] extra: pip install 'redditvision[serve]'"
    ) from exc

__all__ = ["BackgroundServer", "bind", "is_loopback", "serve_app"]

logger = logging.getLogger(__name__)

GRACEFUL_SHUTDOWN_SECONDS = 30.0
"""Seconds in-flight requests get to finish after SIGTERM before connections are closed."""


def is_loopback(host: str) -> bool:
    """Tell whether ``host`` is a loopback address or ``localhost``.

    Args:
        host: An IP address or host name.

    Returns:
        True for ``localhost``, ``127.0.0.0/8`` and ``::1``.
    """
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, api_key: str | None) -> None:
    """Refuse to bind a non-loopback address without an API key.

    Args:
        host: The address to bind.
        api_key: The key requests must carry, or None.

    Raises:
        ConfigError: ``host`` is not loopback and there is no key.
    """
    if api_key is None and not is_loopback(host):
        raise ConfigError(
            f"binding {host} exposes the model beyond this machine: give an API key "
            "(--api-key-env VAR, or api_key=...) or bind 127.0.0.1"
        )


def bind(host: str, port: int) -> socket.socket:
    """Open the listening socket (so the caller knows the port even for port 0).

    Args:
        host: Address to bind (IPv4 or IPv6).
        port: Port, 0 for a free one.

    Returns:
        The listening socket.

    Raises:
        ConfigError: The address cannot be bound (in use, not this machine's).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # The protocol must be IPPROTO_TCP, not 0 as socket.create_server leaves it: asyncio
    # sets TCP_NODELAY only on accepted sockets whose proto says TCP (base_events.
    # _set_nodelay). Without it, an answer's body waited behind its headers for the
    # client's delayed ACK: about 45 ms on every request of a kept-alive connection.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        if hasattr(socket, "SO_REUSEADDR") and sys.platform != "win32":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host.strip("[]"), port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    return sock


def _config(app: Any, **options: Any) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        lifespan="on",
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=options.pop(
            "timeout_graceful_shutdown", GRACEFUL_SHUTDOWN_SECONDS
        ),
        **options,
    )


def _url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class _Server(uvicorn.Server):
    """uvicorn's server, telling ``on_ready`` its URL once it listens."""

    def __init__(
        self, config: uvicorn.Config, *, on_ready: Callable[[str], None] | None, url: str
    ) -> None:
        super().__init__(config)
        self._on_ready = on_ready
        self._url = url

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started and self._on_ready is not None:
            self._on_ready(self._url)


def _taken(signum: int, frame: FrameType | None) -> None:
    logger.info("received signal %d: shutting down", signum)


def serve_app(
    app: Any,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    api_key: str | None = None,
    on_ready: Callable[[str], None] | None = None,
    timeout_graceful_shutdown: float = GRACEFUL_SHUTDOWN_SECONDS,
) -> None:
    """Serve an ASGI app on uvicorn in this thread until SIGTERM or SIGINT.

    On SIGTERM the listening socket closes (new connections are refused), requests in
    flight finish (up to ``timeout_graceful_shutdown`` seconds), then the app's lifespan
    ends and this returns normally (in the main thread, the signal is taken here rather
    than re-raised, so the caller can clean up and exit 0).

    Args:
        app: The app from :func:`create_app`.
        host: Address to bind (default ``127.0.0.1``).
        port: Port (default 8080; 0 for a free one).
        api_key: The app's key, only checked here: a non-loopback ``host`` needs one.
        on_ready: Called with the base URL (``http://127.0.0.1:8080``) once listening.
        timeout_graceful_shutdown: Seconds in-flight requests get after SIGTERM.

    Raises:
        ConfigError: A non-loopback ``host`` without ``api_key``, or the port is taken.
    """
    check_bind(host, api_key)
    sock = bind(host, port)
    server = _Server(
        _config(app, timeout_graceful_shutdown=timeout_graceful_shutdown),
        on_ready=on_ready,
        url=_url(sock),
    )
    # uvicorn re-raises the signal it caught once it has shut down; a no-op handler of ours
    # takes it, so this returns and the caller closes the classifier (undeploying what it
    # deployed) before the process exits.
    previous: dict[signal.Signals, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for number in (signal.SIGINT, signal.SIGTERM):
            previous[number] = signal.signal(number, _taken)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
        for number, handler in previous.items():
            signal.signal(number, handler)


class BackgroundServer:
    """Serve an ASGI app on a uvicorn thread: for notebooks, tests and benchmarks.

    Args:
        app: The app from :func:`create_app`.
        host: Address to bind (default ``127.0.0.1``).
        port: Port (default 0: a free one; read :attr:`url`).
        api_key: As for :func:`serve_app`: a non-loopback ``host`` needs one.

    Raises:
        ConfigError: A non-loopback ``host`` without ``api_key``, or the port is taken.

    Example:
        >>> with BackgroundServer(create_app(classifier)) as server:  # doctest: +SKIP
        ...     print(server.url)
    """

    def __init__(
        self, app: Any, *, host: str = "127.0.0.1", port: int = 0, api_key: str | None = None
    ) -> None:
        check_bind(host, api_key)
        self.app = app
        self._socket = bind(host, port)
        self.url = _url(self._socket)
        """The base URL, e.g. ``http://127.0.0.1:54321``."""
        self._server = uvicorn.Server(_config(app, timeout_graceful_shutdown=5.0))
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"BackgroundServer({self.url!r})"

    def start(self) -> BackgroundServer:
        """Start serving and wait until the server listens (not until the model is loaded).

        Returns:
            self.

        Raises:
            PredictionError: The server failed to start.
        """
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._server.run,
                kwargs={"sockets": [self._socket]},
                name="redditvision-serve",
                daemon=True,
            )
            self._thread.start()
            while not self._server.started:
                if not self._thread.is_alive():
                    raise PredictionError(f"the server on {self.url} failed to start")
                self._thread.join(0.01)
        return self

    def stop(self) -> None:
        """Stop gracefully (in-flight requests finish) and close the socket; safe twice."""
        if self._thread is not None:
            self._server.should_exit = True
            self._thread.join()
            self._thread = None
        self._socket.close()

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
