"""Offline sources: saved Reddit listing JSON files and NDJSON submission dumps."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

from redditvision._closing import Closeable
from redditvision.errors import ConfigError, ListingFormatError, SourceError
from redditvision.models import ImagePost
from redditvision.reddit._decompress import ZSTD_MAX_WINDOW, open_bounded, read_line
from redditvision.reddit._posts import CollectStats, PostFilters, _Collector

__all__ = [
    "DEFAULT_LISTING_MAX_BYTES",
    "DEFAULT_MAX_LINE_BYTES",
    "DumpFileSource",
    "ListingFileSource",
]

_S = TypeVar("_S", bound="_FileSource")

DEFAULT_LISTING_MAX_BYTES = 64 * 1024 * 1024
"""Largest decompressed listing file, 64 MiB: about 100 pages of 100 children (a page of
Reddit's ``.json`` endpoints is 0.2-1 MB). A listing is parsed whole, so this bounds memory."""
DEFAULT_MAX_LINE_BYTES = 4 * 1024 * 1024
"""Longest line of a dump, 4 MiB: a submission of the Pushshift / Arctic Shift dumps is a
few KB, a big gallery with every ``media_metadata`` rendition some 100 KB."""
_LISTING_WINDOW = 2**27  # zstandard's default window limit: listings are not --long=31


def _paths(paths: Iterable[str | os.PathLike[str]]) -> tuple[Path, ...]:
    if isinstance(paths, str | os.PathLike):
        return (Path(paths),)
    return tuple(Path(path) for path in paths)


def _positive(name: str, value: int | None) -> int | None:
    if value is not None and value < 1:
        raise ConfigError(f"{name} must be at least 1 byte or None, got {value}")
    return value


class _FileSource(Closeable):
    def __init__(
        self, paths: Iterable[str | os.PathLike[str]], *, filters: PostFilters | None = None
    ) -> None:
        self.paths = _paths(paths)
        self.filters = filters if filters is not None else PostFilters()
        self.stats = CollectStats()
        self._closed = False

    @property
    def errors(self) -> list[str]:
        """Input problems that did not stop the run, ``"file:line: message"`` each."""
        return self.stats.errors

    def close(self) -> None:
        """Release nothing held between calls; safe to call twice."""
        self._closed = True

    def __repr__(self) -> str:
        names = ", ".join(str(path) for path in self.paths)
        return f"{type(self).__name__}([{names}], filters={self.filters!r})"


class ListingFileSource(_FileSource):
    """Submissions from saved Reddit ``Listing`` JSON files, as ``.json`` endpoints send them.

    A file may hold one listing (``{"kind": "Listing", "data": {"children": [...]}}``, e.g.
    ``https://www.reddit.com/r/NAME/top.json?limit=100``), a JSON array of listings (the
    ``/comments/ID.json`` endpoint returns the submission listing and the comment listing),
    or several listing objects one after another (pages saved into one file). Children of
    kinds other than ``t3`` (comments, ``more``) are ignored. A file may be zstandard- or
    gzip-compressed (sniffed from its first bytes); one cut off inside its compressed
    stream is an error, never a shorter listing. Files are read one at a time, each whole
    and at most ``max_bytes`` decompressed, so memory stays bounded whatever a file holds
    (a 256 KB zstandard file can expand to 8 GB).

    Args:
        paths: The listing files, read in order. One path (str or path-like) also works.
        filters: Which posts and media to keep (default :class:`PostFilters`: NSFW,
            stickied and removed posts excluded, posts without images not yielded).
        max_bytes: Largest decompressed size of one file in bytes (default
            :data:`DEFAULT_LISTING_MAX_BYTES`, 64 MiB); None for no cap (trusted files).

    Attributes:
        stats: :class:`CollectStats` accumulated over every :meth:`submissions` call.

    Raises:
        ConfigError: ``max_bytes`` below 1.
    """

    def __init__(
        self,
        paths: Iterable[str | os.PathLike[str]],
        *,
        filters: PostFilters | None = None,
        max_bytes: int | None = DEFAULT_LISTING_MAX_BYTES,
    ) -> None:
        super().__init__(paths, filters=filters)
        self.max_bytes = _positive("max_bytes", max_bytes)

    def submissions(self) -> Iterator[ImagePost]:
        """Stream the kept posts of every file, in file and listing order.

        Yields:
            One :class:`~redditvision.models.ImagePost` per kept submission.

        Raises:
            ListingFormatError: A file is not JSON or not a Reddit listing, or is over
                ``max_bytes`` decompressed (raised when that file is reached; the posts of
                earlier files were already yielded).
            SourceError: A file cannot be read, or is truncated or corrupt.
        """
        collector = _Collector(self.filters, self.stats)
        for path in self.paths:
            for position, data in self._children(path):
                post = collector.take(data, f"{path}: child {position}")
                if post is not None:
                    yield post

    def _children(self, path: Path) -> Iterator[tuple[int, Mapping[str, Any]]]:
        how = "ListingFileSource(max_bytes=...), collect --max-input-bytes"
        try:
            with open_bounded(
                path, max_bytes=self.max_bytes, max_window=_LISTING_WINDOW, how=how
            ) as stream:
                raw = stream.read()
        except OSError as exc:
            raise SourceError(f"cannot read listing file {path}: {exc}") from exc
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ListingFormatError(
                f"{path} is not a Reddit listing: not UTF-8 text ({exc.reason} at byte "
                f"{exc.start}); save the response of a .json endpoint"
            ) from exc
        listings: list[Mapping[str, Any]] = []
        for value in _json_values(text, path):
            listings.extend(_listings_in(value, path))
        if not listings:
            raise ListingFormatError(
                f"{path} is not a Reddit listing: the file is empty; expected "
                '{"kind": "Listing", "data": {"children": [...]}}'
            )
        position = 0
        for listing in listings:
            for child in listing["data"]["children"]:
                position += 1
                if not isinstance(child, Mapping) or child.get("kind") != "t3":
                    continue
                data = child.get("data")
                if isinstance(data, Mapping):
                    yield position, data
                else:
                    self.stats.posts_seen += 1
                    _Collector(self.filters, self.stats).error(
                        f"{path}: child {position}", "t3 child without a 'data' object"
                    )


def _json_values(text: str, path: Path) -> Iterator[Any]:
    decoder = json.JSONDecoder()
    index = 0
    length = len(text)
    while True:
        while index < length and text[index].isspace():
            index += 1
        if index >= length:
            return
        try:
            value, index = decoder.raw_decode(text, index)
        except json.JSONDecodeError as exc:
            raise ListingFormatError(
                f"{path} is not a Reddit listing: invalid JSON at line {exc.lineno} column "
                f"{exc.colno} ({exc.msg}); save the response of a .json endpoint unchanged"
            ) from exc
        except RecursionError as exc:
            raise ListingFormatError(
                f"{path} is not a Reddit listing: JSON nested too deeply (arrays or objects "
                "inside each other past Python's recursion limit); a listing is 6 levels deep"
            ) from exc
        except ValueError as exc:  # e.g. an integer over Python's 4,300-digit limit
            raise ListingFormatError(f"{path} is not a Reddit listing: {exc}") from exc
        yield value


def _listings_in(value: Any, path: Path) -> list[Mapping[str, Any]]:
    # Arrays of listings may nest (pages saved as arrays of arrays): walked with an
    # explicit stack, so no depth of nesting can overflow Python's.
    found: list[Mapping[str, Any]] = []
    stack = [value]
    while stack:
        value = stack.pop()
        if isinstance(value, list):
            stack.extend(reversed(value))
        else:
            found.append(_listing(value, path))
    return found


def _listing(value: Any, path: Path) -> Mapping[str, Any]:
    if (
        isinstance(value, Mapping)
        and value.get("kind") == "Listing"
        and isinstance(value.get("data"), Mapping)
        and isinstance(value["data"].get("children"), list)
    ):
        return value
    if isinstance(value, Mapping):
        kind = value.get("kind")
        shown = repr(kind)[:80] if isinstance(kind, str | int | float | bool | None) else "?"
        got = f"a JSON object with kind {shown} and keys {sorted(map(str, value))[:8]}"
    else:
        got = f"a JSON {type(value).__name__}"
    raise ListingFormatError(
        f"{path} is not a Reddit listing: got {got}; expected "
        '{"kind": "Listing", "data": {"children": [...]}} as returned by e.g. '
        "https://www.reddit.com/r/NAME/top.json (use DumpFileSource / --dump for NDJSON)"
    )


class DumpFileSource(_FileSource):
    """Submissions from NDJSON dumps: one submission JSON object per line.

    Each line is either a submission's fields (Pushshift / Arctic Shift dumps) or a ``t3``
    thing (``{"kind": "t3", "data": {...}}``). Files may be plain, zstandard-compressed
    (``.zst``, windows up to 2 GiB as Pushshift's ``--long=31``) or gzip-compressed; the
    format is sniffed from the first bytes, not the name. Files are streamed line by line;
    a line over ``max_line_bytes``, more than ``max_bytes`` decompressed, or a compressed
    file cut off inside its stream raise an error (never a silently shorter dump).

    A malformed line (not JSON, not an object, no id) is recorded in :attr:`errors` with
    its file and line number, logged as a warning, and the rest of the file is still read.
    A file none of whose lines is a submission raises :class:`ListingFormatError`.

    Args:
        paths: The dump files, read in order. One path (str or path-like) also works.
        filters: Which posts and media to keep (default :class:`PostFilters`).
        max_line_bytes: Longest line in bytes (default :data:`DEFAULT_MAX_LINE_BYTES`,
            4 MiB): a line is held whole while it is parsed.
        max_bytes: Largest decompressed size of one file in bytes; None (default) for no
            cap, as dumps are streamed (Pushshift's are tens of GB).

    Attributes:
        stats: :class:`CollectStats` accumulated over every :meth:`submissions` call.

    Raises:
        ConfigError: ``max_line_bytes`` or ``max_bytes`` below 1.
    """

    def __init__(
        self,
        paths: Iterable[str | os.PathLike[str]],
        *,
        filters: PostFilters | None = None,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
        max_bytes: int | None = None,
    ) -> None:
        super().__init__(paths, filters=filters)
        self.max_line_bytes = _positive("max_line_bytes", max_line_bytes) or max_line_bytes
        self.max_bytes = _positive("max_bytes", max_bytes)

    def submissions(self) -> Iterator[ImagePost]:
        """Stream the kept posts of every dump, in file and line order.

        Yields:
            One :class:`~redditvision.models.ImagePost` per kept submission.

        Raises:
            ListingFormatError: A file has no valid submission line at all, a line is
                over ``max_line_bytes``, or a file is over ``max_bytes`` decompressed.
            SourceError: A file cannot be read, or is truncated or corrupt.
        """
        collector = _Collector(self.filters, self.stats)
        for path in self.paths:
            good = 0
            first_error: str | None = None
            try:
                stream = open_bounded(
                    path,
                    max_bytes=self.max_bytes,
                    max_window=ZSTD_MAX_WINDOW,
                    how="DumpFileSource(max_bytes=...), collect --max-input-bytes",
                )
            except OSError as exc:
                raise SourceError(f"cannot read dump file {path}: {exc}") from exc
            with stream:
                for number, line in self._numbered_lines(stream, path):
                    where = f"{path}:{number}"
                    data, problem = _parse_line(line)
                    if data is None:
                        if problem is None:
                            continue
                        collector.error(where, problem)
                        first_error = first_error or f"line {number}: {problem}"
                        continue
                    errors_before = len(self.stats.errors)
                    post = collector.take(data, where)
                    if len(self.stats.errors) == errors_before:
                        good += 1
                    elif first_error is None:
                        first_error = self.stats.errors[-1]
                    if post is not None:
                        yield post
            if good == 0 and first_error is not None:
                raise ListingFormatError(
                    f"{path} is not an NDJSON submission dump: no line is a submission "
                    f"({first_error}); expected one JSON object per line"
                )

    def _numbered_lines(self, stream: io.BufferedReader, path: Path) -> Iterator[tuple[int, bytes]]:
        how = "DumpFileSource(max_line_bytes=...), collect --max-line-bytes"
        number = 0
        while True:
            number += 1
            try:
                line = read_line(stream, path, number, self.max_line_bytes, how)
            except SourceError as exc:
                if isinstance(exc, ListingFormatError):
                    raise
                raise SourceError(f"{exc.message} (after line {number - 1})") from exc
            if not line:
                return
            yield number, line


def _parse_line(line: bytes) -> tuple[Mapping[str, Any] | None, str | None]:
    stripped = line.strip()
    if not stripped:
        return None, None
    try:
        value = json.loads(stripped)
    except UnicodeDecodeError as exc:
        return None, f"not UTF-8 ({exc.reason})"
    except json.JSONDecodeError as exc:
        return None, f"malformed JSON ({exc.msg} at column {exc.colno})"
    except RecursionError:
        return None, "JSON nested too deeply (past Python's recursion limit)"
    except ValueError as exc:  # e.g. an integer over Python's 4,300-digit limit
        return None, f"malformed JSON ({exc})"
    if not isinstance(value, Mapping):
        return None, f"expected a JSON object, got a JSON {type(value).__name__}"
    kind = value.get("kind")
    if isinstance(kind, str) and isinstance(value.get("data"), Mapping):
        if kind != "t3":
            return None, f"not a submission (kind {kind!r})"
        return value["data"], None
    return value, None
