"""Group commit: requests made together share one flush; each gets its own answer."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Sequence

import pytest

from driftline.runtime.batching import Batcher


class Recorder:
    def __init__(self, fail_on: set[int] | None = None, delay_s: float = 0.0) -> None:
        self.flushes: list[list[int]] = []
        self.fail_on = fail_on or set()
        self.delay_s = delay_s

    async def flush(self, items: Sequence[int]) -> list[int | BaseException]:
        self.flushes.append(list(items))
        await asyncio.sleep(self.delay_s)
        return [ValueError(i) if i in self.fail_on else i * 10 for i in items]


async def test_requests_made_together_share_one_flush() -> None:
    recorder = Recorder()
    batcher: Batcher[int, int] = Batcher(recorder.flush)
    results = await asyncio.gather(*(batcher.submit(i) for i in range(50)))
    assert results == [i * 10 for i in range(50)]
    assert recorder.flushes == [list(range(50))]
    assert batcher.batches == 1


async def test_a_lone_request_is_flushed_at_once() -> None:
    recorder = Recorder()
    batcher: Batcher[int, int] = Batcher(recorder.flush)
    assert await asyncio.wait_for(batcher.submit(7), 1) == 70
    assert recorder.flushes == [[7]]


async def test_requests_arriving_during_a_flush_form_the_next_batch() -> None:
    recorder = Recorder(delay_s=0.05)
    batcher: Batcher[int, int] = Batcher(recorder.flush)
    first = asyncio.create_task(batcher.submit(0))
    await asyncio.sleep(0.01)  # the first flush is under way
    later = await asyncio.gather(*(batcher.submit(i) for i in range(1, 6)))
    assert await first == 0 and later == [10, 20, 30, 40, 50]
    assert recorder.flushes == [[0], [1, 2, 3, 4, 5]]


async def test_each_caller_gets_its_own_exception() -> None:
    recorder = Recorder(fail_on={3})
    batcher: Batcher[int, int] = Batcher(recorder.flush)
    results = await asyncio.gather(*(batcher.submit(i) for i in range(5)), return_exceptions=True)
    assert results[:3] == [0, 10, 20] and results[4] == 40
    assert isinstance(results[3], ValueError)


async def test_batches_are_capped() -> None:
    recorder = Recorder()
    batcher: Batcher[int, int] = Batcher(recorder.flush, max_batch=4)
    await asyncio.gather(*(batcher.submit(i) for i in range(10)))
    assert [len(f) for f in recorder.flushes] == [4, 4, 2]


async def test_a_failing_flush_fails_its_batch_only() -> None:
    calls = 0

    async def flush(items: Sequence[int]) -> list[int | BaseException]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("database gone")
        return list(items)

    batcher: Batcher[int, int] = Batcher(flush)
    with pytest.raises(RuntimeError):
        await asyncio.gather(*(batcher.submit(i) for i in range(3)))
    assert await batcher.submit(9) == 9


async def test_a_cancelled_caller_is_skipped() -> None:
    recorder = Recorder(delay_s=0.05)
    batcher: Batcher[int, int] = Batcher(recorder.flush)
    busy = asyncio.create_task(batcher.submit(0))
    await asyncio.sleep(0.01)
    gone = asyncio.create_task(batcher.submit(1))
    kept = asyncio.create_task(batcher.submit(2))
    await asyncio.sleep(0)
    gone.cancel()
    assert await kept == 20 and await busy == 0
    assert recorder.flushes == [[0], [2]]


async def test_the_flush_does_not_run_in_a_callers_context() -> None:
    marker: contextvars.ContextVar[str] = contextvars.ContextVar("marker", default="none")
    seen: list[str] = []

    async def flush(items: Sequence[int]) -> list[int | BaseException]:
        seen.append(marker.get())  # e.g. one mission's log fields on every record's log
        return list(items)

    batcher: Batcher[int, int] = Batcher(flush)

    async def caller(i: int) -> int:
        marker.set(f"caller {i}")
        return await batcher.submit(i)

    assert await asyncio.gather(*(caller(i) for i in range(3))) == [0, 1, 2]
    assert seen == ["none"]


async def test_callers_are_released_when_the_flush_is_cancelled() -> None:
    started = asyncio.Event()

    async def flush(items: Sequence[int]) -> list[int | BaseException]:
        started.set()
        await asyncio.sleep(3600)
        return list(items)

    batcher: Batcher[int, int] = Batcher(flush)
    waiting = [asyncio.create_task(batcher.submit(i)) for i in range(3)]
    await started.wait()
    late = asyncio.create_task(batcher.submit(9))  # queued behind the stuck flush
    await asyncio.sleep(0)
    assert batcher._task is not None
    batcher._task.cancel()
    done = await asyncio.wait_for(asyncio.gather(*waiting, late, return_exceptions=True), 2)
    assert all(isinstance(r, asyncio.CancelledError) for r in done)


async def test_close_waits_for_the_batch_in_flight_but_not_forever() -> None:
    recorder = Recorder(delay_s=0.05)
    batcher: Batcher[int, int] = Batcher(recorder.flush)
    quick = asyncio.create_task(batcher.submit(1))
    await asyncio.sleep(0.01)
    await batcher.close(timeout_s=5)
    assert quick.done() and quick.result() == 10

    stuck: Batcher[int, int] = Batcher(Recorder(delay_s=3600).flush)
    caller = asyncio.create_task(stuck.submit(1))
    await asyncio.sleep(0.01)
    await asyncio.wait_for(stuck.close(timeout_s=0.1), 2)
    with pytest.raises(asyncio.CancelledError):
        await caller
