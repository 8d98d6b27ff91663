"""aiokafka clients built from the settings, every call bounded by a timeout.

aiokafka can wait forever when every broker is gone (start, send_and_wait, commit);
`bounded` turns that into a TransientError the caller retries.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from driftline.contracts.events import ForcingReadyV1
from driftline.contracts.topics import all_topics, topic
from driftline.errors import BrokerUnavailable
from driftline.retention import RetentionPolicy
from driftline.settings import Settings

T = TypeVar("T")


async def bounded(call: Awaitable[T], timeout_s: float, what: str) -> T:
    """Await a Kafka call with a deadline, mapping Kafka's errors to BrokerUnavailable."""
    try:
        return await asyncio.wait_for(call, timeout_s)
    except TimeoutError as exc:
        raise BrokerUnavailable(f"Kafka did not answer {what} within {timeout_s:.0f} s") from exc
    except KafkaError as exc:
        raise BrokerUnavailable(f"Kafka {what} failed: {exc!r}") from exc


def new_producer(settings: Settings, *, client_id: str) -> AIOKafkaProducer:
    """Idempotent producer (acks=all): a retried send never duplicates or reorders."""
    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        client_id=client_id,
        enable_idempotence=True,
        acks="all",
        linger_ms=1,  # the relay hands a whole batch over before the sender runs
        request_timeout_ms=int(settings.kafka_request_timeout_s * 1000),
        max_batch_size=1_048_576,
    )


def new_consumer(settings: Settings, *, group_id: str, client_id: str) -> AIOKafkaConsumer:
    """Manual-commit consumer; the runner commits only after the effect's transaction."""
    return AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=group_id,
        client_id=client_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        session_timeout_ms=int(settings.kafka_session_timeout_s * 1000),
        heartbeat_interval_ms=max(int(settings.kafka_session_timeout_s * 1000) // 5, 500),
        max_poll_interval_ms=600_000,
        request_timeout_ms=int(settings.kafka_request_timeout_s * 1000) + 30_000,
        metadata_max_age_ms=5_000,
        group_instance_id=settings.kafka_group_instance_id,
    )


def retention_ms(span: timedelta) -> int:
    return int(span.total_seconds() * 1000)


@asynccontextmanager
async def admin_client(settings: Settings) -> AsyncIterator[AIOKafkaAdminClient]:
    """A started admin client whose start is bounded like every other call."""
    timeout = settings.kafka_request_timeout_s
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        request_timeout_ms=int(timeout * 1000),
    )
    await bounded(admin.start(), timeout, "admin start")
    try:
        yield admin
    finally:
        await admin.close()


async def create_topics(settings: Settings, *, partitions: int | None = None) -> list[str]:
    """Create every Driftline topic that does not exist yet; returns the ones created.

    `partitions` sets every topic's count; otherwise each has `topic_partitions` but the
    simulate stage's input, which has `shard_topic_partitions`.
    """
    timeout = settings.kafka_request_timeout_s
    async with admin_client(settings) as admin:
        existing = set(await bounded(admin.list_topics(), timeout, "list"))
        wanted = [t for t in all_topics(settings.topic_prefix) if t not in existing]
        if not wanted:
            return []
        retention = RetentionPolicy.from_settings(settings)
        shard_topic = topic(settings.topic_prefix, ForcingReadyV1.topic)
        new = [
            NewTopic(
                name=t,
                # The simulate stage's input spreads huge missions' shards over workers.
                num_partitions=partitions
                or (
                    settings.shard_topic_partitions
                    if t == shard_topic
                    else settings.topic_partitions
                ),
                replication_factor=settings.topic_replication_factor,
                topic_configs={"retention.ms": str(retention_ms(retention.for_topic(t)))},
            )
            for t in wanted
        ]
        try:
            await bounded(admin.create_topics(new), timeout, "create topics")
        except BrokerUnavailable as exc:
            if not isinstance(exc.__cause__, TopicAlreadyExistsError):
                raise
        return wanted


async def delete_topics(settings: Settings) -> list[str]:
    """Delete every topic under the settings' prefix; returns the ones deleted.

    For runs that own their prefix (a test, a soak): the broker keeps a folder per
    partition, and thousands left behind slow its start-up.
    """
    if not settings.topic_prefix:
        raise ValueError("refusing to delete topics without a topic prefix")
    timeout = settings.kafka_request_timeout_s
    async with admin_client(settings) as admin:
        existing = await bounded(admin.list_topics(), timeout, "list")
        doomed = sorted(t for t in existing if t.startswith(settings.topic_prefix))
        if doomed:
            await bounded(admin.delete_topics(doomed), timeout, "delete topics")
        return doomed


async def topic_partitions(settings: Settings, topics: list[str]) -> list[TopicPartition]:
    """The partitions of those `topics` that exist (metadata through the admin client)."""
    async with admin_client(settings) as admin:
        described = await bounded(
            admin.describe_topics(topics), settings.kafka_request_timeout_s, "describe topics"
        )
    return [
        TopicPartition(info["topic"], part["partition"])
        for info in described
        if info.get("error_code", 0) == 0
        for part in sorted(info.get("partitions", []), key=lambda p: p["partition"])
    ]
