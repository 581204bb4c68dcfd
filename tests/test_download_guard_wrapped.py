"""The network guard looks inside every IPv6 form that wraps an IPv4 address (issue 12.11).

A 6to4 relay, a Teredo relay or a NAT64 translator delivers the packets to the IPv4 address
inside the IPv6 one, so ``2002:7f00:1::`` is 127.0.0.1 in disguise.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from redditvision.download import ImageDownloader
from redditvision.download._netguard import AddressPolicy
from redditvision.errors import UnsafeURLError
from redditvision.models import ImagePost, MediaItem, RecordStatus

_PUBLIC_TEREDO_SERVER = 0x4136E378  # 65.54.227.120, a real Teredo server


def _six_to_four(ipv4: str) -> str:
    inner = int(ipaddress.IPv4Address(ipv4))
    return str(ipaddress.IPv6Address((0x2002 << 112) | (inner << 80)))


def _teredo(client: str, server: int = _PUBLIC_TEREDO_SERVER) -> str:
    obfuscated = int(ipaddress.IPv4Address(client)) ^ 0xFFFFFFFF  # RFC 4380 5.1
    value = (0x20010000 << 96) | (server << 64) | (0x8000 << 48) | (0x63BF << 32) | obfuscated
    return str(ipaddress.IPv6Address(value))


def _nat64(ipv4: str) -> str:
    return str(
        ipaddress.IPv6Address(
            int(ipaddress.IPv6Address("64:ff9b::")) | int(ipaddress.IPv4Address(ipv4))
        )
    )


def _compatible(ipv4: str) -> str:
    return str(ipaddress.IPv6Address(int(ipaddress.IPv4Address(ipv4))))


_FORMS = {"6to4": _six_to_four, "Teredo": _teredo, "NAT64": _nat64, "IPv4-compatible": _compatible}
_INNER = ["127.0.0.1", "10.1.2.3", "169.254.169.254", "192.168.0.1", "0.1.2.3"]


@pytest.mark.parametrize("inner", _INNER)
@pytest.mark.parametrize("form", sorted(_FORMS))
def test_every_ipv6_form_wrapping_a_non_public_ipv4_is_refused(form: str, inner: str) -> None:
    address = _FORMS[form](inner)
    assert ipaddress.ip_address(address).version == 6
    with pytest.raises(UnsafeURLError, match=form):
        AddressPolicy().check_address("wrapped.test", address)


def test_six_to_four_wrapping_loopback_names_the_inner_address() -> None:
    with pytest.raises(UnsafeURLError) as caught:
        AddressPolicy().check_address("x.test", "2002:7f00:1::")
    assert "6to4 address wrapping 127.0.0.1, a loopback address" in caught.value.message


def test_a_teredo_address_whose_server_is_private_is_refused() -> None:
    address = _teredo("8.8.8.8", server=int(ipaddress.IPv4Address("10.0.0.1")))
    with pytest.raises(UnsafeURLError, match="Teredo"):
        AddressPolicy().check_address("x.test", address)


@pytest.mark.parametrize("address", [_six_to_four("8.8.8.8"), _nat64("93.184.215.14")])
def test_wrapped_public_ipv4_addresses_still_pass(address: str) -> None:
    AddressPolicy().check_address("example.test", address)


def test_a_link_to_a_six_to_four_loopback_literal_is_recorded_failed(tmp_path: Path) -> None:
    post = ImagePost(
        id="p1",
        subreddit="s",
        title="t",
        permalink="/r/s/",
        media=(MediaItem(url="http://[2002:7f00:1::]:8080/a.png"),),
    )
    with ImageDownloader(tmp_path / "out") as downloader:
        (record,) = list(downloader.fetch([post], retry=None))
    assert record.status is RecordStatus.FAILED
    assert "6to4 address wrapping 127.0.0.1" in (record.reason or "")
