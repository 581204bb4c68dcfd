"""A memory budget shared by the decodes running at once: a semaphore weighted in bytes.

Each image is decoded once to be verified and hashed. A PNG under the pixel cap can be
89.5 million RGBA pixels, 358 MB decoded (plus its greyscale copy for the hash); sixteen
workers decoding such images at once would need 7 GB. The budget bounds the sum of the
estimated decoded sizes of the images being decoded at any moment: a worker whose image
does not fit waits until others finish.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from redditvision.errors import ConfigError

__all__ = ["MemoryBudget"]


class MemoryBudget:
    """A byte budget for concurrent decodes (a weighted semaphore).

    An image larger than the whole budget is decoded alone (when nothing else holds any
    of it) rather than refused: the pixel cap (``DownloadLimits.max_pixels``) bounds it.
    So peak decode memory is at most ``max(capacity, the largest single image)``.

    Args:
        capacity: Bytes that may be reserved at once (at least 1).

    Attributes:
        capacity: The budget in bytes.
        peak: Most bytes ever reserved at once (for tests and benchmarks).
        reservations: Reservations made so far.
        waits: Reservations that had to wait for others to finish.

    Raises:
        ConfigError: ``capacity`` below 1.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ConfigError(f"a memory budget needs at least 1 byte, got {capacity}")
        self.capacity = capacity
        self.peak = 0
        self.reservations = 0
        self.waits = 0
        self._used = 0
        self._cond = threading.Condition()

    @property
    def in_use(self) -> int:
        """Bytes reserved now."""
        with self._cond:
            return self._used

    @contextlib.contextmanager
    def reserve(self, amount: int) -> Iterator[None]:
        """Hold ``amount`` bytes of the budget for the ``with`` block, waiting for room.

        Args:
            amount: Estimated bytes (negative counts as 0).
        """
        amount = max(0, amount)
        with self._cond:
            if self._used and self._used + amount > self.capacity:
                self.waits += 1
                while self._used and self._used + amount > self.capacity:
                    self._cond.wait()
            self._used += amount
            self.reservations += 1
            self.peak = max(self.peak, self._used)
        try:
            yield
        finally:
            with self._cond:
                self._used -= amount
                self._cond.notify_all()

    def __repr__(self) -> str:
        return f"MemoryBudget(capacity={self.capacity}, in_use={self.in_use}, peak={self.peak})"
