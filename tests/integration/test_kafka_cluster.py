"""The three-node KRaft cluster `driftline infra up --kafka-nodes 3` runs for failover tests."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from driftline.infra.manager import LocalServices
from driftline.infra.process import stop_pid
from driftline.settings import load_settings


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalServices]:
    local = LocalServices(load_settings(), kafka_nodes=3)
    local.up(["kafka"])
    yield local
    local.down(["kafka"])


async def test_survives_losing_one_of_three_nodes(cluster: LocalServices) -> None:
    bootstrap = cluster.kafka_bootstrap_servers
    assert len(bootstrap.split(",")) == 3
    topic = f"failover-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=3)])
        described = await admin.describe_topics([topic])
    finally:
        await admin.close()
    assert all(len(p["replicas"]) == 3 for p in described[0]["partitions"])

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for i in range(10):
            await producer.send_and_wait(topic, f"before-{i}".encode(), key=str(i).encode())
        victim = cluster.kafka.nodes[2]
        await asyncio.to_thread(stop_pid, victim.pid_file, grace_s=0.1)
        for i in range(10):  # min.insync.replicas=2: still writable with two nodes
            await asyncio.wait_for(
                producer.send_and_wait(topic, f"after-{i}".encode(), key=str(i).encode()), 60
            )
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=f"g-{topic}", auto_offset_reset="earliest"
    )
    await consumer.start()
    values: set[bytes] = set()
    try:
        while len(values) < 20:
            batch = await asyncio.wait_for(consumer.getmany(timeout_ms=1000), 60)
            values |= {r.value for recs in batch.values() for r in recs if r.value}
    finally:
        await consumer.stop()
    assert len(values) == 20
    await asyncio.to_thread(cluster.up, ["kafka"])  # the node comes back and rejoins
    assert all(state.healthy for state in cluster.kafka.states())
