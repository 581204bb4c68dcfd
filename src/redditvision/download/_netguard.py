"""The network guard: which URLs and addresses the downloader may reach.

Links on Reddit are written by strangers. A downloader running on a cloud VM must not be
turned against the machine's own network (the metadata server at 169.254.169.254, services
on localhost, the VPC). The guard works at two points:

* before each request (the link and every redirect hop): only ``http`` and ``https``;
* when a connection is opened: the hostname is resolved here, every address it resolves
  to is checked, and the socket is connected to a checked address. Checking at connect
  time, not before the request, closes the DNS-rebinding gap (a name that resolves to a
  public address for the check and to 127.0.0.1 for the connection).

It is installed as a ``requests`` transport adapter whose urllib3 connection classes
resolve and check before connecting.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import attrs
import requests
from requests.adapters import HTTPAdapter
from requests.utils import select_proxy
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError

from redditvision.download._deadline import attach_connection
from redditvision.errors import UnsafeURLError

__all__ = ["AddressPolicy", "GuardedAdapter", "check_url"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

ALLOWED_SCHEMES = ("http", "https")
_AddrInfo = tuple[socket.AddressFamily, socket.SocketKind, int, str, Any]


def check_url(url: str) -> str:
    """Refuse URLs the downloader never fetches; return the hostname.

    Args:
        url: The link or a redirect target.

    Returns:
        The hostname (lower case, IPv6 without brackets).

    Raises:
        UnsafeURLError: Scheme other than ``http``/``https`` (``file:``, ``ftp:``,
            ``data:``, ...), or no hostname.
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError as exc:
        raise UnsafeURLError(f"{url!r} is not a valid URL: {exc}") from exc
    if parts.scheme.lower() not in ALLOWED_SCHEMES:
        raise UnsafeURLError(
            f"refused {url!r}: only http and https URLs are fetched, "
            f"not {parts.scheme or 'a relative path'!r}"
        )
    if not host:
        raise UnsafeURLError(f"refused {url!r}: the URL has no hostname")
    return host


_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052 well-known prefix
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")  # RFC 4291 2.5.5.1, deprecated


def _embedded_ipv4(address: ipaddress.IPv6Address) -> list[tuple[str, ipaddress.IPv4Address]]:
    """The IPv4 addresses an IPv6 address wraps, each with the name of its wrapping form.

    6to4 (``2002::/16``, RFC 3056), Teredo (``2001::/32``, RFC 4380: its server and its
    client), NAT64 (``64:ff9b::/96``, RFC 6052) and IPv4-compatible (``::a.b.c.d``,
    RFC 4291). IPv4-mapped (``::ffff:a.b.c.d``) is unwrapped by the caller.
    """
    found: list[tuple[str, ipaddress.IPv4Address]] = []
    if address.sixtofour is not None:
        found.append(("6to4", address.sixtofour))
    if address.teredo is not None:
        server, client = address.teredo
        found += [("Teredo (server)", server), ("Teredo (client)", client)]
    if address in _NAT64:
        found.append(("NAT64", ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)))
    if address in _IPV4_COMPATIBLE and int(address) > 1:  # not :: nor ::1
        found.append(("IPv4-compatible", ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)))
    return found


def _why_not_public(address: IPAddress) -> str | None:
    """Say why an address is not a public one, or None when it is public.

    An IPv6 address that wraps an IPv4 one (IPv4-mapped, 6to4, Teredo, NAT64,
    IPv4-compatible) is refused when the wrapped address is not public: a translator or
    relay on the way would deliver the packets to it (``2002:7f00:1::`` is 127.0.0.1).
    """
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        else:
            for form, inner in _embedded_ipv4(address):
                why = _why_not_public(inner)
                if why is not None:
                    return f"a {form} address wrapping {inner}, {why}"
            if address in _NAT64:
                return None  # DNS64 on an IPv6-only network: a public IPv4 behind NAT64
    if address.is_unspecified:
        return "the unspecified address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address (cloud metadata servers such as 169.254.169.254 live here)"
    if address.is_multicast:
        return "a multicast address"
    if address.is_private:
        return "a private-network address"
    if address.is_reserved:
        return "a reserved address"
    if not address.is_global:
        return "not a globally routable address"
    return None


def _network(value: str | IPNetwork) -> IPNetwork:
    return value if not isinstance(value, str) else ipaddress.ip_network(value, strict=False)


def _networks(values: Iterable[str | IPNetwork]) -> tuple[IPNetwork, ...]:
    return tuple(_network(value) for value in values)


