"""The network guard refuses non-http(s) schemes and non-public addresses, on every redirect hop."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from harness import ImageHost
from redditvision.download import ImageDownloader
from redditvision.download._netguard import AddressPolicy
from redditvision.errors import UnsafeURLError
from redditvision.models import ImagePost, ImageRecord, MediaItem, RecordStatus


def one(downloader: ImageDownloader, url: str) -> ImageRecord:
    post = ImagePost(
        id="p1", subreddit="s", title="t", permalink="/r/s/", media=(MediaItem(url=url),)
    )
    (record,) = list(downloader.fetch([post]))
    return record


@pytest.fixture
def guarded(tmp_path: Path) -> Iterator[ImageDownloader]:
    """A downloader with the default policy: public addresses only."""
    with ImageDownloader(tmp_path / "out") as downloader:
        yield downloader


def test_loopback_ipv4_url_is_refused(image_host: ImageHost, guarded: ImageDownloader) -> None:
    url = image_host.serve("/a.png", b"\x89PNG\r\n\x1a\n")
    record = one(guarded, url)
    assert record.status is RecordStatus.FAILED
    assert "loopback" in (record.reason or "")
    assert image_host.hits("/a.png") == 0


def test_loopback_ipv6_url_is_refused(guarded: ImageDownloader) -> None:
    record = one(guarded, "http://[::1]:9/a.jpg")
    assert record.status is RecordStatus.FAILED
    assert "refused ::1: a loopback address" in (record.reason or "")


def test_private_network_url_is_refused_without_connecting(guarded: ImageDownloader) -> None:
    record = one(guarded, "http://10.0.0.1/a.jpg")
    assert record.status is RecordStatus.FAILED
    assert "private-network" in (record.reason or "")
    assert guarded.manifest.attempts("p1:0") == 1  # refused at once, not retried


def test_cloud_metadata_address_is_refused(guarded: ImageDownloader) -> None:
    record = one(guarded, "http://169.254.169.254/computeMetadata/v1/")
    assert record.status is RecordStatus.FAILED
    assert "link-local" in (record.reason or "")


def test_hostname_resolving_to_loopback_is_refused(
    image_host: ImageHost, guarded: ImageDownloader
) -> None:
    image_host.serve("/a.png", b"\x89PNG\r\n\x1a\n")
    record = one(guarded, f"http://localhost:{image_host.port}/a.png")
    assert record.status is RecordStatus.FAILED
    assert "refused localhost" in (record.reason or "")
    assert image_host.hits("/a.png") == 0


@pytest.mark.parametrize(
    "target",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/a.jpg",
        "http://[::1]:9/a.jpg",
        "http://127.0.0.2:9/a.jpg",
    ],
)
def test_public_url_redirecting_to_a_private_one_is_refused(
    image_host: ImageHost, tmp_path: Path, target: str
) -> None:
    # The loopback server stands in for a public host; only its own address is let through.
    image_host.redirect("/a.jpg", target)
    with ImageDownloader(tmp_path / "out", allowed_networks=["127.0.0.1/32"]) as downloader:
        record = one(downloader, image_host.url_for("/a.jpg"))
    assert image_host.hits("/a.jpg") == 1  # the first hop was allowed and fetched
    assert record.status is RecordStatus.FAILED
    assert (record.reason or "").startswith("refused")


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "ftp://example.com/a.jpg", "data:image/png;base64,iVBORw0KGgo="]
)
def test_non_http_schemes_are_refused(guarded: ImageDownloader, url: str) -> None:
    record = one(guarded, url)
    assert record.status is RecordStatus.FAILED
    assert "only http and https" in (record.reason or "")


def test_redirect_to_a_file_url_is_refused(image_host: ImageHost, tmp_path: Path) -> None:
    image_host.redirect("/a.jpg", "file:///etc/passwd")
    with ImageDownloader(tmp_path / "out", allow_private_networks=True) as downloader:
        record = one(downloader, image_host.url_for("/a.jpg"))
    assert record.status is RecordStatus.FAILED
    assert "only http and https" in (record.reason or "")


def test_opt_in_allows_loopback(image_host: ImageHost, tmp_path: Path) -> None:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), "blue").save(out, "GIF")
    url = image_host.serve("/a.gif", out.getvalue(), content_type="image/gif")
    with ImageDownloader(tmp_path / "out", allow_private_networks=True) as downloader:
        record = one(downloader, url)
    assert record.status is RecordStatus.OK


@pytest.mark.parametrize(
    "address",
    [
        "0.0.0.0",
        "127.0.0.2",
        "192.168.1.1",
        "172.16.0.1",
        "100.64.0.1",
        "224.0.0.1",
        "240.0.0.1",
        "::",
        "fe80::1",
        "fc00::1",
        "::ffff:127.0.0.1",
        "ff02::1",
    ],
)
def test_policy_refuses_every_non_public_address_kind(address: str) -> None:
    with pytest.raises(UnsafeURLError):
        AddressPolicy().check_address("example.test", address)


@pytest.mark.parametrize("address", ["93.184.215.14", "151.101.1.140", "2606:4700::6810:84e5"])
def test_policy_lets_public_addresses_through(address: str) -> None:
    AddressPolicy().check_address("example.test", address)


def _tls_files(folder: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a certificate for localhost/127.0.0.1 signed by it."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "redditvision test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_file, cert_file, key_file = folder / "ca.pem", folder / "cert.pem", folder / "key.pem"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return ca_file, cert_file, key_file


def test_https_through_the_guard_verifies_the_certificate_of_the_checked_address(
    tmp_path: Path,
) -> None:
    import ssl

    import requests

    ca_file, cert_file, key_file = _tls_files(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    host = ImageHost()
    host._server.socket = context.wrap_socket(host._server.socket, server_side=True)
    out = io.BytesIO()
    Image.new("RGB", (8, 8), "green").save(out, "PNG")
    with host:
        host.serve("/a.png", out.getvalue(), content_type="image/png")
        session = requests.Session()
        session.trust_env = False
        session.verify = str(ca_file)
        url = f"https://localhost:{host.port}/a.png"
        with ImageDownloader(
            tmp_path / "out", session=session, allow_private_networks=True
        ) as downloader:
            assert one(downloader, url).status is RecordStatus.OK
        with ImageDownloader(tmp_path / "out2", session=session) as downloader:
            refused = one(downloader, url)
    assert "refused localhost" in (refused.reason or "")
    assert host.hits("/a.png") == 1
