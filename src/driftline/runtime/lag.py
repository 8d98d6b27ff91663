"""Consumer lag per stage: how far each consumer group is behind its input topic, and how
long the backlog would take at the rate it is being worked off.

Read from Kafka alone (committed offsets of `<prefix><stage>` against the partitions' end
offsets), so it works whether or not the workers are running.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient

from driftline.contracts.topics import consumer_group, topic
from driftline.runtime.kafka import bounded, topic_partitions
from driftline.settings import Settings


@dataclass(frozen=True)
class StageLag:
    """One stage's backlog at a moment, and over a sampling interval if measured twice."""

    stage: str
    group: str
    topic: str
    partitions: int
    committed: int  # sum over partitions (a partition never committed counts from its start)
    end: int
    rate_per_s: float | None = None

    @property
    def lag(self) -> int:
        return max(self.end - self.committed, 0)

    @property
    def eta_s(self) -> float | None:
        """Seconds to work off the backlog at the measured rate (None: no rate, or idle)."""
        if self.lag == 0:
            return 0.0
        if not self.rate_per_s:
            return None
        return self.lag / self.rate_per_s

    def with_rate(self, earlier: StageLag, seconds: float) -> StageLag:
        rate = max(self.committed - earlier.committed, 0) / seconds if seconds > 0 else None
        return StageLag(
            self.stage, self.group, self.topic, self.partitions, self.committed, self.end, rate
        )


async def read_lag(settings: Settings, stages: Sequence[tuple[str, str]]) -> list[StageLag]:
    """`stages`: (stage name, input topic suffix). One admin and one consumer connection."""
    timeout = settings.kafka_request_timeout_s
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers)
    await bounded(admin.start(), timeout, "admin start")
    try:
        await bounded(consumer.start(), timeout, "consumer start")
        return [await _stage_lag(admin, consumer, settings, s, t) for s, t in stages]
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(consumer.stop(), timeout)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(admin.close(), timeout)


async def _stage_lag(
    admin: AIOKafkaAdminClient,
    consumer: AIOKafkaConsumer,
    settings: Settings,
    stage: str,
    suffix: str,
) -> StageLag:
    timeout = settings.kafka_request_timeout_s
    name = topic(settings.topic_prefix, suffix)
    group = consumer_group(settings.topic_prefix, stage)
    partitions = await topic_partitions(settings, [name])
    if not partitions:
        return StageLag(stage, group, name, 0, 0, 0)
    ends = await bounded(consumer.end_offsets(partitions), timeout, "end offsets")
    starts = await bounded(consumer.beginning_offsets(partitions), timeout, "start offsets")
    offsets = await bounded(
        admin.list_consumer_group_offsets(group, partitions=partitions), timeout, "group offsets"
    )
    committed = 0
    for tp in partitions:
        meta = offsets.get(tp)
        committed += meta.offset if meta is not None and meta.offset >= 0 else starts[tp]
    return StageLag(stage, group, name, len(partitions), committed, sum(ends.values()))


async def sample_lag(
    settings: Settings, stages: Sequence[tuple[str, str]], interval_s: float
) -> list[StageLag]:
    """Lag now, with the rate measured over `interval_s` (0: no rate)."""
    first = await read_lag(settings, stages)
    if interval_s <= 0:
        return first
    await asyncio.sleep(interval_s)
    second = await read_lag(settings, stages)
    return [now.with_rate(before, interval_s) for now, before in zip(second, first, strict=True)]
