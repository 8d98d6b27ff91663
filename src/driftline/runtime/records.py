"""One record through a stage: parse it, attempt it, and act on the verdict of a failure.

Succeeds, fails the mission (permanent error), waits out an outage of a dependency
without spending attempts (up to a budget), retries with backoff, or gives the record
up to the dead-letter topic. Bookkeeping (a failure record, a DLQ send) is retried until
it succeeds: the record's offset is not committed meanwhile, so a crash loses nothing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any, Protocol

import structlog
from aiokafka import ConsumerRecord
from opentelemetry.trace import SpanKind

from driftline.contracts.envelope import Envelope, parse_record
from driftline.contracts.events import EventData
from driftline.contracts.missions import utcnow
from driftline.errors import PermanentError, UnparseableRecordError
from driftline.runtime import metrics
from driftline.runtime.dead_letters import Failure
from driftline.runtime.retry import (
    ExponentialRetry,
    OutageBudget,
    Verdict,
    as_permanent,
    classify,
)
from driftline.runtime.stage import Stage
from driftline.telemetry import span_from

log = structlog.get_logger("driftline.runner")


class Effects(Protocol):
    """Applies an event's effect exactly once, or records the mission's failure."""

    async def apply(self, envelope: Envelope[EventData]) -> None: ...

    async def fail(self, envelope: Envelope[EventData], exc: PermanentError) -> None: ...

    async def hold(self, envelope: Envelope[EventData], why: str) -> None: ...


class DeadLetters(Protocol):
    """Where a record goes when it gives up."""

    async def send(self, record: ConsumerRecord[bytes, bytes], failure: Failure) -> None: ...


class RecordHandler:
    """Handles one record of a stage's input topic to a final outcome."""

    def __init__(
        self,
        stage: Stage[Any],
        effects: Effects,
        dead_letters: DeadLetters,
        retry: ExponentialRetry,
        outage: OutageBudget,
    ) -> None:
        self.stage = stage
        self._effects = effects
        self._dead_letters = dead_letters
        self._retry = retry
        self._outage = outage

    async def handle(self, record: ConsumerRecord[bytes, bytes]) -> None:
        try:
            envelope = parse_record(record.headers, record.value)
            if not isinstance(envelope.data, self.stage.consumes):
                raise UnparseableRecordError(f"{self.stage.name} does not consume {envelope.type}")
        except UnparseableRecordError as exc:
            now = utcnow()
            await self._until_done(
                partial(self._dead_letters.send, record, Failure(exc, 1, now, now))
            )
            return
        with (
            span_from(
                f"{self.stage.name} process",
                envelope.traceparent,
                kind=SpanKind.CONSUMER,
                **{
                    "messaging.system": "kafka",
                    "messaging.destination.name": record.topic,
                    "messaging.kafka.partition": record.partition,
                    "messaging.kafka.offset": record.offset,
                    "messaging.message.id": str(envelope.id),
                    "driftline.mission_id": envelope.subject,
                },
            ),
            _log_fields(
                mission_id=envelope.subject, stage=self.stage.name, event_id=str(envelope.id)
            ),
        ):
            await self._attempt(record, envelope)

    async def _attempt(
        self, record: ConsumerRecord[bytes, bytes], envelope: Envelope[EventData]
    ) -> None:
        """Apply until it succeeds, fails the mission, or gives up to the dead-letter topic."""
        attempt = outages = 0
        first_failure = utcnow()
        outage_since: float | None = None
        while True:
            started = time.perf_counter()
            try:
                await self._effects.apply(envelope)
                metrics.STAGE_LATENCY.labels(self.stage.name, "ok").observe(
                    time.perf_counter() - started
                )
                return
            except Exception as exc:
                error = exc
            verdict = classify(error)
            if verdict is Verdict.FAIL:
                failed = as_permanent(error)
                await self._until_done(partial(self._effects.fail, envelope, failed))
                return
            if verdict is Verdict.OUTAGE:
                outage_since = outage_since or time.monotonic()
                if not self._outage.spent(time.monotonic() - outage_since):
                    outages += 1
                    metrics.OUTAGE_PAUSES.labels(self.stage.name, type(error).__name__).inc()
                    await self._wait(
                        envelope, error, self._outage.delay(self._retry, outages), "outage"
                    )
                    continue
            attempt += 1
            if self._retry.exhausted(attempt):
                failure = Failure(error, attempt, first_failure, utcnow())
                log.error(
                    "runner.dead_letter",
                    stage=self.stage.name,
                    mission=envelope.subject,
                    attempts=attempt,
                    error=repr(error),
                )
                await self._until_done(partial(self._dead_letters.send, record, failure))
                why = held_because(failure, record.topic)
                await self._until_done(partial(self._effects.hold, envelope, why))
                return
            metrics.STAGE_RETRIES.labels(self.stage.name).inc()
            await self._wait(envelope, error, self._retry.delay(attempt), "retry")

    async def _wait(
        self, envelope: Envelope[EventData], error: Exception, delay: float, why: str
    ) -> None:
        log.warning(
            f"runner.{why}",
            stage=self.stage.name,
            mission=envelope.subject,
            delay_s=round(delay, 2),
            error=repr(error),
        )
        await asyncio.sleep(delay)

    async def _until_done(self, action: Callable[[], Awaitable[None]]) -> None:
        """Retry a bookkeeping action (DLQ send, failure record) until it succeeds.

        The record's offset is not committed meanwhile, so nothing is lost if the
        process stops here.
        """
        attempt = 0
        while True:
            attempt += 1
            try:
                await action()
                return
            except Exception as exc:
                log.warning("runner.bookkeeping_retry", stage=self.stage.name, error=repr(exc))
                await asyncio.sleep(self._retry.delay(min(attempt, 6)))


@contextmanager
def _log_fields(**fields: str) -> Iterator[None]:
    """`logs.bound_log_context` for the hot path: the same fields on every log line of
    the record, bound and reset by token (no copy of the whole context per record)."""
    tokens = structlog.contextvars.bind_contextvars(**fields)
    try:
        yield
    finally:
        structlog.contextvars.reset_contextvars(**tokens)


def held_because(failure: Failure, topic: str) -> str:
    """The sentence a coordinator and an operator read on a held mission."""
    error = f"{type(failure.error).__name__}: {failure.error}"[:500]
    return (
        f"held after {failure.attempts} attempt(s) ({error}); the record is in {topic}.dlq "
        "and an operator was alerted; it moves on after `driftline dlq replay`"
    )
