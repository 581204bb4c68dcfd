"""A real HTTP server on loopback for tests: serves bytes at paths, with scripted faults.

:class:`ImageHost` is a threaded :mod:`http.server` (HTTP/1.1, keep-alive) bound to a
loopback address. Tests register what each path answers and read back what was asked::

    from harness import Fault, ImageHost

    with ImageHost() as host:                      # 127.0.0.1, a free port
        url = host.serve("/a.jpg", jpeg_bytes)      # content_type="image/jpeg" by default
        host.serve("/page.jpg", b"<html>", content_type="image/jpeg")
        host.serve("/big", data, chunked=True)      # no Content-Length
        host.redirect("/old.jpg", "/removed.png")   # 302 by default; absolute URLs too
        host.script("/a.jpg", Fault.status(503), Fault.reset())   # then the normal answer
        host.url_for("/a.jpg")                      # "http://127.0.0.1:PORT/a.jpg"
        host.hits("/a.jpg")                         # requests seen for that path
        host.max_in_flight                          # most requests answered at once
        host.hold("/b.jpg")                         # requests for it wait, unanswered ...
        host.wait_held(1)                           # ... until one is waiting there ...
        host.release()                              # ... then they are answered
        host.gather(16)                             # hold every request until 16 wait at once

Faults are consumed one per request, in order; once a path's script is used up the path
answers normally. :meth:`Fault.status` (any status, optional ``Retry-After`` and body),
:meth:`Fault.reset` (TCP reset, no response), :meth:`Fault.truncate` (announces the full
``Content-Length`` and closes after ``n`` bytes).

Real URLs: :meth:`ImageHost.serve_url` serves the bytes for a real address such as
``https://i.redd.it/abc.jpg`` under the path ``/i.redd.it/abc.jpg``; :meth:`ImageHost.rewrite`
turns the real URL into its loopback URL (for posts built in a test), and
:meth:`ImageHost.session` returns a ``requests.Session`` whose adapters route every origin
registered with :meth:`~ImageHost.serve_url` to this server, so code that fetches the real
URLs (the whole job, Beam) reaches the photos without a network. Pass it as
``ImageDownloader(..., session=host.session(), allow_private_networks=True)``. For
processes that need a picklable session factory, mount :class:`RouteAdapter` over any
object with a ``rewrite(url)`` method.

Holding makes races deterministic: a test kills a client while exactly the requests it
chose are unanswered (:meth:`ImageHost.hold`, :meth:`~ImageHost.wait_held`), or proves
concurrency from below (:meth:`ImageHost.gather`: the requests are answered only once
``count`` of them wait at the same time, so :attr:`~ImageHost.gathered` is true only if the
client really kept that many in flight; after ``timeout`` seconds they are answered anyway,
so a client that keeps fewer in flight fails the test instead of hanging it).

``latency`` (seconds) is slept before every answer, to model a distant host; other
loopback addresses (``host="127.0.0.2"`` ... ``"127.0.0.8"`` on Linux) model other hosts.
The pytest fixtures ``image_host`` and ``image_host_factory`` live in :mod:`harness.plugin`
(registered in ``tests/conftest.py``).
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections import defaultdict, deque
from collections.abc import Iterable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urljoin, urlsplit

import attrs
import requests
from requests.adapters import HTTPAdapter

__all__ = ["Fault", "ImageHost", "Route", "RouteAdapter"]


@attrs.frozen(kw_only=True)
class Fault:
    """One scripted misbehaviour, answered instead of the path's normal response.

    Attributes:
        kind: ``"status"``, ``"reset"`` or ``"truncate"``.
        code: HTTP status for ``"status"``.
        headers: Extra response headers for ``"status"``.
        body: Body for ``"status"``.
        keep: Bytes sent before closing, for ``"truncate"``.
    """

    kind: str
    code: int = 200
    headers: Mapping[str, str] = attrs.field(factory=dict)
    body: bytes = b""
    keep: int = 0

    @classmethod
    def status(
        cls,
        code: int,
        *,
        retry_after: str | None = None,
        body: bytes = b"",
        headers: Mapping[str, str] | None = None,
    ) -> Fault:
        """Answer with ``code`` (e.g. 429, 503), an optional ``Retry-After`` and body."""
        extra = dict(headers or {})
        if retry_after is not None:
            extra["Retry-After"] = retry_after
        return cls(kind="status", code=code, headers=extra, body=body)

    @classmethod
    def reset(cls) -> Fault:
        """Close the connection with a TCP reset before answering."""
        return cls(kind="reset")

    @classmethod
    def truncate(cls, keep: int) -> Fault:
        """Send the normal headers (full ``Content-Length``), ``keep`` bytes, then close."""
        return cls(kind="truncate", keep=keep)


@attrs.frozen(kw_only=True)
class Route:
    """What one path answers when no fault is scripted.

    Attributes:
        body: The bytes.
        status: HTTP status.
        content_type: ``Content-Type`` header, or None for none.
        headers: Extra headers (``Location`` for redirects).
        chunked: Send with ``Transfer-Encoding: chunked`` and no ``Content-Length``.
    """

    body: bytes = b""
    status: int = 200
    content_type: str | None = "image/jpeg"
    headers: Mapping[str, str] = attrs.field(factory=dict)
    chunked: bool = False


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
    host: ImageHost


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body are separate writes; with Nagle's algorithm on, the body of a
    # keep-alive answer would wait for the client's delayed ACK (40 ms on Linux).
    disable_nagle_algorithm = True
    server: _Server

    def do_GET(self) -> None:
        self.server.host._answer(self, head=False)

    def do_HEAD(self) -> None:
        self.server.host._answer(self, head=True)

    def log_message(self, format: str, *args: Any) -> None:
        return


class ImageHost:
    """A threaded HTTP/1.1 server on a loopback address serving registered paths.

    Args:
        host: Loopback address to bind (``"127.0.0.1"``; ``"::1"`` for IPv6).
        port: Port, 0 for a free one.
        latency: Seconds slept before each answer (default 0).
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, latency: float = 0.0) -> None:
        self.latency = latency
        self._lock = threading.Lock()
        self._routes: dict[str, Route] = {}
        self._faults: dict[str, deque[Fault]] = defaultdict(deque)
        self._hits: dict[str, int] = defaultdict(int)
        self._origins: set[str] = set()
        self._in_flight = 0
        self.max_in_flight = 0
        """Most requests this server was answering at the same time."""
        self._changed = threading.Condition(self._lock)
        self._held_paths: set[str] = set()
        self._held = 0
        self._gather: tuple[int, float] | None = None
        self.gathered = False
        """True once :meth:`gather`'s count of requests waited at the same time."""
        server_cls = _Server
        if ":" in host:

            class _Server6(_Server):
                address_family = socket.AF_INET6

            server_cls = _Server6
        self._server = server_cls((host, port), _Handler)
        self._server.host = self
        self._thread: threading.Thread | None = None
        bound = self._server.server_address
        self.host = host
        self.port = int(bound[1])

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> ImageHost:
        """Start serving in a daemon thread; returns self."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket (safe twice); held requests are released."""
        self.release()
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> ImageHost:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- registering -------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """``http://HOST:PORT`` (IPv6 hosts in brackets)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def url_for(self, path: str) -> str:
        """The absolute URL of ``path`` on this server."""
        return self.base_url + (path if path.startswith("/") else "/" + path)

    def serve(
        self,
        path: str,
        body: bytes,
        *,
        content_type: str | None = "image/jpeg",
        status: int = 200,
        headers: Mapping[str, str] | None = None,
        chunked: bool = False,
    ) -> str:
        """Answer ``path`` with ``body``; returns the URL."""
        route = Route(
            body=body,
            status=status,
            content_type=content_type,
            headers=dict(headers or {}),
            chunked=chunked,
        )
        with self._lock:
            self._routes[path] = route
        return self.url_for(path)

    def serve_file(self, path: str, file: str | Path, **kwargs: Any) -> str:
        """Answer ``path`` with the bytes of ``file``; returns the URL."""
        return self.serve(path, Path(file).read_bytes(), **kwargs)

    def serve_many(self, files: Iterable[tuple[str, bytes]], **kwargs: Any) -> list[str]:
        """Register several ``(path, body)`` pairs; returns their URLs in order."""
        return [self.serve(path, body, **kwargs) for path, body in files]

    def redirect(self, path: str, location: str, *, status: int = 302) -> str:
        """Answer ``path`` with a redirect to ``location`` (a path or an absolute URL)."""
        with self._lock:
            self._routes[path] = Route(
                status=status, content_type=None, headers={"Location": location}
            )
        return self.url_for(path)

    def script(self, path: str, *faults: Fault) -> None:
        """Answer the next requests for ``path`` with ``faults``, one each, in order."""
        with self._lock:
            self._faults[path].extend(faults)

    def hits(self, path: str) -> int:
        """Number of requests received for ``path`` so far."""
        with self._lock:
            return self._hits[path]

    # -- holding ---------------------------------------------------------------------

    def hold(self, *paths: str) -> None:
        """Leave requests for ``paths`` unanswered until :meth:`release` (or :meth:`stop`)."""
        with self._lock:
            self._held_paths.update(paths)

    def release(self) -> None:
        """Answer every held request, and stop holding (both :meth:`hold` and :meth:`gather`)."""
        with self._changed:
            self._held_paths.clear()
            self._gather = None
            self._changed.notify_all()

    @property
    def held(self) -> int:
        """Requests waiting unanswered right now."""
        with self._lock:
            return self._held

    def wait_held(self, count: int, *, timeout: float = 120.0) -> None:
        """Block until at least ``count`` requests are held.

        Raises:
            TimeoutError: fewer were held after ``timeout`` seconds.
        """
        with self._changed:
            if not self._changed.wait_for(lambda: self._held >= count, timeout):
                raise TimeoutError(f"{self._held} request(s) held, not {count}, after {timeout}s")

    def gather(self, count: int, *, timeout: float = 30.0) -> None:
        """Hold every request until ``count`` wait at the same time, then answer them all.

        Once gathered (:attr:`gathered` becomes true) requests are answered at once. A
        request that has waited ``timeout`` seconds is answered anyway, with
        :attr:`gathered` left false, so a client with fewer in flight ends instead of hanging.
        """
        with self._lock:
            self._gather = (count, timeout)
            self.gathered = False

    def _wait_if_held(self, path: str) -> None:
        with self._changed:
            gather = self._gather
            if path not in self._held_paths and gather is None:
                return
            self._held += 1
            self._changed.notify_all()
            try:
                if gather is not None:
                    count, timeout = gather
                    if self._held >= count:
                        self.gathered = True
                        self._gather = None
                        self._changed.notify_all()
                    else:
                        self._changed.wait_for(lambda: self._gather is None, timeout)
                else:
                    self._changed.wait_for(lambda: path not in self._held_paths)
            finally:
                self._held -= 1
                self._changed.notify_all()

    # -- real URLs ---------------------------------------------------------------------

    @staticmethod
    def mapped_path(url: str) -> str:
        """The path under which :meth:`serve_url` serves a real URL (``/host/path?query``)."""
        parts = urlsplit(url)
        path = f"/{parts.netloc}{parts.path or '/'}"
        return f"{path}?{parts.query}" if parts.query else path

    def serve_url(self, url: str, body: bytes, **kwargs: Any) -> str:
        """Serve ``body`` for a real URL such as ``https://i.redd.it/x.jpg``.

        Returns:
            The loopback URL (``http://127.0.0.1:PORT/i.redd.it/x.jpg``).
        """
        parts = urlsplit(url)
        with self._lock:
            self._origins.add(f"{parts.scheme}://{parts.netloc}/")
        return self.serve(self.mapped_path(url), body, **kwargs)

    def rewrite(self, url: str) -> str:
        """The loopback URL that :meth:`serve_url` serves for a real URL."""
        return self.url_for(self.mapped_path(url))

    def session(self) -> requests.Session:
        """A session that routes every :meth:`serve_url` origin to this server.

        Origins registered later are routed too (the adapters are mounted at call time;
        call again after registering new origins).
        """
        session = requests.Session()
        session.trust_env = False
        with self._lock:
            origins = sorted(self._origins)
        for origin in origins:
            session.mount(origin, RouteAdapter(self))
        return session

    # -- answering ---------------------------------------------------------------------

    def _answer(self, handler: _Handler, *, head: bool) -> None:
        raw = handler.path
        path = raw if raw in self._routes else urlsplit(raw).path
        with self._lock:
            self._hits[path] += 1
            fault = self._faults[path].popleft() if self._faults.get(path) else None
            route = self._routes.get(path)
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
        try:
            self._wait_if_held(path)
            self._respond(handler, path, fault, route, head)
        except (BrokenPipeError, ConnectionResetError):
            handler.close_connection = True  # the client went away (killed) while held
        finally:
            with self._lock:
                self._in_flight -= 1

    def _respond(
        self, handler: _Handler, path: str, fault: Fault | None, route: Route | None, head: bool
    ) -> None:
        if self.latency:
            time.sleep(self.latency)
        if fault is not None and fault.kind == "reset":
            handler.close_connection = True
            conn = handler.connection
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()
            return
        if fault is not None and fault.kind == "status":
            answer = Route(
                body=fault.body, status=fault.code, content_type="text/plain", headers=fault.headers
            )
            self._send(handler, answer, head)
            return
        if route is None:
            self._send(
                handler, Route(body=b"not found", status=404, content_type="text/plain"), head
            )
            return
        if fault is not None and fault.kind == "truncate":
            handler.send_response(route.status)
            if route.content_type:
                handler.send_header("Content-Type", route.content_type)
            handler.send_header("Content-Length", str(len(route.body)))
            handler.end_headers()
            handler.wfile.write(route.body[: fault.keep])
            handler.wfile.flush()
            handler.close_connection = True
            return
        self._send(handler, route, head)

    @staticmethod
    def _send(handler: _Handler, route: Route, head: bool) -> None:
        handler.send_response(route.status)
        if route.content_type:
            handler.send_header("Content-Type", route.content_type)
        for name, value in route.headers.items():
            handler.send_header(name, value)
        if route.chunked:
            handler.send_header("Transfer-Encoding", "chunked")
            handler.end_headers()
            if not head:
                step = 64 * 1024
                for start in range(0, len(route.body), step):
                    chunk = route.body[start : start + step]
                    handler.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                handler.wfile.write(b"0\r\n\r\n")
            return
        handler.send_header("Content-Length", str(len(route.body)))
        handler.end_headers()
        if not head:
            handler.wfile.write(route.body)


class RouteAdapter(HTTPAdapter):
    """Sends requests for a real origin to the loopback server, path prefixed by the host.

    Args:
        host: Anything with ``rewrite(url) -> str`` (an :class:`ImageHost`, or a picklable
            stand-in holding only its address, for Beam workers).
    """

    def __init__(self, host: Any) -> None:
        super().__init__()
        self._host = host

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> Any:
        original = request.url
        assert original is not None
        request.url = self._host.rewrite(original)
        response = super().send(request, *args, **kwargs)
        response.url = original
        location = response.headers.get("Location")
        if location is not None:
            # A relative redirect from the real origin stays on the real origin.
            response.headers["Location"] = urljoin(original, location)
        return response


# Older names, kept for tests written against them.
_RouteAdapter = RouteAdapter
ImageHost._mapped_path = staticmethod(ImageHost.mapped_path)  # type: ignore[attr-defined]
