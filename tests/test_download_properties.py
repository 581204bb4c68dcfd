"""Property-based tests of the download step's parsers of outside input.

Image bytes (random, and real photos mutated: flipped, inserted, deleted, cut), URLs and
addresses from strangers' posts: each gives a result or the library's own error, never
another exception. Sizes are bounded in the strategies (issue 12, property tests).
"""

from __future__ import annotations

import io
import ipaddress
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from redditvision.download import DownloadLimits
from redditvision.download._netguard import AddressPolicy, check_url
from redditvision.download._verify import verify_image
from redditvision.errors import DownloadError, UnsafeURLError

_SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
_LIMITS = DownloadLimits(max_pixels=4_000_000)


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="redditvision-download-properties-") as folder:
        yield Path(folder)


@pytest.fixture(scope="module")
def real_images(bmw_photos: Path) -> list[bytes]:
    photos = [path.read_bytes() for path in sorted(bmw_photos.glob("*/*.jpg"))[:3]]
    small = Image.open(io.BytesIO(photos[0])).convert("RGB").resize((64, 48))
    encoded = []
    for fmt in ("PNG", "GIF", "WEBP", "BMP"):
        out = io.BytesIO()
        small.save(out, fmt)
        encoded.append(out.getvalue())
    return photos + encoded


def _verify(path: Path, content: bytes) -> None:
    path.write_bytes(content)
    try:
        image = verify_image(path, _LIMITS)
    except DownloadError:
        return
    assert image.width > 0
    assert image.height > 0
    assert len(image.phash) == 16


@_SETTINGS
@given(st.binary(max_size=2048))
def test_random_bytes_verify_or_fail_with_a_download_error(scratch: Path, content: bytes) -> None:
    _verify(scratch / "random.bin", content)


@_SETTINGS
@given(st.data())
def test_mutated_real_images_verify_or_fail_with_a_download_error(
    scratch: Path, real_images: list[bytes], data: st.DataObject
) -> None:
    content = data.draw(st.sampled_from(real_images))
    for _ in range(data.draw(st.integers(1, 5))):
        where = data.draw(st.integers(0, len(content) - 1))
        action = data.draw(st.sampled_from(["flip", "insert", "delete", "cut"]))
        if action == "flip":
            value = content[where] ^ data.draw(st.integers(1, 255))
            content = content[:where] + bytes([value]) + content[where + 1 :]
        elif action == "insert":
            content = (
                content[:where] + data.draw(st.binary(min_size=1, max_size=16)) + content[where:]
            )
        elif action == "delete":
            content = content[:where] + content[where + data.draw(st.integers(1, 256)) :]
        else:
            content = content[: max(1, where)]
        if not content:
            break
    _verify(scratch / "mutated.img", content)


_url = st.one_of(
    st.text(max_size=60),
    st.builds(
        lambda scheme, host, rest: f"{scheme}://{host}{rest}",
        st.sampled_from(["http", "https", "HTTP", "file", "ftp", "data", "javascript", ""]),
        st.one_of(
            st.text(max_size=20),
            st.ip_addresses().map(lambda ip: f"[{ip}]" if ip.version == 6 else str(ip)),
        ),
        st.text(max_size=20),
    ),
)


@_SETTINGS
@given(_url)
def test_any_url_is_accepted_with_a_hostname_or_refused_as_unsafe(url: str) -> None:
    try:
        host = check_url(url)
    except UnsafeURLError:
        return
    assert host


@_SETTINGS
@given(st.ip_addresses())
def test_every_address_is_allowed_only_when_it_and_any_ipv4_inside_are_global(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> None:
    try:
        AddressPolicy().check_address("h.test", str(address))
    except UnsafeURLError:
        return
    inner = []
    if isinstance(address, ipaddress.IPv6Address):
        inner = [address.ipv4_mapped, address.sixtofour, *(address.teredo or ())]
    assert all(ip is None or ip.is_global for ip in inner)
    nat64 = isinstance(address, ipaddress.IPv6Address) and address in ipaddress.ip_network(
        "64:ff9b::/96"
    )
    assert (
        address.is_global
        or nat64
        or (isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None)
    )
