"""The download manifest: one SQLite row per media item, so every run resumes.

:class:`ImageManifest` is the record of what the download step did in an output folder
(``DIR/manifest.sqlite``, written by :class:`~redditvision.download.ImageDownloader`):
for each media item (key ``"{post_id}:{index}"``) its status (ok, duplicate, missing,
skipped, failed) with the reason, the file (path relative to the folder, so the folder can
move), SHA-256, perceptual hash, width, height, format, bytes, the near-duplicate group
and the post's provenance (subreddit, title, author, flair, permalink, source URL).

It uses :mod:`sqlite3` from the standard library in WAL mode; each row, or each group of
rows in :meth:`ImageManifest.transaction`, is one transaction: a process killed at any
moment leaves every committed row intact and no half-written one.
Later steps read it::

    with ImageManifest.for_folder("images") as manifest:
        for record in manifest.records(RecordStatus.OK):
            ...  # record.path, record.near_duplicate_group, record.title, ...
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from redditvision._closing import Closeable
from redditvision.errors import ConfigError
from redditvision.models import ImageRecord, RecordStatus

__all__ = ["MANIFEST_NAME", "ImageManifest"]

MANIFEST_NAME = "manifest.sqlite"
"""File name of the manifest inside a download folder."""

_SCHEMA_VERSION = 1

_COLUMNS = (
    "key",
    "post_id",
    "idx",
    "url",
    "status",
    "reason",
    "path",
    "sha256",
    "phash",
    "width",
    "height",
    "format",
    "size_bytes",
    "duplicate_of",
    "near_duplicate_group",
    "subreddit",
    "title",
    "author",
    "flair_text",
    "permalink",
    "final_url",
    "attempts",
    "updated_at",
)

_UPSERT = (
    f"INSERT INTO records ({', '.join(_COLUMNS)}) "  # noqa: S608 - constant names
    f"VALUES ({', '.join('?' for _ in _COLUMNS)}) ON CONFLICT(key) DO UPDATE SET "
    + ", ".join(f"{name} = excluded.{name}" for name in _COLUMNS if name not in {"key", "attempts"})
    + ", attempts = records.attempts + excluded.attempts"
)
"""The upsert of :meth:`ImageManifest.put`, built once (it runs once per media item)."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    key TEXT PRIMARY KEY,
    post_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    url TEXT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT,
    path TEXT,
    sha256 TEXT,
    phash TEXT,
    width INTEGER,
    height INTEGER,
    format TEXT,
    size_bytes INTEGER,
    duplicate_of TEXT,
    near_duplicate_group TEXT,
    subreddit TEXT NOT NULL DEFAULT '',
    title TEXT NOT NULL DEFAULT '',
    author TEXT,
    flair_text TEXT,
    permalink TEXT NOT NULL DEFAULT '',
    final_url TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS records_sha256 ON records (sha256);
