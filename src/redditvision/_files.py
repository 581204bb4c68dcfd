"""File checksums: the one SHA-256 (and MD5) helper of the package.

A leaf module (standard library only), so every layer that names files by content
(labeling, the dataset writers) uses the same code: files are read in 1 MiB chunks, so
memory stays flat whatever the file's size.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import attrs

__all__ = ["CHUNK_BYTES", "FileDigests", "bytes_sha256", "file_digests", "file_sha256"]

CHUNK_BYTES = 1 << 20
"""Bytes read per chunk (1 MiB)."""


@attrs.frozen
class FileDigests:
    """The checksums of one file, computed in one pass.

    Attributes:
        sha256: 64 lower-case hex digits.
        md5_base64: The MD5 digest in base64, as Cloud Storage reports ``md5Hash``.
        size: The file's size in bytes.
    """

    sha256: str
    md5_base64: str
    size: int


def bytes_sha256(data: bytes) -> str:
    """Return the hex SHA-256 of bytes.

    Args:
        data: The bytes.

    Returns:
        64 lower-case hex digits.
    """
    return hashlib.sha256(data).hexdigest()


def file_digests(path: Path) -> FileDigests:
    """Return a file's SHA-256, MD5 (base64) and size, read once in 1 MiB chunks.

    Args:
        path: The file.

    Returns:
        The digests.

    Raises:
        OSError: The file cannot be read (callers translate it into their error).
    """
    sha = hashlib.sha256()
    md5 = hashlib.md5(usedforsecurity=False)
    size = 0
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK_BYTES), b""):
            sha.update(chunk)
            md5.update(chunk)
            size += len(chunk)
    return FileDigests(
        sha256=sha.hexdigest(), md5_base64=base64.b64encode(md5.digest()).decode("ascii"), size=size
    )


def file_sha256(path: Path) -> str:
    """Return the hex SHA-256 of a file, read in 1 MiB chunks.

    Args:
        path: The file.

    Returns:
        64 lower-case hex digits.

    Raises:
        OSError: The file cannot be read (callers translate it into their error).
    """
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()
