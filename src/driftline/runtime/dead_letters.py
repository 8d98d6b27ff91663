"""Dead letters: the `dlq_` headers written when a record gives up, and the operator's
workflow that reads them back (list, show, replay `<input topic>.dlq` records).

This module owns the header schema of docs/contract.md on both sides. Replay re-publishes a
dead letter to its original topic with its original key, value
and `ce_` headers (so `ce_id` is kept and a stage that already applied it does
nothing), then records it in `dead_letter_replays` so a second replay skips it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord

from driftline.contracts.envelope import header_map, rfc3339
from driftline.contracts.topics import dlq_topic, internal_topics, topic
from driftline.db.unit_of_work import Database
from driftline.runtime import metrics
from driftline.runtime.kafka import bounded, new_producer, topic_partitions
from driftline.settings import Settings

DLQ_PREFIX = "dlq_"
#: Longest error message kept in a header (a traceback can be huge).
MAX_ERROR_MESSAGE = 2000


@dataclass(frozen=True)
class Failure:
    """Why and when a record gave up."""

    error: BaseException
    attempts: int
    first_failure: datetime
    last_failure: datetime


def dead_letter_headers(
    record: ConsumerRecord[bytes, bytes], *, group: str, stage: str, failure: Failure
) -> list[tuple[str, bytes]]:
    """The record's own headers (minus stale `dlq_` ones) plus where and why it failed."""
    kept = [(k, v) for k, v in (record.headers or ()) if not k.startswith(DLQ_PREFIX)]
    added = {
        "original_topic": record.topic,
        "original_partition": str(record.partition),
        "original_offset": str(record.offset),
        "consumer_group": group,
        "stage": stage,
        "error_type": type(failure.error).__name__,
        "error_message": str(failure.error)[:MAX_ERROR_MESSAGE],
        "attempts": str(failure.attempts),
        "first_failure_time": rfc3339(failure.first_failure),
        "last_failure_time": rfc3339(failure.last_failure),
    }
    return kept + [(DLQ_PREFIX + name, value.encode()) for name, value in added.items()]


class DeadLetterPublisher:
    """Sends given-up records to `<input topic>.dlq` with their original key and value."""

    def __init__(self, settings: Settings, *, stage: str, group: str) -> None:
        self._settings = settings
        self._stage = stage
        self._group = group
        self._producer: AIOKafkaProducer | None = None

    async def send(self, record: ConsumerRecord[bytes, bytes], failure: Failure) -> None:
        timeout = self._settings.kafka_request_timeout_s
        if self._producer is None:
            producer = new_producer(self._settings, client_id=f"driftline-{self._stage}-dlq")
            await bounded(producer.start(), timeout, "dlq producer start")
            self._producer = producer
        headers = dead_letter_headers(record, group=self._group, stage=self._stage, failure=failure)
        await bounded(
            self._producer.send_and_wait(
                dlq_topic(record.topic), record.value, key=record.key, headers=headers
            ),
            timeout,
            "dead-letter send",
        )
        metrics.DEAD_LETTERS.labels(self._stage).inc()

    async def close(self) -> None:
        if self._producer is not None:
            await bounded(self._producer.stop(), self._settings.kafka_request_timeout_s, "stop")
            self._producer = None


@dataclass(frozen=True)
class DeadLetter:
    """One record of a dead-letter topic, with what its headers say."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]

    @property
    def attrs(self) -> dict[str, str]:
        return header_map(self.headers)

    @property
    def ref(self) -> str:
        return f"{self.topic}:{self.partition}:{self.offset}"

    @property
    def stage(self) -> str:
        return self.attrs.get("dlq_stage", "")

    @property
    def mission_id(self) -> str:
        return self.attrs.get("ce_subject") or (self.key or b"").decode("utf-8", "replace")

    @property
    def event_id(self) -> str:
        return self.attrs.get("ce_id", "")

    @property
    def failed_at(self) -> datetime | None:
        raw = self.attrs.get("dlq_last_failure_time")
        return datetime.fromisoformat(raw.replace("Z", "+00:00")) if raw else None


@dataclass(frozen=True)
class DeadLetterFilter:
    stage: str | None = None
    mission_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def matches(self, letter: DeadLetter) -> bool:
        if self.stage and letter.stage != self.stage:
            return False
        if self.mission_id and letter.mission_id != self.mission_id:
            return False
        failed_at = letter.failed_at
        if self.since and (failed_at is None or failed_at < self.since):
            return False
        return not (self.until and (failed_at is None or failed_at > self.until))


def dead_letter_topics(settings: Settings) -> list[str]:
    return [dlq_topic(topic(settings.topic_prefix, s)) for s in internal_topics()]


async def read_dead_letters(
    settings: Settings, which: DeadLetterFilter | None = None
) -> list[DeadLetter]:
    """Every dead letter currently retained, oldest first per partition (reads to the end)."""
    timeout = settings.kafka_request_timeout_s
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        enable_auto_commit=False,
        request_timeout_ms=int(timeout * 1000) + 30_000,
    )
    await bounded(consumer.start(), timeout, "consumer start")
    letters: list[DeadLetter] = []
    try:
        partitions = await topic_partitions(settings, dead_letter_topics(settings))
        if not partitions:
            return []
        consumer.assign(partitions)
        await bounded(consumer.seek_to_beginning(*partitions), timeout, "seek")
        ends = await bounded(consumer.end_offsets(partitions), timeout, "end offsets")
        remaining = {tp for tp in partitions if ends[tp] > 0}
        deadline = asyncio.get_running_loop().time() + timeout * 3
        while remaining:
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError("reading the dead-letter topics took too long")
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for r in records:
                    letters.append(
                        DeadLetter(r.topic, r.partition, r.offset, r.key, r.value, tuple(r.headers))
                    )
            for tp in list(remaining):
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
    finally:
        await asyncio.wait_for(consumer.stop(), timeout)
    if which is not None:
        letters = [letter for letter in letters if which.matches(letter)]
    return letters


@dataclass(frozen=True)
class ReplayReport:
    replayed: list[DeadLetter]
    skipped: list[DeadLetter]  # already replayed before


async def replay_dead_letters(
    settings: Settings, database: Database, which: DeadLetterFilter, *, dry_run: bool = False
) -> ReplayReport:
    """Re-publish matching dead letters to their original topics, each at most once."""
    letters = await read_dead_letters(settings, which)
    async with database.unit_of_work() as uow:
        done = await uow.replays.replayed()
    todo = [lt for lt in letters if (lt.topic, lt.partition, lt.offset) not in done]
    skipped = [lt for lt in letters if (lt.topic, lt.partition, lt.offset) in done]
    if dry_run or not todo:
        return ReplayReport(replayed=todo if dry_run else [], skipped=skipped)
    timeout = settings.kafka_request_timeout_s
    producer = new_producer(settings, client_id="driftline-dlq-replay")
    await bounded(producer.start(), timeout, "producer start")
    replayed: list[DeadLetter] = []
    try:
        for letter in todo:
            original = letter.attrs.get("dlq_original_topic")
            if not original:
                continue
            headers = [(k, v) for k, v in letter.headers if not k.startswith(DLQ_PREFIX)]
            await bounded(
                producer.send_and_wait(original, letter.value, key=letter.key, headers=headers),
                timeout,
                "replay send",
            )
            async with database.unit_of_work() as uow:
                await uow.replays.record(
                    letter.topic, letter.partition, letter.offset, letter.event_id or None
                )
            replayed.append(letter)
    finally:
        await asyncio.wait_for(producer.stop(), timeout)
    return ReplayReport(replayed=replayed, skipped=skipped)
