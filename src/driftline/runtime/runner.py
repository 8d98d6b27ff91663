"""The one stage runner: consume, hand each record to its lane, commit what is finished.

The concerns live beside it: `offsets` (lanes and commit points, pure code), `apply`
(the exactly-once transaction), `retry` (verdict and backoff policies), `dead_letters`
(the DLQ headers and publisher). What the runner itself guarantees (docs/contract.md):

* a partition's offset is committed only past records whose effect has committed, so
  a crash at any point re-delivers and never loses;
* one mission's records are handled in order, different missions concurrently;
* an outage of a dependency waits (without spending attempts, up to a budget), another
  transient error is retried with backoff then dead-lettered, a permanent one fails the
  mission at once, and an unreadable record goes straight to the dead-letter topic.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeAlias

import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from aiokafka.structs import OffsetAndMetadata

from driftline.contracts.topics import consumer_group, topic
from driftline.db.unit_of_work import Database
from driftline.errors import TransientError
from driftline.runtime import metrics
from driftline.runtime.apply import ExactlyOnce
from driftline.runtime.dead_letters import DeadLetterPublisher
from driftline.runtime.kafka import bounded, create_topics, new_consumer
from driftline.runtime.lifecycle import sleep_or_stop
from driftline.runtime.offsets import Lane, Lanes, OffsetTracker
from driftline.runtime.records import RecordHandler
from driftline.runtime.retry import ExponentialRetry, OutageBudget
from driftline.runtime.stage import Stage
from driftline.settings import Settings

log = structlog.get_logger("driftline.runner")

Record: TypeAlias = "ConsumerRecord[bytes, bytes]"
LaneKey: TypeAlias = tuple[TopicPartition, bytes]
#: Joining may wait out a crashed member's session timeout, counted from when a restarted
#: broker has loaded the group: allow for both. Giving up sooner costs more than it saves
#: (chaos run): the abandoned join leaves a member the next attempt must wait out too.
#: An unreachable Kafka fails fast anyway; this bounds only a join that hangs.
START_GRACE_S = 90.0


class _Rebalance(ConsumerRebalanceListener):
    def __init__(self, runner: StageRunner) -> None:
        self._runner = runner

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        await self._runner.on_revoked(set(revoked))

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        log.info("runner.assigned", stage=self._runner.stage.name, partitions=len(assigned))


class StageRunner:
    """Runs one stage against its input topic until stopped."""

    def __init__(
        self,
        stage: Stage[Any],
        settings: Settings,
        database: Database,
        dependencies: Mapping[str, Any],
        *,
        drain_timeout_s: float = 30.0,
        consumer_factory: Callable[[], AIOKafkaConsumer] | None = None,
    ) -> None:
        self.stage = stage
        self._settings = settings
        self._drain_timeout_s = drain_timeout_s
        self.group = consumer_group(settings.topic_prefix, stage.name)
        self.input_topic = topic(settings.topic_prefix, stage.consumes.topic)
        self._dead_letters = DeadLetterPublisher(settings, stage=stage.name, group=self.group)
        effects = stage.effects or ExactlyOnce
        self._effects = effects(stage.name, self.group, database, stage.bind(dependencies))
        self._records = RecordHandler(
            stage,
            self._effects,
            self._dead_letters,
            ExponentialRetry.from_settings(settings),
            OutageBudget(settings.outage_budget_s, settings.outage_poll_max_s),
        )
        self._consumer_factory = consumer_factory or (
            lambda: new_consumer(settings, group_id=self.group, client_id=f"driftline-{stage.name}")
        )
        self._consumer: AIOKafkaConsumer | None = None
        self._offsets: OffsetTracker[TopicPartition] = OffsetTracker()
        self._lanes: Lanes[TopicPartition, Record] = Lanes()
        self._tasks: dict[LaneKey, asyncio.Task[None]] = {}
        self.processed = 0

    # -- lifecycle ----------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until `stop` is set, then drain in-flight work, commit and leave the group."""
        consumer = self._consumer = await self._connect(stop)
        if consumer is None:
            return
        log.info("runner.started", stage=self.stage.name, topic=self.input_topic, group=self.group)
        try:
            while not stop.is_set():
                batches = await consumer.getmany(timeout_ms=300, max_records=200)
                for tp, records in batches.items():
                    for record in records:
                        self._dispatch(tp, record)
                await self._commit_finished()
                self._report_progress(consumer)
                pause, resume = self._offsets.backpressure()
                consumer.pause(*pause)
                consumer.resume(*resume)
            await self._finish(list(self._tasks.values()), self._drain_timeout_s)
        finally:
            await self._effects.close()
            await self._commit_finished()
            timeout = self._settings.kafka_request_timeout_s
            with contextlib.suppress(Exception):
                await asyncio.wait_for(consumer.stop(), timeout)
            with contextlib.suppress(Exception):
                await self._dead_letters.close()
            log.info("runner.stopped", stage=self.stage.name, processed=self.processed)

    async def _connect(self, stop: asyncio.Event) -> AIOKafkaConsumer | None:
        """A started, subscribed consumer; retried while Kafka is away. None if stopped."""
        timeout = self._settings.kafka_request_timeout_s
        while not stop.is_set():
            consumer: AIOKafkaConsumer | None = None
            try:
                await create_topics(self._settings)
                consumer = self._consumer_factory()
                consumer.subscribe([self.input_topic], listener=_Rebalance(self))
                await bounded(consumer.start(), timeout + START_GRACE_S, "consumer start")
                return consumer
            except TransientError as exc:
                if consumer is not None:  # left running, it would keep partitions unread
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(consumer.stop(), timeout)
                log.warning("runner.start_retry", stage=self.stage.name, error=str(exc))
                await sleep_or_stop(stop, self._settings.outage_poll_max_s)
        return None

    async def _finish(self, tasks: list[asyncio.Task[None]], timeout_s: float) -> None:
        """Let lanes finish; what does not finish in time is cancelled and redelivered later."""
        if not tasks:
            return
        _done, still = await asyncio.wait(tasks, timeout=timeout_s)
        for task in still:
            task.cancel()
        await asyncio.gather(*still, return_exceptions=True)

    async def on_revoked(self, revoked: set[TopicPartition]) -> None:
        tasks = [task for key, task in self._tasks.items() if key[0] in revoked]
        await self._finish(tasks, min(self._drain_timeout_s, 10.0))
        await self._commit_finished()
        self._offsets.forget(revoked)
        log.info("runner.revoked", stage=self.stage.name, partitions=len(revoked))

    def _report_progress(self, consumer: AIOKafkaConsumer) -> None:
        """Records in flight and, per assigned partition, lag and the oldest record's age."""
        metrics.RECORDS_IN_FLIGHT.labels(self.stage.name).set(self._offsets.unfinished())
        now = time.time()
        for tp in consumer.assignment():
            end = consumer.highwater(tp)
            committed, oldest = self._offsets.position(tp)
            labels = (self.group, tp.topic, str(tp.partition))
            if end is not None and committed is not None:
                metrics.CONSUMER_LAG.labels(*labels).set(max(end - committed, 0))
            age = max(now - oldest, 0.0) if oldest else 0.0
            metrics.CONSUMER_OLDEST_AGE.labels(*labels).set(age)

    # -- lanes and offsets --------------------------------------------------------------

    def _dispatch(self, tp: TopicPartition, record: Record) -> None:
        self._offsets.dispatched(tp, record.offset, record.timestamp / 1000)
        started = self._lanes.add(tp, record.key or b"", record)
        if started is not None:
            lane_key, lane = started
            self._tasks[lane_key] = asyncio.create_task(self._run_lane(lane_key, lane))

    async def _run_lane(self, lane_key: LaneKey, lane: Lane[Record]) -> None:
        try:
            while lane.records:
                record = lane.records[0]
                await self._records.handle(record)
                self.processed += 1  # every record handled: applied, skipped, failed, DLQ
                lane.records.popleft()
                self._offsets.finished(lane_key[0], record.offset)
        finally:
            self._lanes.done(lane_key, lane)
            self._tasks.pop(lane_key, None)

    async def _commit_finished(self) -> None:
        due = self._offsets.commits_due()
        if self._consumer is None or not due:
            return
        offsets = {tp: OffsetAndMetadata(offset, "") for tp, offset in due.items()}
        timeout = self._settings.kafka_request_timeout_s
        try:
            await bounded(self._consumer.commit(offsets), timeout, "commit")
        except (TransientError, CommitFailedError, IllegalStateError, KafkaError) as exc:
            # Not fatal: uncommitted records are redelivered and their effects are idempotent.
            log.warning("runner.commit_failed", stage=self.stage.name, error=str(exc))
            return
        self._offsets.committed(due)
