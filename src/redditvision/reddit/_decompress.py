"""Bounded reading of strangers' files: plain, zstandard or gzip, capped, never silently cut.

A saved listing or dump comes from elsewhere. Three things a file must not do to a run:

* **Grow the process without bound**: a zstandard frame can expand about 32,000 times (a
  256 KB file is 8 GB of text), and a dump can hold one endless line. Every reader here
  counts the decompressed bytes and refuses more than ``max_bytes``; lines are read with
  a length cap (:func:`read_line`).
* **End early in silence**: a ``.zst`` cut in half decompresses to the first half without
  an error from ``zstandard``'s stream reader. The reader here feeds the frame decoder
  itself and raises :class:`~redditvision.errors.SourceError` when the file ends inside a
  frame, as Python's ``gzip`` module does for gzip (``EOFError``).
* **Hold a 2 GiB window**: the zstandard window (memory the decoder allocates) is capped
  at ``max_window`` (the ``zstandard`` default, 128 MiB, for listings; dumps pass 2 GiB
  for Pushshift's ``--long=31`` frames).
"""

from __future__ import annotations

import gzip
import io
import zlib
from pathlib import Path
from typing import IO, Any

import zstandard

from redditvision.errors import ListingFormatError, SourceError

__all__ = ["ZSTD_MAX_WINDOW", "open_bounded", "read_line"]

_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAX_WINDOW = 2**31
"""Largest zstandard window for dumps: Pushshift-style dumps use ``zstd --long=31``."""
_ZSTD_DEFAULT_WINDOW = 2**27  # zstandard's own default limit (ZSTD_WINDOWLOG_LIMIT_DEFAULT)
# Compressed bytes fed to the zstandard decoder at once. Its worst-case expansion is about
# 32,768 (an RLE block: 4 bytes for 128 KiB), so one feed is at most 64 MiB of output.
_ZSTD_FEED = 2048
_BUFFER = 64 * 1024


class _ZstdRaw(io.RawIOBase):
    """A raw reader of a zstandard file (any number of frames); a truncated frame raises."""

    def __init__(self, handle: IO[bytes], path: Path, max_window: int) -> None:
        self._handle = handle
        self._path = path
        self._decompressor = zstandard.ZstdDecompressor(max_window_size=max_window)
        self._frame: Any = None  # the decoder of the frame in progress, None between frames
        self._pending = b""
        self._view_offset = 0
        self._carry = b""  # bytes of the next frame, read past the end of the previous

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while self._view_offset >= len(self._pending):
            if not self._fill():
                return 0
        size = min(len(buffer), len(self._pending) - self._view_offset)
        buffer[:size] = self._pending[self._view_offset : self._view_offset + size]
        self._view_offset += size
        return size

    def _fill(self) -> bool:
        """Decode the next feed into ``_pending``; False at a clean end of the file."""
        data = self._carry or self._handle.read(_ZSTD_FEED)
        self._carry = b""
        if not data:
            if self._frame is not None:
                raise SourceError(
                    f"{self._path} is truncated: the file ends inside a zstandard frame "
                    "(an interrupted download or copy?); fetch or compress it again"
                )
            return False
        if self._frame is None:
            self._frame = self._decompressor.decompressobj()
        try:
            self._pending = self._frame.decompress(data)
        except zstandard.ZstdError as exc:
            raise SourceError(f"cannot decompress {self._path}: {exc}") from exc
        self._view_offset = 0
        if self._frame.eof:
            self._carry = self._frame.unused_data
            self._frame = None
        return True

    def close(self) -> None:
        self._handle.close()
        super().close()


class _Counted(io.RawIOBase):
    """Counts the bytes read through it; more than ``limit`` raises ListingFormatError."""

    def __init__(self, inner: IO[bytes], path: Path, limit: int | None, how: str) -> None:
        self._inner = inner
        self._path = path
        self._limit = limit
        self._how = how
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        try:
            data = self._inner.read(len(buffer))
        except EOFError as exc:  # gzip: "Compressed file ended before the end-of-stream"
            raise SourceError(
                f"{self._path} is truncated: {exc}; fetch or compress it again"
            ) from exc
        except (OSError, zlib.error, zstandard.ZstdError) as exc:  # gzip raises all three
            raise SourceError(f"cannot decompress {self._path}: {exc}") from exc
        size = len(data)
        self.count += size
        if self._limit is not None and self.count > self._limit:
            raise ListingFormatError(
                f"{self._path} decompresses to more than {self._limit:,} bytes, the limit "
                f"({self._how}); a compression bomb, or a bigger file than expected: "
                "raise the limit if the file is trusted"
            )
        buffer[:size] = data
        return size

    def close(self) -> None:
        self._inner.close()
        super().close()


def open_bounded(
    path: Path, *, max_bytes: int | None, max_window: int, how: str
) -> io.BufferedReader:
    """Open a plain, zstandard or gzip file (sniffed from its first bytes) for bounded reading.

    Args:
        path: The file.
        max_bytes: Most decompressed bytes read before :class:`ListingFormatError`; None
            for no cap.
        max_window: Largest zstandard window accepted, in bytes (decoder memory).
        how: How to raise the cap, for the message (``"ListingFileSource(max_bytes=...)"``).

    Returns:
        A buffered reader of the decompressed bytes; the caller closes it.

    Raises:
        OSError: The file cannot be opened.
        ListingFormatError: While reading: more than ``max_bytes`` decompressed bytes.
        SourceError: While reading: the file is truncated or corrupt.
    """
    handle = open(path, "rb")  # noqa: SIM115 - wrapped and returned, closed by the caller
    inner: IO[bytes]
    try:
        magic = handle.peek(4)[:4]
        if magic.startswith(_ZSTD_MAGIC):
            inner = _ZstdRaw(handle, path, max_window)  # type: ignore[assignment] # a raw byte stream
        elif magic.startswith(_GZIP_MAGIC):
            inner = gzip.GzipFile(fileobj=handle, mode="rb")  # type: ignore[assignment] # reads bytes
        else:
            inner = handle
    except BaseException:
        handle.close()
        raise
    counted = _Counted(inner, path, max_bytes, how)
    return io.BufferedReader(counted, _BUFFER)


def read_line(stream: io.BufferedReader, path: Path, number: int, max_line: int, how: str) -> bytes:
    """Read one line of at most ``max_line`` bytes (its newline included).

    Args:
        stream: A reader from :func:`open_bounded`.
        path: The file, for the message.
        number: The line's number (1-based), for the message.
        max_line: The cap in bytes.
        how: How to raise the cap, for the message.

    Returns:
        The line with its newline; ``b""`` at the end of the file.

    Raises:
        ListingFormatError: The line is longer than ``max_line`` bytes.
    """
    line = stream.readline(max_line + 1)
    if len(line) > max_line:
        raise ListingFormatError(
            f"{path}: line {number} is longer than {max_line:,} bytes, the limit ({how}); "
            "not an NDJSON dump of submissions, or raise the limit if the file is trusted"
        )
    return line
