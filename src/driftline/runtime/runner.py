"""The one stage runner: consume, apply exactly once, retry, dead-letter, commit.

How it keeps the guarantees of DESIGN.md:

* Records are dispatched to *lanes*, one per (partition, mission id). A lane handles its
  records one after another, so one mission's events never reorder; different missions
  run concurrently, so a mission waiting for a retry never holds up another.
* A partition's committed offset only advances past records that are finished (the
  lowest unfinished offset is the commit point), and only after the stage's transaction
  committed: a crash at any point re-delivers, never loses.
* The effect, the processed-event id and the emitted events (outbox rows) commit in one
  PostgreSQL transaction, so a redelivered event changes nothing.
* The class of the error decides: `PermanentError` fails the mission at once,
  `UnparseableRecordError` goes straight to the dead-letter topic, anything else is
  retried with backoff and dead-lettered after `max_attempts`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from aiokafka.structs import OffsetAndMetadata

from driftline.contracts.envelope import Envelope, follow, parse_record
from driftline.contracts.events import EventData
from driftline.contracts.missions import MissionStatus, utcnow
from driftline.contracts.topics import dlq_topic, topic
from driftline.db.unit_of_work import Database
from driftline.errors import PermanentError, TransientError, UnparseableRecordError
from driftline.runtime import metrics
from driftline.runtime.kafka import bounded, create_topics, new_consumer, new_producer
from driftline.runtime.lifecycle import sleep_or_stop
from driftline.runtime.stage import Stage, StageContext
from driftline.settings import Settings

log = structlog.get_logger("driftline.runner")

FINAL_STATUSES = {s.value for s in MissionStatus if s.is_final}
PAUSE_ABOVE = 500
START_GRACE_S = 40.0
RESUME_BELOW = 250


def consumer_group_for(settings: Settings, stage: str) -> str:
    """`driftline.<stage>` with the default prefix; tests' own prefixes keep groups apart."""
    return f"{settings.topic_prefix}{stage}"


def backoff_delay(settings: Settings, attempt: int) -> float:
    """Exponential backoff with jitter, capped."""
    base = settings.retry_backoff_s * (2 ** (attempt - 1))
    return min(base, settings.retry_backoff_max_s) * (0.8 + 0.4 * random.random())


@dataclass
class _Partition:
    pending: set[int] = field(default_factory=set)
    next_offset: int | None = None  # one past the highest dispatched offset
    committed: int | None = None


@dataclass
class _Lane:
    records: deque[ConsumerRecord[bytes, bytes]] = field(default_factory=deque)
    task: asyncio.Task[None] | None = None


class _Rebalance(ConsumerRebalanceListener):
    def __init__(self, runner: StageRunner) -> None:
        self._runner = runner

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        await self._runner._on_revoked(set(revoked))

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        log.info("runner.assigned", stage=self._runner.stage.name, partitions=len(assigned))


