"""What the soak records at every sample: tables, topics, bucket, processes, latency."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer

from bench.processes import Child, cpu_seconds, rss_bytes, tree_cpu_seconds
from bench.soak.config import SoakConfig
from bench.soak.load import Completions, Load, p99
from driftline.contracts.missions import MissionStatus
from driftline.contracts.topics import all_topics
from driftline.db.urls import asyncpg_dsn
from driftline.infra.manager import s3_client
from driftline.runtime.kafka import topic_partitions
from driftline.settings import Settings

#: Tables the housekeeping loop prunes (and one that goes with them by cascade).
PRUNED = (
    "outbox",
    "processed_events",
    "idempotency_keys",
    "mission_status_changes",
    "webhook_deliveries",
    "webhook_attempts",
)
#: Grows by design: one row per mission, no retention (docs/scaling.md sizes it).
KEPT = ("missions",)

#: Statuses a mission does not leave without an operator.
FINAL_OR_HELD = ("completed", "failed", "cancelled", "held")

Key = tuple[str, str]  # (kind, series)


@dataclass
class Sample:
    elapsed_s: float
    phase: str  # load | drain
    values: dict[Key, float]


SAMPLE_TIMEOUT_S = 20.0


def object_count(metrics: str, bucket: str) -> float | None:
    """The bucket's object count from MinIO's Prometheus text (`minio_bucket_usage_object_total`),
    None before MinIO's scanner has measured the bucket."""
    for line in metrics.splitlines():
        if line.startswith("minio_bucket_usage_object_total{") and f'bucket="{bucket}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return None


#: A fixed piece of pure-Python work, timed inside a child process of its own.
MACHINE_PROBE = (
    "import time\nt = time.perf_counter()\ns = 0\n"
    "for i in range(200_000):\n    s += i * i % 7\nprint(time.perf_counter() - t)"
)


async def machine_probe() -> dict[Key, float]:
    """How long the same work takes on this machine now, under the run's own load.

    The system's latency on a two-core machine at ~90 % CPU moves with the speed the
    host gives it; when the probe slows down by as much as the latency drifts, the
    machine changed, not the system. A child process, so the driver's event loop (which
    times the POSTs) is not held.
    """
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", MACHINE_PROBE, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await child.communicate()
    return {("machine", "probe_ms"): float(out) * 1000}


async def _bounded(what: str, probe: Awaitable[dict[Key, float]]) -> dict[Key, float]:
    """A probe's values, or none when its service does not answer in time (an outage is
    part of what a soak may meet; the gap shows in the CSV and the plot)."""
    try:
        return await asyncio.wait_for(probe, SAMPLE_TIMEOUT_S)
    except Exception as exc:  # any failure of one probe must not end the run
        print(f"sample: {what} unavailable ({exc!r})", flush=True)
        return {}


async def topic_records(settings: Settings, names: list[str]) -> dict[str, int]:
    """Records each topic holds now (end - start offsets, summed over its partitions)."""
    partitions = await topic_partitions(settings, names)
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers)
    await consumer.start()
    try:
        start = await consumer.beginning_offsets(partitions)
        end = await consumer.end_offsets(partitions)
    finally:
        await consumer.stop()
    records = dict.fromkeys(names, 0)
    for tp in partitions:
        records[tp.topic] += end[tp] - start[tp]
    return records


def listed_objects(settings: Settings) -> int:
    """The bucket's objects, listed through the S3 API (once, after the load: it is the
    listing that loads the machine)."""
    client: Any = s3_client(settings.s3_endpoint_url or "", settings)
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=settings.s3_bucket)
    return sum(page.get("KeyCount", 0) for page in pages)