CREATE INDEX IF NOT EXISTS records_status ON records (status);
"""

_SUMMARY_NAMES = {
    RecordStatus.OK: "ok",
    RecordStatus.DUPLICATE: "duplicates",
    RecordStatus.MISSING: "missing",
    RecordStatus.SKIPPED: "skipped",
    RecordStatus.FAILED: "failed",
}


def _relative(path: Path, folder: Path) -> str:
    if path.is_absolute() and ".." not in path.parts:
        try:
            return path.relative_to(folder).as_posix()  # no file system access
        except ValueError:
            pass
    return path.resolve().relative_to(folder).as_posix()


class ImageManifest(Closeable):
    """The SQLite manifest of a download folder.

    Args:
        path: The database file (usually ``DIR/manifest.sqlite``); file paths in rows
            are relative to its folder.
        create: Create the file when it does not exist (default True). With False, a
            missing file raises :class:`~redditvision.errors.ConfigError`.

    Raises:
        ConfigError: The file is missing (``create=False``), is not a redditvision
            manifest, or was written by a newer schema version.

    The object is safe to share between threads (one connection behind a lock). It is a
    context manager; :meth:`close` is safe twice.
    """

    def __init__(self, path: str | os.PathLike[str], *, create: bool = True) -> None:
        self.path = Path(path).resolve()
        self.folder = self.path.parent
        if not create and not self.path.is_file():
            raise ConfigError(
                f"no manifest at {self.path}: run `redditvision download --out "
                f"{self.folder}` first (it writes {MANIFEST_NAME})"
            )
        self.folder.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._closed = False
        self._depth = 0
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA busy_timeout=30000")
            version = int(self._db.execute("PRAGMA user_version").fetchone()[0])
            if version > _SCHEMA_VERSION:
                raise ConfigError(
                    f"{self.path} was written by a newer redditvision (schema {version}); "
                    "upgrade redditvision to read it"
                )
            with self._db:
                self._db.executescript(_SCHEMA)
                self._db.execute(f"PRAGMA user_version={_SCHEMA_VERSION}")
        except sqlite3.DatabaseError as exc:
            raise ConfigError(f"{self.path} is not a redditvision manifest: {exc}") from exc

    @classmethod
    def for_folder(cls, out_dir: str | os.PathLike[str], *, create: bool = False) -> ImageManifest:
        """Open the manifest of a download folder (``out_dir/manifest.sqlite``).

        Args:
            out_dir: The folder given to ``redditvision download --out``.
            create: Create an empty manifest when there is none (default False: a folder
                without one raises).

        Returns:
            The manifest.

        Raises:
            ConfigError: No manifest in the folder and ``create`` is False.
        """
        return cls(Path(out_dir) / MANIFEST_NAME, create=create)

    # -- reading -------------------------------------------------------------------------

    def _record(self, row: sqlite3.Row | tuple[Any, ...]) -> ImageRecord:
        values = dict(zip(_COLUMNS, row, strict=True))
        path = values["path"]
        return ImageRecord(
            post_id=values["post_id"],
            index=int(values["idx"]),
            url=values["url"],
            status=RecordStatus(values["status"]),
            reason=values["reason"],
            path=self.folder / path if path else None,
            sha256=values["sha256"],
            phash=values["phash"],
            width=values["width"],
            height=values["height"],
            format=values["format"],
            size_bytes=values["size_bytes"],
            duplicate_of=values["duplicate_of"],
            near_duplicate_group=values["near_duplicate_group"],
            subreddit=values["subreddit"],
            title=values["title"],
            author=values["author"],
            flair_text=values["flair_text"],
            permalink=values["permalink"],
        )

    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            self._check_open()
            return list(self._db.execute(sql, params).fetchall())

    def _reader(self) -> sqlite3.Connection:
        """This thread's own read-only connection (WAL readers never wait for the writer)."""
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            with self._lock:
                self._check_open()
                db = sqlite3.connect(
                    f"{self.path.as_uri()}?mode=ro", uri=True, check_same_thread=False
                )
                self._readers.append(db)
            self._local.db = db
        return db

    def _snapshot_query(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        """Read committed rows on this thread's own connection, without the writer's lock.

        For worker threads of the downloader: rows of an open :meth:`transaction` are not
        seen.
        """
        self._check_open()
        return list(self._reader().execute(sql, params).fetchall())

    def get(self, key: str) -> ImageRecord | None:
        """Return the record of one media item.

        Args:
            key: ``"{post_id}:{index}"`` (:attr:`ImageRecord.key`).

        Returns:
            The record, or None when the item was never seen.
        """
        sql = f"SELECT {', '.join(_COLUMNS)} FROM records WHERE key = ?"  # noqa: S608 - constant names
        rows = self._query(sql, (key,))
        return self._record(rows[0]) if rows else None

    def _snapshot_get(self, key: str) -> ImageRecord | None:
        sql = f"SELECT {', '.join(_COLUMNS)} FROM records WHERE key = ?"  # noqa: S608 - constants
        rows = self._snapshot_query(sql, (key,))
        return self._record(rows[0]) if rows else None

    def _snapshot_find_sha256(self, sha256: str) -> ImageRecord | None:
        rows = self._snapshot_query(
            f"SELECT {', '.join(_COLUMNS)} FROM records "  # noqa: S608 - constant names
            "WHERE sha256 = ? AND status = ? ORDER BY rowid LIMIT 1",
            (sha256, RecordStatus.OK.value),
        )
        return self._record(rows[0]) if rows else None

    def attempts(self, key: str) -> int:
        """Return how many download attempts the item has had over all runs (0 if unseen)."""
        rows = self._query("SELECT attempts FROM records WHERE key = ?", (key,))
        return int(rows[0][0]) if rows else 0

    def final_url(self, key: str) -> str | None:
        """Return the URL the item's bytes finally came from (after redirects), if any."""
        rows = self._query("SELECT final_url FROM records WHERE key = ?", (key,))
        return rows[0][0] if rows else None

    def find_sha256(self, sha256: str) -> ImageRecord | None:
        """Return the first ``ok`` record whose file has this SHA-256, or None.

        Args:
            sha256: Hex digest, lower case.
        """
        rows = self._query(
            f"SELECT {', '.join(_COLUMNS)} FROM records "  # noqa: S608 - constant names
            "WHERE sha256 = ? AND status = ? ORDER BY rowid LIMIT 1",
            (sha256, RecordStatus.OK.value),
        )
        return self._record(rows[0]) if rows else None

    def records(
        self, status: RecordStatus | None = None, *, batch: int = 500
    ) -> Iterator[ImageRecord]:
        """Iterate over the records, in the order they were first written.

        Args:
            status: Only records with this status (e.g. :attr:`RecordStatus.OK` for the
                images a dataset can use); None for all.
            batch: Rows read per query (memory stays bounded whatever the size).

        Yields:
            Fully populated records: ``path`` is absolute, ``near_duplicate_group`` set
            for every ``ok`` and ``duplicate`` record (images that look the same share
            it; a lone image's group is its own key), provenance from the post.
        """
        where = "" if status is None else "AND status = ?"
        extra: tuple[Any, ...] = () if status is None else (RecordStatus(status).value,)
        last = 0
        while True:
            rows = self._query(
                f"SELECT rowid, {', '.join(_COLUMNS)} FROM records "  # noqa: S608 - constants
                f"WHERE rowid > ? {where} ORDER BY rowid LIMIT ?",
                (last, *extra, batch),
            )
            if not rows:
                return
            for row in rows:
                last = int(row[0])
                yield self._record(row[1:])

    def phashes(self) -> Iterator[tuple[str, str]]:
        """Iterate over ``(phash, near_duplicate_group)`` of every ``ok`` record."""
        for record in self.records(RecordStatus.OK):
            if record.phash and record.near_duplicate_group:
                yield record.phash, record.near_duplicate_group

    def summary(self) -> dict[str, int]:
        """Count the records by status.

        Returns:
            ``{"total", "ok", "duplicates", "missing", "skipped", "failed", "bytes",
            "groups"}``: counts of rows, ``bytes`` the size of the ``ok`` files and
            ``groups`` the number of near-duplicate groups among ``ok`` records.
        """
        counts = dict.fromkeys(["total", *_SUMMARY_NAMES.values(), "bytes", "groups"], 0)
        for status, count in self._query("SELECT status, COUNT(*) FROM records GROUP BY status"):
            counts[_SUMMARY_NAMES[RecordStatus(status)]] = int(count)
            counts["total"] += int(count)
        ok = RecordStatus.OK.value
        row = self._query(
            "SELECT COALESCE(SUM(size_bytes), 0), COUNT(DISTINCT near_duplicate_group) "
            "FROM records WHERE status = ?",
            (ok,),
        )[0]
        counts["bytes"] = int(row[0])
        counts["groups"] = int(row[1])
        return counts

    def __len__(self) -> int:
        return int(self._query("SELECT COUNT(*) FROM records")[0][0])

    # -- writing -------------------------------------------------------------------------

    def put(self, record: ImageRecord, *, final_url: str | None = None, attempts: int = 0) -> None:
        """Insert or replace the row of one media item, committed at once.

        Inside :meth:`transaction` the row is committed with the others at its end.

        Args:
            record: The record; its ``path`` must lie inside the manifest's folder (it
                is stored relative to it).
            final_url: The URL the bytes came from after redirects, if any.
            attempts: Download attempts made for it this run (added to earlier runs').

        Raises:
            ConfigError: ``record.path`` is outside the manifest's folder.
        """
        path: str | None = None
        if record.path is not None:
            try:
                path = _relative(Path(record.path), self.folder)
            except ValueError as exc:
                raise ConfigError(
                    f"record {record.key}: {record.path} is outside the manifest folder "
                    f"{self.folder}"
                ) from exc
        values = (
            record.key,
            record.post_id,
            record.index,
            record.url,
            RecordStatus(record.status).value,
            record.reason,
            path,
            record.sha256,
            record.phash,
            record.width,
            record.height,
            record.format,
            record.size_bytes,
            record.duplicate_of,
            record.near_duplicate_group,
            record.subreddit,
            record.title,
            record.author,
            record.flair_text,
            record.permalink,
            final_url,
            attempts,
            time.time(),
        )
        with self._lock:
            self._check_open()
            # Autocommits, unless inside transaction().
            self._db.execute(_UPSERT, values)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group several :meth:`put` calls into one commit: all of them or none.

        Other threads wait while a transaction is open. Nested uses join the outer one.

        Yields:
            Nothing; the rows are committed when the block ends without an exception and
            rolled back when it raises.
        """
        with self._lock:
            self._check_open()
            if self._depth == 0:
                self._db.execute("BEGIN IMMEDIATE")
            self._depth += 1
            try:
                yield
            except BaseException:
                self._depth -= 1
                if self._depth == 0:
                    self._db.execute("ROLLBACK")
                raise
            self._depth -= 1
            if self._depth == 0:
                self._db.execute("COMMIT")

    # -- lifecycle -----------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise ConfigError(f"the manifest {self.path} is closed")

    def close(self) -> None:
        """Close the database (safe to call twice)."""
        with self._lock:
            if not self._closed:
                self._closed = True
                for reader in self._readers:
                    reader.close()
                self._readers.clear()
                self._db.close()

    def __repr__(self) -> str:
        return f"ImageManifest({str(self.path)!r})"
