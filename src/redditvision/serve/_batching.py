"""Dynamic batching: concurrent requests answered by one forward pass.

Requests wait in an asyncio queue; one worker takes the first, gathers whatever else arrives
within ``max_wait`` seconds (up to ``max_batch_size`` images), runs the model once on a
single worker thread, and hands each request its own slice of the answers. While the model
runs, new requests queue up, so under load batches fill without waiting at all. The wait is
only spent while other requests are known to be on their way (their bodies still being read
and parsed: see :meth:`DynamicBatcher.incoming`), so a lone request never waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

import attrs

from redditvision.errors import ConfigError, PredictionError
from redditvision.models import Prediction

__all__ = ["BatchStats", "DynamicBatcher"]

PredictFn = Callable[[Sequence[bytes]], list[list[Prediction]]]


@attrs.define
class BatchStats:
    """Counters of a :class:`DynamicBatcher` (served on the metadata route).

    Attributes:
        requests: Requests answered (or failed) so far.
        images: Images predicted so far.
        batches: Forward passes run so far.
        largest_batch: Most images in one forward pass.
    """

    requests: int = 0
    images: int = 0
    batches: int = 0
    largest_batch: int = 0


@attrs.define(eq=False)
class _Item:
    images: Sequence[bytes]
    future: asyncio.Future[list[list[Prediction]]]


class DynamicBatcher:
    """Batch concurrent prediction requests into single calls of ``predict``.

    Args:
        predict: Called with the images of one batch on a worker thread; returns one
            best-first list per image. With ``workers`` above 1 it is called from several
            threads at once (a torch model in eval mode allows that).
        max_batch_size: Most images in one call (default 32; one request larger than
            this is run alone).
        max_wait: Seconds the first request of a batch waits for others (default 0.005).
        workers: Batches run at once, each on its own thread (default 1). On a CPU,
            2 workers with one torch thread each got through small batches about 40 %
            faster than one worker with two threads (``docs/performance.rst``).

    Raises:
        ConfigError: ``max_batch_size`` or ``workers`` below 1, or ``max_wait`` negative.
    """

    def __init__(
        self,
        predict: PredictFn,
        *,
        max_batch_size: int = 32,
        max_wait: float = 0.005,
        workers: int = 1,
    ) -> None:
        if max_batch_size < 1:
            raise ConfigError(f"max_batch_size must be at least 1, got {max_batch_size}")
        if max_wait < 0:
            raise ConfigError(f"max_wait must be at least 0 seconds, got {max_wait}")
        if workers < 1:
            raise ConfigError(f"workers must be at least 1, got {workers}")
        self._predict = predict
        self.max_batch_size = max_batch_size
        self.max_wait = max_wait
        self.workers = workers
        self._slots: asyncio.Semaphore | None = None
        self._running: set[asyncio.Task[None]] = set()
        self.stats = BatchStats()
        self._lock = threading.Lock()
        self._queue: asyncio.Queue[_Item] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._carry: _Item | None = None
        self._incoming = 0

    def __repr__(self) -> str:
        return (
            f"DynamicBatcher(max_batch_size={self.max_batch_size}, max_wait={self.max_wait}, "
            f"workers={self.workers})"
        )

    async def start(self) -> None:
        """Start the worker on the running event loop (idempotent)."""
        if self._worker is not None:
            return
        self._queue = asyncio.Queue()
        self._slots = asyncio.Semaphore(self.workers)
        self._executor = ThreadPoolExecutor(
            max_workers=self.workers, thread_name_prefix="redditvision-model"
        )
        self._worker = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Stop the worker; requests still queued fail with ``UNAVAILABLE`` (idempotent)."""
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker
        if self._running:  # batches already on the model finish and are answered
            await asyncio.gather(*self._running, return_exceptions=True)
        if self._queue is not None:
            while not self._queue.empty():
                item = self._queue.get_nowait()
                if not item.future.done():
                    item.future.set_exception(PredictionError("the server is shutting down"))
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    @property
    def incoming_requests(self) -> int:
        """Requests on their way now (inside :meth:`incoming`); served on the metadata route."""
        return self._incoming

    @contextlib.contextmanager
    def incoming(self) -> Iterator[None]:
        """Mark a request on its way, from its headers until it calls :meth:`predict`.

        A batch waits up to ``max_wait`` for more requests only while some are marked, so
        wrap the reading and parsing of a request's body in this (the app does).

        Example:
            >>> with batcher.incoming():  # doctest: +SKIP
            ...     images = parse(await request.body())
            >>> answers = await batcher.predict(images)  # doctest: +SKIP
        """
        self._incoming += 1
        try:
            yield
        finally:
            self._incoming -= 1

    async def predict(self, images: Sequence[bytes]) -> list[list[Prediction]]:
        """Predict ``images`` in the next batch.

        Args:
            images: Encoded images of one request.

        Returns:
            Every label's prediction for each image, best first.

        Raises:
            PredictionError: The model failed on these images, or the batcher is stopped.
        """
        if self._queue is None or self._worker is None:
            raise PredictionError("the batcher is not running")
        future: asyncio.Future[list[list[Prediction]]] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Item(images=images, future=future))
        return await future

    async def _next(self, timeout: float) -> _Item | None:
        assert self._queue is not None
        if self._carry is not None:
            item, self._carry = self._carry, None
            return item
        if timeout <= 0:
            try:
                return self._queue.get_nowait()
            except asyncio.QueueEmpty:
                return None
        try:
            return await asyncio.wait_for(self._queue.get(), timeout)
        except TimeoutError:
            return None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        assert self._queue is not None
        assert self._slots is not None
        while True:
            # A free worker first: while all are busy, requests queue and the batch fills.
            await self._slots.acquire()
            try:
                first = self._carry or await self._queue.get()
            except BaseException:
                self._slots.release()
                raise
            self._carry = None
            batch = [first]
            count = len(first.images)
            deadline = loop.time() + self.max_wait
            while count < self.max_batch_size:
                expected = self._incoming > 0  # other requests are still being read
                item = await self._next(deadline - loop.time() if expected else 0.0)
                if item is None:
                    break
                if count + len(item.images) > self.max_batch_size:
                    self._carry = item
                    break
                batch.append(item)
                count += len(item.images)
            live = [item for item in batch if not item.future.done()]
            if not live:
                self._slots.release()
                continue
            task = loop.create_task(self._answer_then_release(loop, live))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _answer_then_release(
        self, loop: asyncio.AbstractEventLoop, batch: list[_Item]
    ) -> None:
        assert self._slots is not None
        try:
            await self._answer(loop, batch)
        finally:
            self._slots.release()

    async def _call(
        self, loop: asyncio.AbstractEventLoop, images: list[bytes]
    ) -> list[list[Prediction]]:
        assert self._executor is not None
        result = await loop.run_in_executor(self._executor, self._predict, images)
        with self._lock:
            self.stats.batches += 1
            self.stats.images += len(images)
            self.stats.largest_batch = max(self.stats.largest_batch, len(images))
        return result

    async def _answer(self, loop: asyncio.AbstractEventLoop, batch: list[_Item]) -> None:
        images = [image for item in batch for image in item.images]
        try:
            results = await self._call(loop, images)
        except PredictionError as exc:
            if len(batch) == 1:
                self._settle(batch[0], exc)
                return
            # One request's bad image must not fail the others: answer each alone.
            for item in batch:
                try:
                    self._settle(item, await self._call(loop, list(item.images)))
                except PredictionError as alone:
                    self._settle(item, alone)
            return
        except Exception as exc:  # noqa: BLE001 - the model's failure goes to each caller
            for item in batch:
                self._settle(item, exc)
            return
        start = 0
        for item in batch:
            self._settle(item, results[start : start + len(item.images)])
            start += len(item.images)

    def _settle(self, item: _Item, outcome: list[list[Prediction]] | BaseException) -> None:
        with self._lock:
            self.stats.requests += 1
        if item.future.done():
            return
        if isinstance(outcome, BaseException):
            item.future.set_exception(outcome)
        else:
            item.future.set_result(outcome)