@attrs.frozen(kw_only=True)
class AddressPolicy:
    """Which resolved addresses may be connected to.

    Attributes:
        allow_private: Allow every address (loopback, private, link-local...): the opt-in
            for tests and intranets. Default False.
        allowed_networks: Networks allowed although not public (e.g. one intranet host
            ``10.1.2.3/32``); checked before the public-address rule.
    """

    allow_private: bool = False
    allowed_networks: tuple[IPNetwork, ...] = attrs.field(default=(), converter=_networks)

    def check_address(self, host: str, address: str) -> None:
        """Refuse ``address`` (which ``host`` resolved to) unless the policy allows it.

        Args:
            host: The hostname, for the message.
            address: The IP address as text (IPv6 scope ids are ignored).

        Raises:
            UnsafeURLError: The address is loopback, private, link-local, multicast,
                reserved or unspecified, and not in ``allowed_networks``.
        """
        if self.allow_private:
            return
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if any(ip in network for network in self.allowed_networks if ip.version == network.version):
            return
        why = _why_not_public(ip)
        if why is not None:
            shown = host if host == address else f"{host} ({address})"
            raise UnsafeURLError(
                f"refused {shown}: {why}; the downloader only connects to public addresses "
                "(pass allow_private_networks=True, or --allow-private-networks, for tests "
                "and intranets)"
            )

    def resolve(self, host: str, port: int) -> list[_AddrInfo]:
        """Resolve ``host`` and check every address it resolves to.

        Args:
            host: Hostname or IP literal.
            port: TCP port.

        Returns:
            ``socket.getaddrinfo`` entries, all allowed, in resolver order.

        Raises:
            UnsafeURLError: Any resolved address is refused (a name that mixes public and
                private addresses is refused as a whole).
            socket.gaierror: The name does not resolve.
        """
        infos: list[_AddrInfo] = list(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        for info in infos:
            self.check_address(host, str(info[4][0]))
        return infos


class _GuardMixin:
    """urllib3 connection that resolves, checks and connects itself."""

    _policy: AddressPolicy
    host: str
    port: int
    timeout: Any
    socket_options: Any
    source_address: Any

    def request(self, *args: Any, **kwargs: Any) -> Any:
        """Send a request; first attach this connection to the item's deadline watch.

        Raises:
            DeadlineExceeded: The item's deadline already passed.
        """
        attach_connection(self)
        return super().request(*args, **kwargs)  # type: ignore[misc] # the mixin is always on an HTTPConnection

    def _new_conn(self) -> socket.socket:
        try:
            infos = self._policy.resolve(self.host, self.port)
        except socket.gaierror as exc:
            raise NameResolutionError(self.host, self, exc) from exc  # type: ignore[arg-type] # the mixin is always on an HTTPConnection
        last: OSError | None = None
        for family, socktype, proto, _name, sockaddr in infos:
            sock = socket.socket(family, socktype, proto)
            try:
                for option in self.socket_options or ():
                    sock.setsockopt(*option)
                if isinstance(self.timeout, int | float):
                    sock.settimeout(self.timeout)
                if self.source_address:
                    sock.bind(self.source_address)
                sock.connect(sockaddr)
                # Watched from here: a TLS handshake that trickles is cut at the deadline
                # too (the connection's own socket is set only after the handshake).
                attach_connection(sock)
                return sock
            except TimeoutError as exc:
                sock.close()
                raise ConnectTimeoutError(
                    self, f"Connection to {self.host} timed out (connect timeout={self.timeout})"
                ) from exc
            except OSError as exc:
                sock.close()
                last = exc
        raise NewConnectionError(
            self,  # type: ignore[arg-type] # the mixin is always on an HTTPConnection
            f"Failed to establish a new connection: {last}",
        )


def _pool_classes(policy: AddressPolicy) -> dict[str, type[HTTPConnectionPool]]:
    class GuardedHTTPConnection(_GuardMixin, HTTPConnection):
        _policy = policy

    class GuardedHTTPSConnection(_GuardMixin, HTTPSConnection):
        _policy = policy

    class GuardedHTTPConnectionPool(HTTPConnectionPool):
        ConnectionCls = GuardedHTTPConnection

    class GuardedHTTPSConnectionPool(HTTPSConnectionPool):
        ConnectionCls = GuardedHTTPSConnection

    return {"http": GuardedHTTPConnectionPool, "https": GuardedHTTPSConnectionPool}


class GuardedAdapter(HTTPAdapter):
    """A ``requests`` adapter whose connections only reach addresses the policy allows.

    Args:
        policy: The address policy.
        pool_connections: Host pools kept (requests' ``pool_connections``).
        pool_maxsize: Connections kept per host (requests' ``pool_maxsize``).
    """

    def __init__(self, policy: AddressPolicy, *, pool_connections: int, pool_maxsize: int) -> None:
        self._policy = policy
        super().__init__(
            pool_connections=pool_connections, pool_maxsize=pool_maxsize, max_retries=0
        )

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        """Build the pool manager with the guarded connection classes."""
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _pool_classes(self._policy)

    def send(
        self, request: requests.PreparedRequest, *args: Any, **kwargs: Any
    ) -> requests.Response:
        """Send a request; through a proxy, the target's name is checked here first.

        Raises:
            UnsafeURLError: The target resolves to a refused address.
        """
        proxies = kwargs.get("proxies") or {}
        url = request.url or ""
        if proxies and select_proxy(url, proxies) and not self._policy.allow_private:
            # The proxy opens the connection, so check the name the best way we can.
            host = check_url(url)
            parts = urlsplit(url)
            port = parts.port or (443 if parts.scheme == "https" else 80)
            with contextlib.suppress(socket.gaierror):  # the proxy may resolve names we cannot
                self._policy.resolve(host, port)
        return super().send(request, *args, **kwargs)


def make_policy(
    allow_private_networks: bool, allowed_networks: Iterable[str | IPNetwork]
) -> AddressPolicy:
    """Build the :class:`AddressPolicy` of a downloader's arguments."""
    return AddressPolicy(
        allow_private=allow_private_networks, allowed_networks=tuple(allowed_networks)
    )
