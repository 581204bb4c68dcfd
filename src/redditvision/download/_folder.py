"""The output folder's pieces: the download lock and the near-duplicate index."""

from __future__ import annotations

import os
from pathlib import Path

import filelock
import numpy as np

from redditvision.errors import DownloadError

__all__ = ["LOCK_NAME", "OWNER_NAME", "NearIndex", "lock_folder"]

LOCK_NAME = ".download.lock"
"""The lock file of a download folder (one downloader at a time, as git's ``index.lock``)."""

OWNER_NAME = ".download.owner"
"""The process id of the downloader holding the lock (named in the refusal)."""


class NearIndex:
    """Perceptual hashes of the ok images and their groups; a vectorised Hamming scan.

    Memory: 8 bytes per hash plus the group string, per unique image (not per post).
    """

    def __init__(self, distance: int) -> None:
        self.distance = distance
        self._hashes = np.zeros(1024, dtype=np.uint64)
        self._groups: list[str] = []

    def __len__(self) -> int:
        return len(self._groups)

    def match(self, phash: str) -> str | None:
        n = len(self._groups)
        if n == 0:
            return None
        distances = np.bitwise_count(self._hashes[:n] ^ np.uint64(int(phash, 16)))
        best = int(np.argmin(distances))
        return self._groups[best] if int(distances[best]) <= self.distance else None

    def add(self, phash: str, group: str) -> None:
        n = len(self._groups)
        if n == len(self._hashes):
            self._hashes = np.concatenate([self._hashes, np.zeros(n, dtype=np.uint64)])
        self._hashes[n] = np.uint64(int(phash, 16))
        self._groups.append(group)


def lock_folder(out_dir: Path, timeout: float | None) -> filelock.BaseFileLock:
    """Take the folder's download lock, or raise DownloadError naming who holds it."""
    lock = filelock.FileLock(
        out_dir / LOCK_NAME, timeout=-1 if timeout is None else timeout, thread_local=False
    )
    try:
        lock.acquire()
    except filelock.Timeout as exc:
        try:
            owner = (out_dir / OWNER_NAME).read_text(encoding="utf-8").strip()
        except OSError:
            owner = ""
        holder = f" (process {owner})" if owner.isdigit() else ""
        waited = "" if not timeout else f" for {timeout:g} s"
        raise DownloadError(
            f"another download is running in {out_dir}{holder}: it holds "
            f"{out_dir / LOCK_NAME}; waited{waited or ' not at all'}. Let it finish, "
            "use another output folder, or wait for it (lock_timeout=..., download "
            "--wait-for-lock SECONDS)",
            transient=True,
        ) from exc
    (out_dir / OWNER_NAME).write_text(str(os.getpid()), encoding="utf-8")
    return lock
