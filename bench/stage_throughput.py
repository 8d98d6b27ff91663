"""Per-process throughput on the real services: the measured figures docs/scaling.md uses.

    .venv/bin/python -m bench.stage_throughput [--events 20000] [--only runner,bare,...]

Sections (each on its own database, topic prefix and bucket, dropped afterwards):

* `runner`  a no-op stage (validate's contract, nothing checked) through the real
  `StageRunner` - the claim of the event id, outbox rows, status history and commit of
  every event - on a topic pre-filled with N events: events/s.
* `bare`    a plain aiokafka loop on the same topic size: consume, produce each record to
  another topic (idempotent, acks=all), commit after each batch: events/s, and the
  runner's ratio to it.
* `workers` the real `driftline worker validate` as one process, then two in one consumer
  group: events/s for N events produced at once, CPU seconds per event.
* `relay`   the outbox relay alone publishing N committed rows: rows/s.
* `api`     one `driftline api` process under C concurrent clients for T s: missions/s,
  p50/p99 latency, CPU per POST (no relay or stages running).
* `transactions` PostgreSQL transactions per mission (`pg_stat_database`): the API, then
  the relay and each stage alone, one after the other, on M missions.
* `simulation` OpenDrift Leeway directly at growing sizes: seconds per particle-hour,
  peak memory and output size.

Prints one markdown table per section; the machine's load average is printed with each,
since the figures only mean something next to it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import os
import shutil
import statistics
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.structs import OffsetAndMetadata
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.pool import Pool

from bench.processes import Child, cpu_seconds, free_port, rss_bytes
from bench.soak.deploy import cleanup
from bench.soak.load import p99
from bench.soak.sampling import topic_records
from bench.soak.stages import SOAK_STAGES
from driftline.auth import create_api_key
from driftline.bootstrap import stage_dependencies
from driftline.contracts.envelope import Envelope, stage_source
from driftline.contracts.events import MissionRequestedV1, MissionValidatedV1
from driftline.contracts.missions import MissionCreate, utcnow
from driftline.contracts.topics import consumer_group, topic
from driftline.db.models import Mission
from driftline.db.unit_of_work import Database
from driftline.db.urls import asyncpg_dsn
from driftline.infra.manager import LocalServices, ensure_bucket
from driftline.runtime import metrics
from driftline.runtime.kafka import (
    admin_client,
    create_topics,
    new_consumer,
    new_producer,
    topic_partitions,
)
from driftline.runtime.relay import OutboxRelay
from driftline.runtime.runner import StageRunner
from driftline.settings import PROJECT_ROOT, Settings, load_settings
from tests.e2e.conftest import write_catalog
from tests.helpers import create_database, mission_body
from tests.pipeline import settings_env

SECTIONS = ("runner", "bare", "workers", "relay", "api", "transactions", "simulation")
REQUESTED = MissionRequestedV1.topic
TENANT = "bench"


def load_average() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min), {five:.1f} (5 min) on {os.cpu_count()} cores"


# -- scratch space -------------------------------------------------------------------------


@dataclass(frozen=True)
class Scratch:
    settings: Settings
    admin_url: str
    database: str


@asynccontextmanager
async def scratch(base: Settings, local: LocalServices) -> AsyncIterator[Scratch]:
    """Own database, topic prefix (so consumer groups) and bucket; dropped afterwards."""
    run = uuid.uuid4().hex[:6]
    admin_url = local.postgres.database_url
    database = f"tput_{run}"
    url = await create_database(admin_url, database)
    settings = base.model_copy(
        update={
            "kafka_bootstrap_servers": local.kafka_bootstrap_servers,
            "database_url": url,
            "s3_endpoint_url": local.minio.endpoint,
            "s3_bucket": f"tput-{run}",
            "topic_prefix": f"tput{run}.",
            "work_dir": PROJECT_ROOT / ".driftline" / "tput" / run,
            "forcing_catalog": write_catalog(PROJECT_ROOT / ".driftline" / "tput" / run),
            "rate_limit_write_per_s": 1e6,
            "rate_limit_write_burst": 1_000_000,
            "metrics_port": None,
        }
    )
    ensure_bucket(local.minio.endpoint, settings, settings.s3_bucket)
    await create_topics(settings)
    try:
        yield Scratch(settings, admin_url, database)
    finally:
        await cleanup(settings, admin_url, database)
        shutil.rmtree(settings.work_dir, ignore_errors=True)


async def seed_missions(settings: Settings, count: int) -> list[Envelope[MissionRequestedV1]]:
    """`count` accepted missions (rows committed) and their `requested` events (not sent)."""
    body = MissionCreate.model_validate(mission_body())
    request = body.model_dump(mode="json")
    database = Database(settings)
    envelopes: list[Envelope[MissionRequestedV1]] = []
    try:
        async with database.unit_of_work() as uow:
            await create_api_key(uow, TENANT)
        for start in range(0, count, 1000):
            async with database.unit_of_work() as uow:
                for _ in range(min(1000, count - start)):
                    mission_id, now = uuid.uuid4(), utcnow()
                    uow.missions.add(
                        Mission(
                            id=mission_id,
                            tenant=TENANT,
                            name=body.name,
                            request=request,
                            status="accepted",
                            stage="api",
                            progress=0.0,
                            created_at=now,
                            updated_at=now,
                        )
                    )
                    data = MissionRequestedV1(
                        mission_id=mission_id, tenant=TENANT, requested_at=now, request=body
                    )
                    envelopes.append(Envelope(data=data, source=stage_source("api")))
    finally:
        await database.close()
    return envelopes


async def produce(
    settings: Settings,
    name: str,
    envelopes: Sequence[Envelope[Any]],
    producer: AIOKafkaProducer | None = None,
) -> None:
    """Send `envelopes` and wait for every acknowledgement (on `producer` if given)."""
    own = producer is None
    if producer is None:
        producer = new_producer(settings, client_id="bench-producer")
        await producer.start()
    try:
        futures = [
            await producer.send(name, e.value(), key=e.key, headers=e.headers()) for e in envelopes
        ]
        await asyncio.gather(*futures)
    finally:
        if own:
            await producer.stop()


async def until(done: Callable[[], Awaitable[bool]], timeout_s: float, poll_s: float = 0.2) -> None:
    deadline = time.monotonic() + timeout_s
    while not await done():
        if time.monotonic() > deadline:
            raise TimeoutError(f"not done after {timeout_s:.0f} s")
        await asyncio.sleep(poll_s)


def table(title: str, rows: Sequence[tuple[str, str]]) -> None:
    print(f"\n### {title}\n\n{load_average()}\n\n| measure | value |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")
    sys.stdout.flush()


# -- runner vs bare loop -------------------------------------------------------------------


@dataclass(frozen=True)
class Rate:
    events: int
    seconds: float
    cpu_s: float

    @property
    def per_s(self) -> float:
        return self.events / self.seconds

    @property
    def cpu_ms_per_event(self) -> float:
        return self.cpu_s / self.events * 1000


@dataclass(frozen=True)
class RunnerRate:
    rate: Rate
    retries: int
    dead_letters: int


def _retries(stage: str) -> int:
    return int(metrics.STAGE_RETRIES.labels(stage)._value.get())


async def runner_rate(
    settings: Settings,
    envelopes: Sequence[Envelope[MissionRequestedV1]],
    *,
    chunk: int | None,
) -> RunnerRate:
    """The no-op stage through the real runner.

    `chunk` None: over events already in the topic (a backlog: the runner takes up to
    500 records per partition in flight at once). Otherwise the events are sent `chunk`
    at a time, each chunk once the previous one is processed (a bounded backlog).
    """
    stage = SOAK_STAGES["validate"]
    database = Database(settings)
    runner = StageRunner(stage, settings, database, {"settings": settings})
    stop, retries = asyncio.Event(), _retries(stage.name)
    source = topic(settings.topic_prefix, REQUESTED)
    task = asyncio.create_task(runner.run(stop))
    producer = new_producer(settings, client_id="bench-producer")  # one, started before timing
    await producer.start()
    try:
        if chunk is None:
            await until(lambda: _at_least(runner.processed, 1), 120, 0.01)
            first = 1
        else:
            await until(lambda: _assigned(runner), 120, 0.05)
            first = 0
        started, cpu = time.perf_counter(), time.process_time()
        for start in range(0, len(envelopes), chunk or len(envelopes)):
            if chunk is not None:
                await produce(settings, source, envelopes[start : start + chunk], producer)
            done = min(start + (chunk or len(envelopes)), len(envelopes))
            await until(functools.partial(_processed, runner, done), 1800, 0.02)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    finally:
        stop.set()
        await task
        await producer.stop()
        await database.close()
    dead = await _records(settings, f"{source}.dlq")
    rate = Rate(len(envelopes) - first, seconds, cpu)
    return RunnerRate(rate, _retries(stage.name) - retries, dead)


async def _processed(runner: StageRunner, wanted: int) -> bool:
    return runner.processed >= wanted


async def _assigned(runner: StageRunner) -> bool:
    consumer = runner._consumer  # a bench probe: started and holding partitions
    return consumer is not None and bool(consumer.assignment())


async def _records(settings: Settings, name: str) -> int:
    return (await topic_records(settings, [name]))[name]


async def _at_least(value: int, wanted: int) -> bool:
    return value >= wanted


async def bare_rate(settings: Settings, events: int) -> Rate:
    """Consume, produce each record onward, commit each batch: no database, no lanes."""
    source = topic(settings.topic_prefix, REQUESTED)
    onward = topic(settings.topic_prefix, MissionValidatedV1.topic)  # as the stage would
    consumer = new_consumer(settings, group_id=f"bare-{uuid.uuid4().hex[:6]}", client_id="bare")
    consumer.subscribe([source])
    producer = new_producer(settings, client_id="bare")
    await consumer.start()
    await producer.start()
    seen = 0
    started = cpu = 0.0
    try:
        while seen < events:
            batches = await consumer.getmany(timeout_ms=300, max_records=200)
            if batches and not started:
                started, cpu = time.perf_counter(), time.process_time()
            futures = [
                await producer.send(onward, r.value, key=r.key, headers=list(r.headers))
                for records in batches.values()
                for r in records
            ]
            await asyncio.gather(*futures)
            offsets = {tp: OffsetAndMetadata(rs[-1].offset + 1, "") for tp, rs in batches.items()}
            if offsets:
                await consumer.commit(offsets)
            seen += len(futures)
        return Rate(events, time.perf_counter() - started, time.process_time() - cpu)
    finally:
        await consumer.stop()
        await producer.stop()


async def runner_vs_bare(
    base: Settings, local: LocalServices, events: int, chunk: int
) -> tuple[float, float]:
    async with scratch(base, local) as s:
        envelopes = await seed_missions(s.settings, events)
        await produce(s.settings, topic(s.settings.topic_prefix, REQUESTED), envelopes)
        bare = await bare_rate(s.settings, events)
        backlog = await runner_rate(s.settings, envelopes, chunk=None)
    async with scratch(base, local) as s:
        envelopes = await seed_missions(s.settings, events)
        paced = await runner_rate(s.settings, envelopes, chunk=chunk)
    table(
        f"no-op stage through the runner vs a bare consume-produce loop, {events} events, "
        "3 partitions, one process",
        [
            ("bare aiokafka loop, topic pre-filled", _rate(bare)),
            ("no-op stage through StageRunner, topic pre-filled", _runner(backlog)),
            (f"the same, sent {chunk} at a time", _runner(paced)),
            ("ratio runner / bare (pre-filled)", f"{backlog.rate.per_s / bare.per_s:.3f}"),
            (f"ratio runner / bare ({chunk} at a time)", f"{paced.rate.per_s / bare.per_s:.3f}"),
        ],
    )
    return backlog.rate.per_s / bare.per_s, paced.rate.per_s / bare.per_s


def _rate(rate: Rate) -> str:
    return f"{rate.per_s:,.0f} events/s, {rate.cpu_ms_per_event:.2f} ms CPU/event"


def _runner(result: RunnerRate) -> str:
    return f"{_rate(result.rate)}; {result.retries} retries, {result.dead_letters} dead-lettered"


# -- worker processes ----------------------------------------------------------------------


async def committed(settings: Settings, group: str, partitions: Sequence[TopicPartition]) -> int:
    async with admin_client(settings) as admin:
        offsets = await admin.list_consumer_group_offsets(group, partitions=list(partitions))
    return sum(max(meta.offset, 0) for meta in offsets.values())


def worker(settings: Settings, stage: str, index: int, logs: Path) -> Child:
    env = {**settings_env(settings), "PYTHONPATH": str(PROJECT_ROOT)}
    argv = [sys.executable, "-m", "driftline.cli.main", "worker", stage]
    return Child(f"{stage}-{index}", argv, env, logs / f"{stage}-{index}.log")


async def workers_rate(settings: Settings, count: int, events: int) -> tuple[Rate, list[int]]:
    """`count` `driftline worker validate` processes in one group, `events` sent at once."""
    logs = settings.work_dir / "logs"
    children = [worker(settings, "validate", i, logs) for i in range(count)]
    for child in children:
        child.start()
    try:
        await until(lambda: _all_assigned(children), 180, 0.5)
        await asyncio.sleep(8)  # the last join's rebalance settles
        envelopes = await seed_missions(settings, events)
        partitions = await topic_partitions(settings, [topic(settings.topic_prefix, REQUESTED)])
        group = consumer_group(settings.topic_prefix, "validate")
        cpu = sum(cpu_seconds(c.pid) for c in children)
        started = time.perf_counter()
        await produce(settings, topic(settings.topic_prefix, REQUESTED), envelopes)
        await until(lambda: _committed_all(settings, group, partitions, events), 1800, 0.5)
        seconds = time.perf_counter() - started
        cpu = sum(cpu_seconds(c.pid) for c in children) - cpu
        shares = [_last_assignment(c) for c in children]
    finally:
        for child in children:
            await child.stop()
    return Rate(events, seconds, cpu), shares


async def _all_assigned(children: Sequence[Child]) -> bool:
    for child in children:
        if not child.alive():
            raise SystemExit(f"{child.name} exited:\n{child.log_text()[-2000:]}")
    return all("runner.assigned" in c.log_text() for c in children)


async def _committed_all(
    settings: Settings, group: str, partitions: Sequence[TopicPartition], events: int
) -> bool:
    return await committed(settings, group, partitions) >= events


def _last_assignment(child: Child) -> int:
    import json

    partitions = -1
    for line in child.log_text().splitlines():
        if '"runner.assigned"' in line:
            partitions = int(json.loads(line).get("partitions", -1))
    return partitions


async def one_vs_two_workers(base: Settings, local: LocalServices, events: int) -> None:
    rates: dict[int, tuple[Rate, list[int]]] = {}
    for count in (1, 2):
        async with scratch(base, local) as s:
            rates[count] = await workers_rate(s.settings, count, events)
    one, two = rates[1][0], rates[2][0]
    table(
        f"`driftline worker validate` (the real stage), {events} events, 3 partitions",
        [
            ("one process", f"{one.per_s:,.0f} events/s, {one.cpu_ms_per_event:.2f} ms CPU/event"),
            (
                "two processes, one group",
                f"{two.per_s:,.0f} events/s, "
                f"{two.cpu_ms_per_event:.2f} ms CPU/event, partitions {rates[2][1]}",
            ),
            ("speed-up", f"{two.per_s / one.per_s:.2f}x"),
        ],
    )


# -- relay ---------------------------------------------------------------------------------


async def relay_rate(base: Settings, local: LocalServices, rows: int) -> tuple[Rate, Rate]:
    """The relay publishing `rows` committed outbox rows against a bare producer sending
    the same rows (same topics, keys, headers, producer settings), read in one query."""
    async with scratch(base, local) as s:
        envelopes = await seed_missions(s.settings, rows)
        database = Database(s.settings)
        for start in range(0, rows, 1000):
            async with database.unit_of_work() as uow:
                for envelope in envelopes[start : start + 1000]:
                    uow.publish(envelope)
        bare = await _bare_publish(s.settings)
        relay = OutboxRelay(s.settings, database)
        stop = asyncio.Event()
        task = asyncio.create_task(relay.run(stop))
        try:
            await until(lambda: _at_least(relay.published, 1), 120, 0.005)
            first = relay.published
            started, cpu = time.perf_counter(), time.process_time()
            await until(lambda: _at_least(relay.published, rows), 1800, 0.01)
            rate = Rate(rows - first, time.perf_counter() - started, time.process_time() - cpu)
        finally:
            stop.set()
            await task
            await database.close()
    table(
        f"outbox relay alone vs a bare producer, {rows} committed rows",
        [
            ("bare aiokafka producer, the same rows", _rate(bare)),
            ("relay", f"{rate.per_s:,.0f} rows/s, {rate.cpu_ms_per_event:.2f} ms CPU/row"),
            ("ratio relay / bare", f"{rate.per_s / bare.per_s:.3f}"),
        ],
    )
    return bare, rate


async def _bare_publish(settings: Settings) -> Rate:
    conn = await asyncpg.connect(asyncpg_dsn(settings.database_url))
    try:
        rows = await conn.fetch("SELECT topic, key, headers, payload FROM outbox ORDER BY id")
    finally:
        await conn.close()
    records = [
        (r["topic"], r["key"].encode(), r["payload"].encode(), _header_list(r["headers"]))
        for r in rows
    ]
    producer = new_producer(settings, client_id="bare-relay")
    await producer.start()
    try:
        started, cpu = time.perf_counter(), time.process_time()
        futures = [
            await producer.send(name, value, key=key, headers=headers)
            for name, key, value, headers in records
        ]
        await asyncio.gather(*futures)
        return Rate(len(records), time.perf_counter() - started, time.process_time() - cpu)
    finally:
        await producer.stop()


def _header_list(headers: str | dict[str, str]) -> list[tuple[str, bytes]]:
    import json

    mapping = json.loads(headers) if isinstance(headers, str) else headers
    return [(k, v.encode()) for k, v in mapping.items()]


# -- API -----------------------------------------------------------------------------------


async def api_rate(base: Settings, local: LocalServices, clients: int, seconds: float) -> None:
    async with scratch(base, local) as s:
        database = Database(s.settings)
        async with database.unit_of_work() as uow:
            api_key = await create_api_key(uow, TENANT)
        await database.close()
        port = free_port()
        api = _api_child(s.settings, port)
        api.start()
        try:
            base_url = f"http://127.0.0.1:{port}"
            await until(lambda: _healthy(base_url), 120, 0.5)
            latencies, cpu = await _hammer(base_url, api_key, api, clients, seconds)
        finally:
            await api.stop()
    latencies.sort()
    table(
        f"one `driftline api` process, {clients} concurrent clients for {seconds:.0f} s "
        "(POST /v1/missions with Idempotency-Key; no relay or stages)",
        [
            ("accepted", f"{len(latencies) / seconds:,.1f} missions/s"),
            (
                "latency p50 / p99",
                f"{latencies[len(latencies) // 2] * 1000:.0f} ms / {p99(latencies) * 1000:.0f} ms",
            ),
            (
                "API process CPU",
                f"{cpu / len(latencies) * 1000:.2f} ms per mission, {cpu / seconds:.2f} cores",
            ),
        ],
    )


def _api_child(settings: Settings, port: int) -> Child:
    env = {**settings_env(settings), "PYTHONPATH": str(PROJECT_ROOT)}
    argv = [sys.executable, "-m", "driftline.cli.main", "api", "--port", str(port)]
    return Child("api", argv, env, settings.work_dir / "logs" / "api.log")


async def _healthy(base_url: str) -> bool:
    try:
        async with httpx.AsyncClient(base_url=base_url, timeout=2) as client:
            return (await client.get("/healthz")).status_code == 200
    except httpx.HTTPError:
        return False


async def _hammer(
    base_url: str, api_key: str, api: Child, clients: int, seconds: float
) -> tuple[list[float], float]:
    latencies: list[float] = []
    body = mission_body()
    headers = {"Authorization": f"Bearer {api_key}"}

    async def client_loop(client: httpx.AsyncClient, deadline: float) -> None:
        while time.monotonic() < deadline:
            key = uuid.uuid4().hex
            started = time.perf_counter()
            response = await client.post(
                "/v1/missions", json=body, headers={"Idempotency-Key": key}
            )
            if response.status_code == 202:
                latencies.append(time.perf_counter() - started)

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(
        base_url=base_url, headers=headers, limits=limits, timeout=60
    ) as client:
        await asyncio.gather(*(client_loop(client, time.monotonic() + 5) for _ in range(clients)))
        latencies.clear()  # warm-up: connections, caches, JIT-free but not free of first calls
        cpu = cpu_seconds(api.pid)
        deadline = time.monotonic() + seconds
        await asyncio.gather(*(client_loop(client, deadline) for _ in range(clients)))
        cpu = cpu_seconds(api.pid) - cpu
    return latencies, cpu


# -- transactions per mission --------------------------------------------------------------


@dataclass(frozen=True)
class Counters:
    transactions: int  # committed + rolled back in the section's database
    backlog: int  # outbox rows not yet published


async def counters(s: Scratch) -> Counters:
    """The section database's transaction count and outbox backlog, in one query.

    Backends report their counts on exit, or when idle at most once a second: callers
    close their pools first, and this waits past that interval. The query itself is a
    transaction too (`probe_overhead` measures what one call adds).
    """
    await asyncio.sleep(1.5)
    conn = await asyncpg.connect(asyncpg_dsn(s.settings.database_url))
    try:
        row = await conn.fetchrow(
            "SELECT (SELECT xact_commit + xact_rollback FROM pg_stat_database"
            "        WHERE datname = current_database()) AS xacts,"
            "       (SELECT count(*) FROM outbox WHERE published_at IS NULL) AS backlog"
        )
    finally:
        await conn.close()
    return Counters(int(row["xacts"]), int(row["backlog"]))


async def transactions(base: Settings, local: LocalServices, missions: int) -> None:
    rows: list[tuple[str, str]] = []
    async with scratch(base, local) as s:
        first = await counters(s)
        probe = (await counters(s)).transactions - first.transactions
        before = await counters(s)
        await _post_missions(s.settings, missions)
        after = await counters(s)
        rows.append(("probe overhead (subtracted)", str(probe)))
        rows.append(("API: POST with Idempotency-Key", _per(after, before, probe, missions)))
        for name, stage in SOAK_STAGES.items():
            published = await _relay_all(s.settings, after.backlog)
            middle = await counters(s)
            rows.append((f"relay: {published} rows", _per(middle, after, probe, missions)))
            sql = SqlCounts.watch()
            await _run_stage_until(s.settings, stage, missions)
            after = await counters(s)
            cost = _per(after, middle, probe, missions)
            rows.append((f"stage {name} (runner bookkeeping)", f"{cost}; {sql.per(missions)}"))
    table(
        f"PostgreSQL transactions per mission ({missions} missions, each component alone; "
        "pg_stat_database)",
        rows,
    )


@dataclass
class SqlCounts:
    """Units of work (BEGIN ... COMMIT) and pool checkouts in this process."""

    begins: int = 0
    checkouts: int = 0

    @classmethod
    def watch(cls) -> SqlCounts:
        counts = cls()

        def begun(*_: Any) -> None:
            counts.begins += 1

        def checked_out(*_: Any) -> None:
            counts.checkouts += 1

        event.listen(Engine, "begin", begun)
        event.listen(Pool, "checkout", checked_out)
        return counts

    def per(self, missions: int) -> str:
        return (
            f"{self.begins / missions:.2f} units of work, "
            f"{self.checkouts / missions:.2f} pool checkouts per mission"
        )


def _per(after: Counters, before: Counters, probe: int, missions: int) -> str:
    count = after.transactions - before.transactions - probe
    return f"{count / missions:.2f} ({count} for {missions} missions)"


async def _post_missions(settings: Settings, missions: int) -> None:
    database = Database(settings)
    async with database.unit_of_work() as uow:
        api_key = await create_api_key(uow, TENANT)
    await database.close()
    port = free_port()
    api = _api_child(settings, port)
    api.start()
    try:
        base_url = f"http://127.0.0.1:{port}"
        await until(lambda: _healthy(base_url), 120, 0.5)
        headers = {"Authorization": f"Bearer {api_key}"}
        async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=30) as client:
            for _ in range(missions):
                response = await client.post(
                    "/v1/missions",
                    json=mission_body(),
                    headers={"Idempotency-Key": uuid.uuid4().hex},
                )
                response.raise_for_status()
    finally:
        await api.stop()  # its pool closes: the backends report their counts


async def _relay_all(settings: Settings, rows: int) -> int:
    database = Database(settings)
    relay = OutboxRelay(settings, database)
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    try:
        await until(lambda: _at_least(relay.published, rows), 120, 0.05)
    finally:
        stop.set()
        await task
        await database.close()
    return relay.published


async def _run_stage_until(settings: Settings, stage: Any, missions: int) -> None:
    database = Database(settings)
    async with stage_dependencies(settings, database, [stage]) as dependencies:
        runner = StageRunner(stage, settings, database, dependencies)
        stop = asyncio.Event()
        task = asyncio.create_task(runner.run(stop))
        try:
            await until(lambda: _at_least(runner.processed, missions), 600, 0.1)
        finally:
            stop.set()
            await task
    await database.close()


# -- simulation ----------------------------------------------------------------------------

#: (particles, hours): the bench sizes of docs/benchmarks.md, the API's limit, and beyond it.
SIMULATION_SIZES = ((2_000, 24), (20_000, 24), (50_000, 24), (200_000, 6), (1_000_000, 1))


async def simulation_cost(sizes: Sequence[tuple[int, int]]) -> None:
    """OpenDrift Leeway directly in a warm pool process: seconds per particle-hour, the
    pool process's largest RSS during the run, and the output's size."""
    from datetime import datetime

    from bench.run import direct_request
    from driftline.forcing.sample import write_sample_forcing
    from driftline.simulation.pool import SimulationPool

    work = PROJECT_ROOT / ".driftline" / "tput" / f"sim-{uuid.uuid4().hex[:6]}"
    sample = write_sample_forcing(
        work / "forcing", lat=60.0, lon=4.0, start=datetime(2024, 1, 1), hours=48
    )
    rows = []
    try:
        for particles, hours in sizes:
            request = direct_request(f"sim-{particles}", sample, particles, hours)
            pool = SimulationPool(1, work)
            await pool.start()
            output = work / f"particles-{particles}.nc"
            watch = asyncio.create_task(_largest_child_rss())
            started = time.perf_counter()
            await pool.run(request, output)
            seconds = time.perf_counter() - started
            watch.cancel()
            peak_mb = await _result_of(watch) / 2**20
            await pool.close()
            per_ph = seconds / (particles * hours) * 1e6
            rows.append(
                (
                    f"{particles:,} particles x {hours} h",
                    f"{seconds:.2f} s, {per_ph:.1f} us per particle-hour, RSS up to "
                    f"{peak_mb:,.0f} MiB, output {output.stat().st_size / 2**20:,.1f} MiB",
                )
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    table("OpenDrift Leeway run directly (warm pool process, sample forcing)", rows)


_LARGEST: dict[str, int] = {}


async def _largest_child_rss() -> int:
    """Poll this process's children (the pool's worker) until cancelled; the largest RSS
    seen is left in `_LARGEST` (a cancelled task has no return value)."""
    _LARGEST["rss"] = 0
    while True:
        _LARGEST["rss"] = max(_LARGEST["rss"], _children_rss(os.getpid()))
        await asyncio.sleep(0.1)


def _children_rss(parent: int) -> int:
    """The largest RSS among `parent`'s children (a few /proc reads)."""
    largest = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == parent:
            largest = max(largest, rss_bytes(int(entry.name)))
    return largest


