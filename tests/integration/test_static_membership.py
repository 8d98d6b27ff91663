"""Static group membership on the real Kafka: a worker restarted under its `--instance`
name takes its own partitions back and the other worker of the stage is never disturbed.

Without it, the restart costs two rebalances (the dead member's session expiring, then
the new member joining), each pausing every worker of the stage.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from driftline.runtime.kafka import new_consumer
from driftline.settings import Settings


class Recorder(ConsumerRebalanceListener):
    """Counts what a member is told: every revocation pauses its partitions."""

    def __init__(self) -> None:
        self.revoked = 0
        self.assigned: set[TopicPartition] = set()

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        self.revoked += 1

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        self.assigned = set(assigned)


async def _member(
    settings: Settings, group: str, topic: str, instance: str
) -> tuple[AIOKafkaConsumer, Recorder]:
    static = settings.model_copy(update={"kafka_group_instance_id": instance})
    consumer = new_consumer(static, group_id=group, client_id=instance)
    recorder = Recorder()
    consumer.subscribe([topic], listener=recorder)
    await consumer.start()
    return consumer, recorder


async def _poll_until(
    members: list[AIOKafkaConsumer], done: Callable[[], bool], timeout_s: float
) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():
        assert time.monotonic() < deadline, "the group did not settle"
        for member in members:
            await member.getmany(timeout_ms=100)


async def test_a_restarted_static_member_takes_its_partitions_back(settings: Settings) -> None:
    topic, group = f"{settings.topic_prefix}static", f"{settings.topic_prefix}static-group"
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=4, replication_factor=1)])
    finally:
        await admin.close()
    first, first_seen = await _member(settings, group, topic, "worker-1")
    second, second_seen = await _member(settings, group, topic, "worker-2")
    try:
        await _poll_until(
            [first, second],
            lambda: len(first_seen.assigned) == 2 and len(second_seen.assigned) == 2,
            60,
        )
        owned, revocations = set(first_seen.assigned), second_seen.revoked

        await first.stop()  # a static member leaves no LeaveGroup behind, like a SIGKILL
        started = time.monotonic()
        back, back_seen = await _member(settings, group, topic, "worker-1")
        try:
            await _poll_until([back, second], lambda: back_seen.assigned == owned, 30)
            took = time.monotonic() - started
            # outlive the session the first incarnation would have had: no late rebalance
            end = time.monotonic() + settings.kafka_session_timeout_s + 2
            while time.monotonic() < end:
                await asyncio.gather(back.getmany(timeout_ms=200), second.getmany(timeout_ms=200))
        finally:
            await back.stop()
    finally:
        await second.stop()
    assert took < settings.kafka_session_timeout_s, f"took its partitions back after {took:.1f} s"
    assert back_seen.assigned == owned
    assert second_seen.revoked == revocations, "the other worker was made to rebalance"
    assert len(second_seen.assigned) == 2