class StageRunner:
    """Runs one stage against its input topic until stopped."""

    def __init__(
        self,
        stage: Stage[Any],
        settings: Settings,
        database: Database,
        context: StageContext,
        *,
        drain_timeout_s: float = 30.0,
        consumer_factory: Callable[[], AIOKafkaConsumer] | None = None,
    ) -> None:
        self.stage = stage
        self._settings = settings
        self._db = database
        self._ctx = context
        self._drain_timeout_s = drain_timeout_s
        self.group = consumer_group_for(settings, stage.name)
        self.input_topic = topic(settings.topic_prefix, stage.consumes.topic)
        self._consumer_factory = consumer_factory or (
            lambda: new_consumer(settings, group_id=self.group, client_id=f"driftline-{stage.name}")
        )
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        self._partitions: dict[TopicPartition, _Partition] = {}
        self._lanes: dict[tuple[TopicPartition, bytes], _Lane] = {}
        self._paused: set[TopicPartition] = set()
        self.processed = 0

    # -- lifecycle ----------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until `stop` is set, then drain in-flight work, commit and leave the group."""
        timeout = self._settings.kafka_request_timeout_s
        while not stop.is_set():
            try:
                await create_topics(self._settings)
            except TransientError as exc:
                log.warning("runner.start_retry", stage=self.stage.name, error=str(exc))
                await sleep_or_stop(stop, self._settings.retry_backoff_max_s)
                continue
            consumer = self._consumer_factory()
            consumer.subscribe([self.input_topic], listener=_Rebalance(self))
            try:
                # Joining may wait out a crashed member's session (30 s): allow for it.
                await bounded(consumer.start(), timeout + START_GRACE_S, "consumer start")
            except TransientError as exc:
                # A consumer left running would keep partitions nobody reads: stop it.
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(consumer.stop(), timeout)
                log.warning("runner.start_retry", stage=self.stage.name, error=str(exc))
                await sleep_or_stop(stop, self._settings.retry_backoff_max_s)
                continue
            self._consumer = consumer
            break
        if self._consumer is None:
            return
        log.info("runner.started", stage=self.stage.name, topic=self.input_topic, group=self.group)
        consumer = self._consumer
        try:
            while not stop.is_set():
                batches = await consumer.getmany(timeout_ms=300, max_records=200)
                for tp, records in batches.items():
                    for record in records:
                        self._dispatch(tp, record)
                await self._commit_finished()
                self._apply_backpressure()
            await self._drain()
        finally:
            await self._commit_finished()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(consumer.stop(), timeout)
            if self._producer is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self._producer.stop(), timeout)
            log.info("runner.stopped", stage=self.stage.name, processed=self.processed)

    async def _drain(self) -> None:
        """Let in-flight lanes finish (SIGTERM); what does not finish in time is handed back."""
        tasks = [lane.task for lane in self._lanes.values() if lane.task is not None]
        if not tasks:
            return
        _done, still = await asyncio.wait(tasks, timeout=self._drain_timeout_s)
        for task in still:
            task.cancel()
        await asyncio.gather(*still, return_exceptions=True)

    # -- dispatch and offsets -----------------------------------------------------------

    def _dispatch(self, tp: TopicPartition, record: ConsumerRecord[bytes, bytes]) -> None:
        part = self._partitions.setdefault(tp, _Partition())
        part.pending.add(record.offset)
        part.next_offset = max(part.next_offset or 0, record.offset + 1)
        lane_key = (tp, record.key or b"")
        lane = self._lanes.setdefault(lane_key, _Lane())
        lane.records.append(record)
        if lane.task is None:
            lane.task = asyncio.create_task(self._run_lane(lane_key, lane))

    async def _run_lane(self, lane_key: tuple[TopicPartition, bytes], lane: _Lane) -> None:
        tp = lane_key[0]
        try:
            while lane.records:
                record = lane.records[0]
                await self._handle(tp, record)
                self.processed += 1  # every record handled: applied, skipped, failed, DLQ
                lane.records.popleft()
                part = self._partitions.get(tp)
                if part is not None:
                    part.pending.discard(record.offset)
        finally:
            if self._lanes.get(lane_key) is lane:
                del self._lanes[lane_key]

    async def _commit_finished(self) -> None:
        consumer = self._consumer
        if consumer is None:
            return
        offsets: dict[TopicPartition, OffsetAndMetadata] = {}
        for tp, part in self._partitions.items():
            if part.next_offset is None:
                continue
            point = min(part.pending) if part.pending else part.next_offset
            if part.committed is None or point > part.committed:
                offsets[tp] = OffsetAndMetadata(point, "")
        if not offsets:
            return
        try:
            await bounded(
                consumer.commit(offsets), self._settings.kafka_request_timeout_s, "commit"
            )
        except (TransientError, CommitFailedError, IllegalStateError, KafkaError) as exc:
            # Not fatal: uncommitted records are redelivered and their effects are idempotent.
            log.warning("runner.commit_failed", stage=self.stage.name, error=str(exc))
            return
        for tp, meta in offsets.items():
            if tp in self._partitions:
                self._partitions[tp].committed = meta.offset

    def _apply_backpressure(self) -> None:
        consumer = self._consumer
        if consumer is None:
            return
        for tp, part in self._partitions.items():
            if len(part.pending) > PAUSE_ABOVE and tp not in self._paused:
                consumer.pause(tp)
                self._paused.add(tp)
            elif len(part.pending) < RESUME_BELOW and tp in self._paused:
                consumer.resume(tp)
                self._paused.discard(tp)

    async def _on_revoked(self, revoked: set[TopicPartition]) -> None:
        lanes = {k: v for k, v in self._lanes.items() if k[0] in revoked}
        tasks = [lane.task for lane in lanes.values() if lane.task is not None]
        if tasks:
            _done, still = await asyncio.wait(tasks, timeout=min(self._drain_timeout_s, 10.0))
            for task in still:
                task.cancel()
            await asyncio.gather(*still, return_exceptions=True)
        await self._commit_finished()
        for tp in revoked:
            self._partitions.pop(tp, None)
            self._paused.discard(tp)
        log.info("runner.revoked", stage=self.stage.name, partitions=len(revoked))

    # -- one record ---------------------------------------------------------------------

    async def _handle(self, tp: TopicPartition, record: ConsumerRecord[bytes, bytes]) -> None:
        try:
            envelope = parse_record(record.headers, record.value)
            if not isinstance(envelope.data, self.stage.consumes):
                raise UnparseableRecordError(
                    f"stage {self.stage.name} does not consume {envelope.type}"
                )
        except UnparseableRecordError as exc:
            now = utcnow()
            await self._until_done(functools.partial(self._dead_letter, record, exc, 1, now, now))
            return
        first_failure: datetime | None = None
        attempt = 0
        while True:
            attempt += 1
            started = time.perf_counter()
            try:
                await self._apply(envelope)
                metrics.STAGE_LATENCY.labels(self.stage.name, "ok").observe(
                    time.perf_counter() - started
                )
                return
            except PermanentError as exc:
                metrics.STAGE_LATENCY.labels(self.stage.name, "failed").observe(
                    time.perf_counter() - started
                )
                await self._until_done(functools.partial(self._record_failure, envelope, exc))
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                now = utcnow()
                first_failure = first_failure or now
                if attempt >= self._settings.max_attempts:
                    log.error(
                        "runner.dead_letter",
                        stage=self.stage.name,
                        mission=envelope.subject,
                        attempts=attempt,
                        error=repr(exc),
                    )
                    await self._until_done(
                        functools.partial(
                            self._dead_letter, record, exc, attempt, first_failure, now
                        )
                    )
                    return
                metrics.STAGE_RETRIES.labels(self.stage.name).inc()
                delay = backoff_delay(self._settings, attempt)
                log.warning(
                    "runner.retry",
                    stage=self.stage.name,
                    mission=envelope.subject,
                    attempt=attempt,
                    delay_s=round(delay, 2),
                    error=repr(exc),
                )
                await asyncio.sleep(delay)

    async def _apply(self, envelope: Envelope[EventData]) -> None:
        """Run the stage and commit its effect, exactly once per event id."""
        mission_id = envelope.data.mission_id
        async with self._db.unit_of_work() as uow:
            if await uow.was_processed(self.group, envelope.id):
                return
            mission = await uow.get_mission(mission_id)
            if mission is None:
                raise PermanentError("unknown_mission", f"mission {mission_id} does not exist")
            skip = mission.status in FINAL_STATUSES
        if skip:
            async with self._db.unit_of_work() as uow:
                await uow.claim_event(self.group, envelope.id)
            log.info("runner.skip_final", stage=self.stage.name, mission=str(mission_id))
            return
        outcome = await self.stage.run(envelope, self._ctx)
        async with self._db.unit_of_work() as uow:
            if not await uow.claim_event(self.group, envelope.id):
                return  # another consumer committed it first; ours is discarded
            mission = await uow.get_mission(mission_id, lock=True)
            if mission is None or mission.status in FINAL_STATUSES:
                return
            for data in outcome.emits:
                uow.publish(follow(data, cause=envelope, stage=self.stage.name))
            if outcome.result is not None:
                mission.result = outcome.result
            if outcome.completed:
                mission.completed_at = utcnow()
            await uow.change_status(
                mission,
                outcome.status,
                stage=self.stage.name,
                cause=envelope,
                detail=outcome.detail,
            )

    async def _record_failure(self, envelope: Envelope[EventData], exc: PermanentError) -> None:
        async with self._db.unit_of_work() as uow:
            if not await uow.claim_event(self.group, envelope.id):
                return
            mission = await uow.get_mission(envelope.data.mission_id, lock=True)
            if mission is None or mission.status in FINAL_STATUSES:
                return
            await uow.fail_mission(
                mission,
                stage=self.stage.name,
                reason=exc.reason,
                detail=exc.detail,
                cause=envelope,
            )
        metrics.MISSIONS_FAILED.labels(self.stage.name, exc.reason).inc()
        log.info(
            "runner.mission_failed",
            stage=self.stage.name,
            mission=envelope.subject,
            reason=exc.reason,
        )

    async def _dead_letter(
        self,
        record: ConsumerRecord[bytes, bytes],
        exc: BaseException,
        attempts: int,
        first_failure: datetime,
        last_failure: datetime,
    ) -> None:
        timeout = self._settings.kafka_request_timeout_s
        if self._producer is None:
            producer = new_producer(self._settings, client_id=f"driftline-{self.stage.name}-dlq")
            await bounded(producer.start(), timeout, "dlq producer start")
            self._producer = producer
        headers = [(k, v) for k, v in (record.headers or ()) if not k.startswith("dlq_")]
        headers += [
            (name, value.encode())
            for name, value in {
                "dlq_original_topic": record.topic,
                "dlq_original_partition": str(record.partition),
                "dlq_original_offset": str(record.offset),
                "dlq_consumer_group": self.group,
                "dlq_stage": self.stage.name,
                "dlq_error_type": type(exc).__name__,
                "dlq_error_message": str(exc)[:2000],
                "dlq_attempts": str(attempts),
                "dlq_first_failure_time": _rfc3339(first_failure),
                "dlq_last_failure_time": _rfc3339(last_failure),
            }.items()
        ]
        await bounded(
            self._producer.send_and_wait(
                dlq_topic(record.topic), record.value, key=record.key, headers=headers
            ),
            timeout,
            "dead-letter send",
        )
        metrics.DEAD_LETTERS.labels(self.stage.name).inc()

    async def _until_done(self, action: Callable[[], Any]) -> None:
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
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                delay = backoff_delay(self._settings, min(attempt, 6))
                log.warning("runner.bookkeeping_retry", stage=self.stage.name, error=repr(exc))
                await asyncio.sleep(delay)


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