async def _result_of(watch: asyncio.Task[int]) -> int:
    with contextlib.suppress(asyncio.CancelledError):
        await watch
    return _LARGEST["rss"]


# -- main ----------------------------------------------------------------------------------


async def main(args: argparse.Namespace) -> None:
    base = load_settings()
    local = LocalServices(base)
    local.up()
    chosen = args.only.split(",") if args.only else list(SECTIONS)
    if "runner" in chosen or "bare" in chosen:
        ratios = [
            await runner_vs_bare(base, local, args.events, args.chunk) for _ in range(args.repeat)
        ]
        table(
            f"runner / bare, median of {args.repeat}",
            [
                ("pre-filled", f"{statistics.median(r[0] for r in ratios):.3f}"),
                (f"{args.chunk} at a time", f"{statistics.median(r[1] for r in ratios):.3f}"),
            ],
        )
    if "workers" in chosen:
        await one_vs_two_workers(base, local, args.events)
    if "relay" in chosen:
        rates = [await relay_rate(base, local, args.events) for _ in range(args.repeat)]
        table(
            f"relay / bare producer, median of {args.repeat}",
            [("ratio", f"{statistics.median(r.per_s / b.per_s for b, r in rates):.3f}")],
        )
    if "api" in chosen:
        await api_rate(base, local, args.clients, args.seconds)
    if "transactions" in chosen:
        await transactions(base, local, args.missions)
    if "simulation" in chosen:
        await simulation_cost(SIMULATION_SIZES)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--chunk", type=int, default=200, help="bounded backlog of `runner`")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--missions", type=int, default=500, help="for `transactions`")
    parser.add_argument("--repeat", type=int, default=1, help="for `runner` and `relay`")
    parser.add_argument("--only", help=f"comma-separated: {', '.join(SECTIONS)}")
    asyncio.run(main(parser.parse_args()))
