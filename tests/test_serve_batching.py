"""The dynamic batcher on its own: workers running batches at once, the wait for company."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import pytest

from redditvision.errors import ConfigError
from redditvision.models import Prediction
from redditvision.serve import DynamicBatcher


def _echo(images: Sequence[bytes]) -> list[list[Prediction]]:
    return [
        [Prediction(label=image.decode(), score=1.0, model_label=image.decode())]
        for image in images
    ]


def test_two_workers_run_two_batches_at_once_and_answer_each_request_its_own() -> None:
    # Each call waits until another call is running too: with one worker this would time out.
    both_running = threading.Barrier(2, timeout=30)

    def predict(images: Sequence[bytes]) -> list[list[Prediction]]:
        both_running.wait()
        return _echo(images)

    async def main() -> tuple[list[list[Prediction]], list[list[Prediction]]]:
        batcher = DynamicBatcher(predict, max_batch_size=1, max_wait=0.0, workers=2)
        await batcher.start()
        try:
            return await asyncio.gather(batcher.predict([b"first"]), batcher.predict([b"second"]))
        finally:
            await batcher.stop()

    first, second = asyncio.run(main())
    assert [p.label for p in first[0]] == ["first"]
    assert [p.label for p in second[0]] == ["second"]


def test_one_worker_runs_one_batch_at_a_time() -> None:
    running = 0
    most = 0
    lock = threading.Lock()

    def predict(images: Sequence[bytes]) -> list[list[Prediction]]:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        try:
            return _echo(images)
        finally:
            with lock:
                running -= 1

    async def main() -> None:
        batcher = DynamicBatcher(predict, max_batch_size=2, max_wait=0.0, workers=1)
        await batcher.start()
        try:
            answers = await asyncio.gather(*(batcher.predict([str(i).encode()]) for i in range(12)))
        finally:
            await batcher.stop()
        assert [a[0][0].label for a in answers] == [str(i) for i in range(12)]
        assert batcher.stats.requests == 12
        assert batcher.stats.largest_batch == 2

    asyncio.run(main())
    assert most == 1


def test_stop_lets_batches_on_the_model_finish() -> None:
    started = threading.Event()
    release = threading.Event()

    def predict(images: Sequence[bytes]) -> list[list[Prediction]]:
        started.set()
        release.wait(30)
        return _echo(images)

    async def main() -> list[list[Prediction]]:
        batcher = DynamicBatcher(predict, max_batch_size=4, max_wait=0.0, workers=2)
        await batcher.start()
        pending = asyncio.ensure_future(batcher.predict([b"in-flight"]))
        await asyncio.to_thread(started.wait, 30)
        stopping = asyncio.ensure_future(batcher.stop())
        await asyncio.sleep(0)
        release.set()
        await stopping
        return await pending

    answer = asyncio.run(main())
    assert answer[0][0].label == "in-flight"


def test_bad_worker_counts_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="workers must be at least 1"):
        DynamicBatcher(_echo, workers=0)
