"""The outbox relay: publishes committed outbox rows to Kafka, in id order, then marks them.

Woken by PostgreSQL NOTIFY on `driftline_outbox`, with a polling fallback. A
session-level advisory lock keeps one active relay per database, so rows (and so each
mission's events) are published in the order they were committed. Kafka being down
only delays: rows stay unpublished until a send is acknowledged by all replicas.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable
from typing import Any

import asyncpg
import structlog
from aiokafka import AIOKafkaProducer
from opentelemetry.trace import SpanKind

from driftline.contracts.missions import utcnow
from driftline.db.repositories import PendingEvent
from driftline.db.unit_of_work import Database
from driftline.db.urls import asyncpg_dsn
from driftline.errors import TransientError
from driftline.runtime import metrics
from driftline.runtime.kafka import bounded, create_topics, new_producer
from driftline.runtime.lifecycle import sleep_or_stop
from driftline.settings import Settings
from driftline.telemetry import current_traceparent, span_from

log = structlog.get_logger("driftline.relay")

RELAY_LOCK_ID = 0x44524946  # "DRIF"
NOTIFY_CHANNEL = "driftline_outbox"


class OutboxRelay:
    """Moves outbox rows to Kafka; run one per deployment (extra ones stand by)."""

    def __init__(
        self,
        settings: Settings,
        database: Database,
        *,
        batch_size: int = 1000,
        poll_interval_s: float = 1.0,
        producer_factory: Callable[[], AIOKafkaProducer] | None = None,
    ) -> None:
        self._settings = settings
        self._db = database
        self._batch_size = batch_size
        self._poll_interval_s = poll_interval_s
        self._producer_factory = producer_factory or (
            lambda: new_producer(settings, client_id="driftline-relay")
        )
        self._wake = asyncio.Event()
        self.published = 0

    async def run(self, stop: asyncio.Event) -> None:
        """Publish until `stop` is set; survives Kafka and PostgreSQL outages."""
        lock_conn = await self._hold_leadership(stop)
        if lock_conn is None:
            return
        producer: AIOKafkaProducer | None = None
        backoff = self._settings.retry_backoff_s
        try:
            while not stop.is_set():
                if lock_conn.is_closed():
                    # PostgreSQL restarted: the lock went with the connection. Publish
                    # nothing until leadership is ours again, or two relays could interleave.
                    log.warning("relay.leadership_lost")
                    lock_conn = await self._hold_leadership(stop)
                    if lock_conn is None:
                        return
                try:
                    if producer is None:
                        # Topics first, so none is auto-created with the broker's defaults.
                        await create_topics(self._settings)
                        producer = self._producer_factory()
                        await bounded(
                            producer.start(), self._settings.kafka_request_timeout_s, "start"
                        )
                    # Cleared before reading, so a NOTIFY that arrives while this round
                    # publishes starts the next round at once instead of a poll later.
                    self._wake.clear()
                    await self.publish_available(producer)
                    backoff = self._settings.retry_backoff_s
                except (TransientError, OSError, asyncpg.PostgresError) as exc:
                    log.warning("relay.retry", error=str(exc), backoff_s=round(backoff, 2))
                    if producer is not None:
                        await _close_quietly(producer)
                        producer = None
                    await sleep_or_stop(stop, backoff * (0.8 + 0.4 * random.random()))
                    # An outage, never the row's fault: poll as the runners do, so
                    # publishing resumes within DRIFTLINE_OUTAGE_POLL_MAX_S of the return.
                    backoff = min(backoff * 2, self._settings.outage_poll_max_s)
                    continue
                await self._wait_for_work(stop)
        finally:
            if producer is not None:
                await _close_quietly(producer)
            if lock_conn is not None:
                await lock_conn.close()

    async def publish_available(self, producer: AIOKafkaProducer) -> int:
        """Publish every unpublished row, oldest first; returns how many.

        Pipelined: batch k+1 is read and handed to the producer while batch k is being
        acknowledged and marked, so PostgreSQL and Kafka round trips overlap. The
        producer keeps its sends in order (idempotent, one connection per broker), so
        rows still reach each partition in id order. Each round starts from the oldest
        unpublished row again, so a transaction that committed a lower id late is
        picked up on the next round (as before: it was never skipped, only later).
        """
        total = 0
        after: int | None = None
        confirming: asyncio.Task[int] | None = None
        try:
            while True:
                async with self._db.unit_of_work() as uow:
                    rows = await uow.outbox.unpublished(self._batch_size, after=after)
                if not rows:
                    break
                pending = await bounded(
                    self._send_all(producer, rows), self._settings.kafka_request_timeout_s, "send"
                )
                if confirming is not None:
                    total += await confirming
                confirming = asyncio.create_task(self._confirm(rows, pending))
                after = rows[-1].id
                if len(rows) < self._batch_size:
                    break
        finally:
            if confirming is not None:
                total += await confirming
        if total == 0:
            metrics.OUTBOX_BACKLOG.set(0)
        return total

    async def _confirm(self, rows: list[PendingEvent], pending: list[asyncio.Future[Any]]) -> int:
        """Wait until Kafka has every row of a batch (all replicas), then mark them."""
        timeout = self._settings.kafka_request_timeout_s
        await bounded(asyncio.gather(*pending), timeout, "delivery")
        async with self._db.unit_of_work() as uow:
            await uow.outbox.mark_published([r.id for r in rows], utcnow())
        self.published += len(rows)
        metrics.OUTBOX_PUBLISHED.inc(len(rows))
        log.debug("relay.published", count=len(rows))
        return len(rows)

    async def _send(self, producer: AIOKafkaProducer, row: PendingEvent) -> asyncio.Future[Any]:
        """Hand one row to the producer inside its publish span, which becomes the parent
        of the consumer's span (the row's stored `traceparent` is this span's parent)."""
        with span_from(
            f"publish {row.topic}",
            row.headers.get("traceparent"),
            kind=SpanKind.PRODUCER,
            **{"messaging.system": "kafka", "messaging.destination.name": row.topic},
        ):
            headers = {**row.headers, "traceparent": current_traceparent() or ""}
            encoded = [(k, v.encode()) for k, v in headers.items()]
            send = producer.send(
                row.topic, row.payload.encode(), key=row.key.encode(), headers=encoded
            )
            future: asyncio.Future[Any] = await send
            return future

    async def _send_all(
        self, producer: AIOKafkaProducer, rows: list[PendingEvent]
    ) -> list[asyncio.Future[Any]]:
        """Hand a batch to the producer, in order, bounded as a whole: a send waits only
        when the producer's buffer is full or a topic's metadata is missing, and one
        deadline per batch keeps each send off the event loop's queue."""
        return [await self._send(producer, row) for row in rows]

    async def _hold_leadership(self, stop: asyncio.Event) -> asyncpg.Connection | None:
        """Take the relay advisory lock (waiting as standby) and listen for NOTIFY."""
        dsn = asyncpg_dsn(self._settings.database_url)
        while not stop.is_set():
            try:
                conn = await asyncio.wait_for(asyncpg.connect(dsn), 10)
                if await conn.fetchval("SELECT pg_try_advisory_lock($1)", RELAY_LOCK_ID):
                    await conn.add_listener(NOTIFY_CHANNEL, self._on_notify)
                    log.info("relay.leader")
                    return conn
                await conn.close()
            except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
                log.warning("relay.db_unavailable", error=str(exc))
            await sleep_or_stop(stop, self._poll_interval_s * 2)
        return None

    def _on_notify(self, *_: Any) -> None:
        self._wake.set()

    async def _wait_for_work(self, stop: asyncio.Event) -> None:
        stop_wait = asyncio.ensure_future(stop.wait())
        wake_wait = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait(
                {stop_wait, wake_wait},
                timeout=self._poll_interval_s,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            stop_wait.cancel()
            wake_wait.cancel()


async def _close_quietly(producer: AIOKafkaProducer) -> None:
    with contextlib.suppress(Exception):
        await asyncio.wait_for(producer.stop(), 5)
