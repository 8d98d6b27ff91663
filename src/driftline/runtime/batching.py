"""Group commit: requests that arrive together share one transaction.

Lanes run concurrently, each awaiting its own record's check and commit. A `Batcher`
collects the requests made while it is busy (or within the same event-loop turn) and
hands them to one call of its `flush`, which answers each request separately. Under a
single request it costs nothing (a batch of one, no waiting); under a backlog the
batches grow by themselves, so the per-transaction round trips are shared by every
record in the batch. Each caller still gets its own result or exception, and nothing
is acknowledged before the batch's transaction has committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

#: One entry per item, in order: its result, or the exception it should raise.
Flush = Callable[[Sequence[T]], Awaitable[Sequence[R | BaseException]]]


class Batcher(Generic[T, R]):
    """Runs the items submitted together through one call of `flush`."""

    def __init__(self, flush: Flush[T, R], *, max_batch: int = 500) -> None:
        self._flush = flush
        self._max_batch = max_batch
        self._queue: list[tuple[T, asyncio.Future[R]]] = []
        self._task: asyncio.Task[None] | None = None
        self.batches = 0  # flushes made (for benchmarks and tests)

    async def submit(self, item: T) -> R:
        """`item`'s own result once its batch is done (or its own exception)."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        if self._task is None or self._task.done():
            # A context of its own: not the first caller's span or log fields.
            self._task = asyncio.create_task(self._drain(), context=contextvars.Context())
        return await future

    async def _drain(self) -> None:
        await asyncio.sleep(0)  # let the lanes woken in this loop turn join the batch
        while self._queue:
            batch = self._queue[: self._max_batch]
            del self._queue[: self._max_batch]
            live = [(item, future) for item, future in batch if not future.done()]
            if not live:
                continue
            self.batches += 1
            try:
                results: Sequence[R | BaseException] = await self._flush([i for i, _ in live])
            except Exception as exc:  # flush answers per item; this is its own failure
                results = [exc] * len(live)
            except BaseException:  # cancelled (shutdown): no caller may wait forever
                for _item, future in live + self._queue:
                    future.cancel()
                self._queue.clear()
                raise
            for (_item, future), result in zip(live, results, strict=True):
                if future.done():  # its caller was cancelled meanwhile
                    continue
                if isinstance(result, BaseException):
                    future.set_exception(result)
                else:
                    future.set_result(result)

    async def close(self, timeout_s: float = 10.0) -> None:
        """Let the batch in flight finish (its callers may be gone; its effects are not),
        at most `timeout_s`: then it is cancelled, and rolls back (nothing acknowledged,
        so its records are redelivered)."""
        if self._task is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(self._task, timeout_s)
