"""Proof that the integration layer talks to the genuine services, not imitations."""

from __future__ import annotations

import uuid
from pathlib import Path

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from driftline.db.migrate import downgrade, upgrade
from driftline.db.urls import asyncpg_dsn
from driftline.infra.kafka import api_versions
from driftline.settings import Settings
from tests.conftest import ServiceEndpoints
from tests.helpers import s3_client

TABLES = {"missions", "outbox", "processed_events", "api_keys", "idempotency_keys"}


def _kafka_jvm_running() -> bool:
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"java") and b"kafka.Kafka" in argv:
            return True
    return False


async def test_kafka_round_trip_on_apache_kafka(
    settings: Settings, services: ServiceEndpoints
) -> None:
    topic = f"{settings.topic_prefix}probe"
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"hello", key=b"k", headers=[("h", b"v")])
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=f"{settings.topic_prefix}reader",
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        record = await consumer.getone()
    finally:
        await consumer.stop()
    assert (record.key, record.value, list(record.headers)) == (b"k", b"hello", [("h", b"v")])

    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        cluster = await admin.describe_cluster()
    finally:
        await admin.close()
    assert cluster["brokers"], "metadata names at least one broker"
    host, port = settings.kafka_bootstrap_servers.split(",")[0].split(":")
    keys = api_versions(int(port), host)
    # Produce, Fetch, Metadata and the KRaft-era DescribeCluster are all Kafka APIs.
    assert {0, 1, 3, 60} <= set(keys)
    if not services.via_docker:
        assert _kafka_jvm_running(), "the broker is the kafka.Kafka JVM"


async def _tables(database_url: str) -> set[str]:
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        rows = await conn.fetch(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        )
    finally:
        await conn.close()
    return {r["table_name"] for r in rows}


async def test_migrations_round_trip_on_postgresql(settings: Settings) -> None:
    import asyncio

    assert await _tables(settings.database_url) >= TABLES
    await asyncio.to_thread(downgrade, settings.database_url, "base")
    assert not TABLES & await _tables(settings.database_url)
    await asyncio.to_thread(upgrade, settings.database_url, "head")
    assert await _tables(settings.database_url) >= TABLES
    conn = await asyncpg.connect(asyncpg_dsn(settings.database_url))
    try:
        assert "PostgreSQL" in await conn.fetchval("SELECT version()")
    finally:
        await conn.close()


async def test_minio_put_get_list(settings: Settings) -> None:
    async with s3_client(settings) as s3:
        key = f"probe/{uuid.uuid4()}.txt"
        await s3.put_object(Bucket=settings.s3_bucket, Key=key, Body=b"drift")
        got = await s3.get_object(Bucket=settings.s3_bucket, Key=key)
        assert await got["Body"].read() == b"drift"
        listing = await s3.list_objects_v2(Bucket=settings.s3_bucket, Prefix="probe/")
        assert [o["Key"] for o in listing["Contents"]] == [key]
        server = got["ResponseMetadata"]["HTTPHeaders"].get("server", "")
        assert "MinIO" in server


def test_infra_up_again_is_a_fast_no_op_and_down_stops_only_its_own() -> None:
    import time

    from typer.testing import CliRunner

    from driftline.cli.main import app
    from driftline.infra.manager import LocalServices
    from driftline.infra.process import pid_alive, port_open
    from driftline.settings import load_settings

    local = LocalServices(load_settings())
    local.up()
    before = {s.name: s.pid for s in local.status()}
    started = time.monotonic()
    local.up()
    took = time.monotonic() - started
    after = {s.name: s.pid for s in local.status()}
    assert before == after, "no service was restarted"
    assert all(after.values())
    assert took < 5

    runner = CliRunner()
    status = runner.invoke(app, ["infra", "status"])
    assert status.exit_code == 0
    for name in ("kafka", "postgres", "minio"):
        assert name in status.output
    assert "healthy" in status.output

    minio_pid = after["minio"]
    assert minio_pid is not None
    down = runner.invoke(app, ["infra", "down", "--only", "minio"])
    assert down.exit_code == 0 and "minio" in down.output
    assert not pid_alive(minio_pid)
    assert not port_open("127.0.0.1", load_settings().minio_port)
    assert {s.name: s.pid for s in local.status()}["kafka"] == after["kafka"]
    up = runner.invoke(app, ["infra", "up", "--only", "minio"])
    assert up.exit_code == 0, up.output
    assert local.minio.healthy()


def test_local_minio_scans_its_bucket_at_the_slowest_speed() -> None:
    """The scanner's walks grow with the bucket and cost the pipeline's latency
    (docs/operations.md, "Retention"): `driftline infra up` starts MinIO with it slowed."""
    from driftline.infra.manager import LocalServices
    from driftline.settings import load_settings

    local = LocalServices(load_settings())
    local.up()
    pid = {s.name: s.pid for s in local.status()}["minio"]
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    assert b"MINIO_SCANNER_SPEED=slowest" in environ
