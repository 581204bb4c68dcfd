"""Pytest fixtures for the loopback image server (registered in ``tests/conftest.py``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from harness import ImageHost


@pytest.fixture
def image_host() -> Iterator[ImageHost]:
    """A started :class:`~harness.ImageHost` on 127.0.0.1, a free port, no latency."""
    with ImageHost() as host:
        yield host


@pytest.fixture
def image_host_factory() -> Iterator[Callable[..., ImageHost]]:
    """Start more hosts: ``image_host_factory("127.0.0.2", latency=0.05)``; all stopped after."""
    started: list[ImageHost] = []

    def make(host: str = "127.0.0.1", *, latency: float = 0.0) -> ImageHost:
        server = ImageHost(host, latency=latency).start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()