@dataclass
class Sampler:
    settings: Settings
    config: SoakConfig
    children: list[Child]
    load: Load
    completions: Completions
    database: str
    services: dict[str, int] = field(default_factory=dict)
    samples: list[Sample] = field(default_factory=list)
    _last: dict[str, float] = field(default_factory=dict)

    async def take(self, started: float) -> Sample:
        now = time.time()
        values: dict[Key, float] = {}
        values.update(await _bounded("tables", self._tables()))
        values.update(await _bounded("topics", self._topics()))
        values.update(await _bounded("objects", self._objects()))
        values.update(await _bounded("machine", machine_probe()))
        values.update(self._processes(now))
        values.update(self._window(now))
        sample = Sample(now - started, "drain" if self.load.done else "load", values)
        self.samples.append(sample)
        return sample

    async def _tables(self) -> dict[Key, float]:
        """Rows and sizes of every table, missions per status, PostgreSQL's counters.

        The kept table is counted from PostgreSQL's statistics and its final missions are
        not counted at all: a `count(*)` over it costs more at every sample as it grows (a
        full scan while its pages are not yet all-visible), load of the harness's own that
        would show up as the system's latency drift. Pruned tables are bounded: counted.
        """
        conn = await asyncpg.connect(asyncpg_dsn(self.settings.database_url))
        started = time.monotonic()
        try:
            stats = {
                r["relname"]: r["n_live_tup"]
                for r in await conn.fetch(
                    "SELECT relname, n_live_tup FROM pg_stat_user_tables "
                    "WHERE schemaname = 'public'"
                )
            }
            values: dict[Key, float] = {}
            for name in sorted(stats):
                values[("bytes", name)] = await conn.fetchval(
                    "SELECT pg_total_relation_size($1::regclass)", name
                )
                counted = name not in KEPT
                values[("rows", name)] = (
                    await conn.fetchval(f"SELECT count(*) FROM {name}") if counted else stats[name]
                )
            unfinished = await conn.fetch(
                "SELECT status, count(*) AS n FROM missions WHERE status = ANY($1) GROUP BY 1",
                [s.value for s in MissionStatus if s.value != "completed"],
            )
            for row in unfinished:
                values[("missions", row["status"])] = row["n"]
            pg = await conn.fetchrow(
                "SELECT d.xact_commit + d.xact_rollback AS xacts, d.blks_read,"
                " b.checkpoints_timed + b.checkpoints_req AS checkpoints,"
                " b.buffers_backend FROM pg_stat_database d, pg_stat_bgwriter b"
                " WHERE d.datname = $1",
                self.database,
            )
        finally:
            await conn.close()
        values[("db", "transactions_per_s")] = self._rate("xacts", float(pg["xacts"]))
        # CSV only (not plotted, not judged): where PostgreSQL's time could go as it runs.
        values[("pg", "blocks_read_per_s")] = self._rate("blks_read", float(pg["blks_read"]))
        values[("pg", "checkpoints")] = float(pg["checkpoints"])
        values[("pg", "backend_writes_per_s")] = self._rate("bw", float(pg["buffers_backend"]))
        values[("harness", "table_sample_s")] = time.monotonic() - started
        return values

    def _rate(self, name: str, total: float, now: float | None = None) -> float:
        now = time.time() if now is None else now
        before = self._last.get(name)
        at = self._last.get(f"{name}@")
        self._last[name], self._last[f"{name}@"] = total, now
        if before is None or at is None or now <= at:
            return float("nan")
        return (total - before) / (now - at)

    async def _topics(self) -> dict[Key, float]:
        prefix = self.settings.topic_prefix
        records = await topic_records(self.settings, all_topics(prefix))
        return {("topic_records", n.removeprefix(prefix)): float(r) for n, r in records.items()}

    async def _objects(self) -> dict[Key, float]:
        """The bucket's object count as MinIO's own usage scanner last measured it.

        Artifacts expire by lifecycle rules counted in days, so in a soak the bucket only
        grows (the series is shown, not judged). Listing it instead (a million keys by
        the end) loaded the machine for minutes at every sample, and the API's latency
        with it: a drift of the harness, not of the system. With the scanner at
        `slowest` (as `driftline infra up` runs it) there may be no figure for hours;
        `listed_objects` counts the bucket once, after the load.
        """
        url = f"{(self.settings.s3_endpoint_url or '').rstrip('/')}/minio/v2/metrics/bucket"
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.get(url)
            response.raise_for_status()
        count = object_count(response.text, self.settings.s3_bucket)
        return {} if count is None else {("objects", "scanner"): count}

    def _processes(self, now: float) -> dict[Key, float]:
        values: dict[Key, float] = {}
        pids = {c.name: c.pid for c in self.children} | {"driver": os.getpid()}
        for name, pid in pids.items():
            values[("rss_mb", name)] = rss_bytes(pid) / 2**20
            values[("cpu_cores", name)] = self._rate(f"cpu-{name}", cpu_seconds(pid), now)
        for name, pid in self.services.items():  # shown, not judged: whose CPU grows?
            values[("cpu_cores", name)] = self._rate(f"cpu-{name}", tree_cpu_seconds(pid), now)
        return values

    def _window(self, now: float) -> dict[Key, float]:
        since = self._last.get("window", now - self.config.sample_s)
        self._last["window"] = now
        posts = self.load.posts.between(since, now)
        e2e = self.completions.e2e.between(since, now)
        span = max(now - since, 1e-9)
        return {
            ("latency_p99_s", "POST"): p99(posts),
            ("latency_p99_s", "end_to_end"): p99(e2e),
            ("pipeline", "accepted_per_s"): len(posts) / span,
            ("pipeline", "completed_per_s"): len(e2e) / span,
            ("pipeline", "in_flight"): float(self.load.accepted - self.completions.completed),
        }
