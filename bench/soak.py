"""Soak run: a long steady stream of missions through the real API, relay and runners,
with retention in minutes, to show that every store stops growing once pruning starts.

    .venv/bin/python -m bench.soak [--missions 100000] [--rate 12] [--retention-s 120]
        [--stage-processes 1|2|5] [--private-services]
    make soak            # the full run;  make soak SOAK_ARGS="--missions 5000"

"The point is the bookkeeping": the five stages are the real runner (claim of the event
id, outbox rows, status history, commit) around synthetic stage functions that emit
valid events of the real contracts with tiny data (no OpenDrift; simulate stores one
tiny object per mission under the real key); notify is the real one (it is bookkeeping
only) and every tenth mission carries a callback to a loopback receiver, so webhook
deliveries are made and pruned too.

Processes, on the shared local Kafka, PostgreSQL and MinIO (or, `--private-services`,
a set of the run's own on free ports) with the run's own database, topic prefix and
bucket: `driftline api` (POSTs over HTTP on loopback, each with an Idempotency-Key),
`driftline relay` (which also runs housekeeping), the stage runners in one, two or five
processes (`python -m bench.soak --stages-process`), and this one (open-loop load,
completions, samples). Every `--sample-s` seconds it records each table's rows (the kept
`missions` table's from PostgreSQL's statistics: a count would load it more at every
sample as it grows) and total size (table + indexes), each topic's records (end - start
offsets), the bucket's objects, each process's RSS and CPU, PostgreSQL transactions per
second, and the p99 of POST latency and of end-to-end latency (POST to the public
`completed` event) in that window. It writes `bench/out/soak-<stamp>.csv` and `.png`
(and copies the PNG of a full-size run to docs/images/soak.png). Ctrl-C stops the load
and reports what was seen.

Exit status 1 if an accepted mission does not complete; if a pruned table's rows or
size, a topic's records or a process's RSS keep growing once their retention applies
(the maximum of the last third of the load phase's samples exceeds the middle third's
by more than 10 %; sizes also by more than 1 MiB, RSS by more than 8 MiB); if the
missions table's bytes per row grow by more than 10 %; or if the p99 POST or end-to-end
latency drifts up by more than 20 % (median of the per-window p99s, last third of the
load phase vs the first third after warm-up). A series whose retention cannot have
applied before the middle third starts (a short run) is reported as not judged. Next to
the latency drift it shows (never judges) how long a fixed piece of work took on the
machine in the same thirds: on a shared two-core host at ~90 % CPU the latency moves with
the speed the host gives, and the probe tells that apart from the system slowing down.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import ctypes
import hashlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from array import array
from collections.abc import Awaitable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from driftline.auth import create_api_key
from driftline.bootstrap import stage_dependencies
from driftline.contracts.envelope import Envelope, header_map
from driftline.contracts.events import (
    Centroid,
    ForcingReadyV1,
    ForcingUsed,
    MissionRequestedV1,
    MissionSummary,
    MissionValidatedV1,
    ResultsReadyV1,
    SimulationCompletedV1,
)
from driftline.contracts.missions import MissionStatus
from driftline.contracts.results import MissionResult, StoredArtifact
from driftline.contracts.topics import all_topics, topic
from driftline.db.migrate import upgrade_async
from driftline.db.unit_of_work import Database
from driftline.db.urls import asyncpg_dsn, with_database
from driftline.infra.manager import LocalServices, ensure_bucket, free_port_offset, s3_client
from driftline.infra.process import read_pid
from driftline.logs import configure_logging
from driftline.retention import RetentionPolicy
from driftline.runtime.kafka import create_topics, retention_ms, topic_partitions
from driftline.runtime.lifecycle import stop_on_signals
from driftline.runtime.runner import StageRunner
from driftline.runtime.stage import Stage, StageOutcome
from driftline.settings import PROJECT_ROOT, Settings, load_settings
from driftline.simulation.leeway import resolve_object_type, seed_from_mission_id
from driftline.storage.base import ArtifactStore
from tests.helpers import drop_database, mission_body
from tests.pipeline import settings_env
from tests.receiver import LoopbackReceiver
from workers import notify
from workers.postprocess import RAW_PARTICLES, artifact_href
from workers.simulate import NETCDF, particles_key

OUT_DIR = PROJECT_ROOT / "bench" / "out"
DOCS_IMAGE = PROJECT_ROOT / "docs" / "images" / "soak.png"
FULL_SIZE = 100_000

# -- synthetic stages: the real contracts, tiny data --------------------------------------

TINY_PARTICLES = b"CDF\x01 soak run: no trajectories\n"
TINY_SHA256 = hashlib.sha256(TINY_PARTICLES).hexdigest()


async def validate_synthetic(event: Envelope[MissionRequestedV1]) -> StageOutcome:
    data = event.data
    category = resolve_object_type(data.request.object_type)
    validated = MissionValidatedV1(
        mission_id=data.mission_id,
        tenant=data.tenant,
        request=data.request,
        object_type_id=category.id,
        object_type_key=category.key,
        seed=seed_from_mission_id(str(data.mission_id)),
    )
    return StageOutcome(status=MissionStatus.VALIDATED, emits=[validated])


async def fetch_forcing_synthetic(event: Envelope[MissionValidatedV1]) -> StageOutcome:
    data = event.data
    used = ForcingUsed(variable="current", source="soak", key="forcing/soak.nc", synthetic=True)
    ready = ForcingReadyV1(
        mission_id=data.mission_id,
        tenant=data.tenant,
        request=data.request,
        object_type_id=data.object_type_id,
        seed=data.seed,
        forcing=[used],
    )
    return StageOutcome(status=MissionStatus.FORCING_READY, emits=[ready])


async def simulate_synthetic(
    event: Envelope[ForcingReadyV1], *, storage: ArtifactStore
) -> StageOutcome:
    """Stores one tiny object under the real deterministic key (the bucket grows per mission)."""
    data = event.data
    key = particles_key(data.tenant, str(data.mission_id))
    await storage.put_bytes(key, TINY_PARTICLES, NETCDF)
    completed = SimulationCompletedV1(
        mission_id=data.mission_id,
        tenant=data.tenant,
        request=data.request,
        particles_key=key,
        particles_total=data.request.particles,
        particles_active=data.request.particles,
        particles_stranded=0,
        forcing=data.forcing,
    )
    return StageOutcome(status=MissionStatus.SIMULATED, emits=[completed])


async def postprocess_synthetic(
    event: Envelope[SimulationCompletedV1], *, settings: Settings
) -> StageOutcome:
    data = event.data
    mission_id = str(data.mission_id)
    raw = StoredArtifact(
        name=RAW_PARTICLES,
        media_type=NETCDF,
        href=artifact_href(settings.public_base_url, mission_id, RAW_PARTICLES),
        bytes=len(TINY_PARTICLES),
        sha256=TINY_SHA256,
        key=data.particles_key,
    )
    where = data.request.last_known_position
    summary = MissionSummary(
        particles_total=data.particles_total,
        particles_active=data.particles_active,
        particles_stranded=data.particles_stranded,
        fraction_afloat=1.0,
        centroid=Centroid(lat=where.lat, lon=where.lon),
        area_km2={"50": 1.0, "90": 4.0, "95": 6.0},
        forcing=data.forcing,
        synthetic_forcing=True,
    )
    result = MissionResult(summary=summary, artifacts=[raw])
    ready = ResultsReadyV1(
        mission_id=data.mission_id,
        tenant=data.tenant,
        request=data.request,
        artifacts=result.public_artifacts(),
        summary=summary,
    )
    return StageOutcome(status=MissionStatus.RESULTS_READY, emits=[ready], result=result)


SOAK_STAGES: dict[str, Stage[Any]] = {
    stage.name: stage
    for stage in (
        Stage(name="validate", consumes=MissionRequestedV1, run=validate_synthetic),
        Stage(name="fetch_forcing", consumes=MissionValidatedV1, run=fetch_forcing_synthetic),
        Stage(name="simulate", consumes=ForcingReadyV1, run=simulate_synthetic),
        Stage(name="postprocess", consumes=SimulationCompletedV1, run=postprocess_synthetic),
        notify.STAGE,  # real: the public event and the webhook delivery are bookkeeping
    )
}


async def serve_stages(settings: Settings, names: Sequence[str]) -> None:
    """The stages process: the real runner around the synthetic stages, until SIGTERM."""
    RetentionPolicy.from_settings(settings).check()
    stop = stop_on_signals()
    stages = [SOAK_STAGES[name] for name in names]
    database = Database(settings)
    try:
        async with stage_dependencies(settings, database, stages) as dependencies:
            runners = [StageRunner(s, settings, database, dependencies) for s in stages]
            await asyncio.gather(*(runner.run(stop) for runner in runners))
    finally:
        await database.close()


# -- configuration -------------------------------------------------------------------------

#: How the stage runners are spread over processes (`--stage-processes`).
LAYOUTS: dict[int, tuple[tuple[str, ...], ...]] = {
    1: (tuple(SOAK_STAGES),),
    2: (("validate", "fetch_forcing", "simulate"), ("postprocess", "notify")),
    5: tuple((name,) for name in SOAK_STAGES),
}


@dataclass(frozen=True)
class SoakConfig:
    missions: int = FULL_SIZE
    rate_per_s: float = 12.0
    retention_s: float = 120.0  # every table, and every topic
    segment_s: float = 60.0  # topics roll a segment at least this often, so it can expire
    housekeeping_s: float = 15.0
    sample_s: float = 30.0
    callback_every: int = 10  # one mission in N carries a callback URL
    stage_processes: tuple[tuple[str, ...], ...] = LAYOUTS[2]
    drain_timeout_s: float = 600.0
    private_services: bool = False
    keep: bool = False
    prefill_missions: int = 0  # completed missions in the table before the load starts

    @property
    def processed_events_s(self) -> float:
        # A record stays readable until its whole segment expires: up to retention +
        # segment roll time. Processed ids outlive that, as the policy demands.
        return self.retention_s + self.segment_s

    @property
    def topic_settle_s(self) -> float:
        """When a topic's oldest records are gone at the latest: retention, segment roll,
        and the broker's retention check (log.retention.check.interval.ms, 5 min)."""
        return self.retention_s + self.segment_s + 300.0

    @property
    def table_settle_s(self) -> float:
        return self.processed_events_s + 2 * self.housekeeping_s


def soak_settings(base: Settings, local: LocalServices, database_url: str, run: str) -> Settings:
    return base.model_copy(
        update={
            "kafka_bootstrap_servers": local.kafka_bootstrap_servers,
            "database_url": database_url,
            "s3_endpoint_url": local.minio.endpoint,
            "s3_bucket": f"soak-{run}",
            "topic_prefix": f"soak{run}.",
            "work_dir": PROJECT_ROOT / ".driftline" / "soak" / run / "work",
            "webhook_allow_private": True,  # the receiver listens on loopback
            "rate_limit_write_per_s": 1e6,  # one key sends everything
            "rate_limit_write_burst": 1_000_000,
            "rate_limit_read_per_s": 1e6,
            "rate_limit_read_burst": 1_000_000,
            "metrics_port": None,
        }
    )


def with_retention(settings: Settings, config: SoakConfig) -> Settings:
    minutes = config.retention_s
    return settings.model_copy(
        update={
            "retention_outbox_s": minutes,
            "retention_processed_events_s": config.processed_events_s,
            "retention_idempotency_keys_s": minutes,
            "retention_status_history_s": minutes,
            "retention_webhook_deliveries_s": minutes,
            "retention_topic_internal_s": minutes,
            "retention_topic_public_s": minutes,
            "retention_topic_dlq_s": minutes,
            "housekeeping_interval_s": config.housekeeping_s,
        }
    )


async def create_database(admin_url: str, name: str) -> str:
    conn = await asyncpg.connect(asyncpg_dsn(admin_url))
    try:
        await conn.execute(f"CREATE DATABASE {name}")
    finally:
        await conn.close()
    url = with_database(admin_url, name)
    await upgrade_async(url)
    return url


async def prepare_topics(settings: Settings, config: SoakConfig) -> None:
    """Create the topics, then give each its policy retention and a short segment roll.

    AlterConfigs replaces a topic's whole set of overrides, so both go in one request.
    """
    await create_topics(settings)
    policy = RetentionPolicy.from_settings(settings)
    segment_ms = str(int(config.segment_s * 1000))
    resources = [
        ConfigResource(
            ConfigResourceType.TOPIC,
            name,
            {"retention.ms": str(retention_ms(policy.for_topic(name))), "segment.ms": segment_ms},
        )
        for name in all_topics(settings.topic_prefix)
    ]
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        await admin.alter_configs(resources)
    finally:
        await admin.close()


# -- processes -----------------------------------------------------------------------------

PR_SET_PDEATHSIG = 1


def _end_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


@dataclass
class Child:
    """One process of the deployment: its command, log, and what /proc says about it."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_file: Path
    popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            self.popen = subprocess.Popen(
                self.argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
                cwd=PROJECT_ROOT,
                preexec_fn=_end_with_parent,  # prctl only: safe between fork and exec
            )

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def log_text(self) -> str:
        try:
            return self.log_file.read_text(errors="replace")
        except OSError:
            return ""

    async def stop(self, grace_s: float = 40.0) -> int | None:
        if self.popen is None:
            return None
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(self.popen.wait, grace_s)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            await asyncio.to_thread(self.popen.wait)
        return self.popen.returncode


def rss_bytes(pid: int) -> int:
    """Resident set size of `pid` (0 if it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of `pid` so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def service_pids(local: LocalServices) -> dict[str, int]:
    found = {
        "postgres": local.postgres.pid(),
        "minio": read_pid(local.minio.pid_file),
        "kafka": read_pid(local.kafka.nodes[0].pid_file),
    }
    return {name: pid for name, pid in found.items() if pid is not None}


def tree_cpu_seconds(pid: int) -> float:
    """CPU time of `pid` and its live descendants (PostgreSQL's backends, uvicorn's
    workers), from one pass over /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(parent, []).append(int(stat.parent.name))
    tree, total = [pid], 0.0
    while tree:
        current = tree.pop()
        total += cpu_seconds(current)
        tree.extend(children.get(current, []))
    return total


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def deployment(settings: Settings, config: SoakConfig, logs: Path, port: int) -> list[Child]:
    # This checkout's code first, whatever the virtualenv's editable install points at.
    path = [str(PROJECT_ROOT / "src"), str(PROJECT_ROOT), os.environ.get("PYTHONPATH", "")]
    env = {**settings_env(settings), "PYTHONPATH": os.pathsep.join(filter(None, path))}
    cli = [sys.executable, "-m", "driftline.cli.main"]
    children = [
        Child(
            "api", [*cli, "api", "--host", "127.0.0.1", "--port", str(port)], env, logs / "api.log"
        ),
        Child("relay", [*cli, "relay"], env, logs / "relay.log"),
    ]
    for index, names in enumerate(config.stage_processes):
        argv = [sys.executable, "-m", "bench.soak", "--stages-process", ",".join(names)]
        children.append(Child(f"stages{index + 1}", argv, env, logs / f"stages{index + 1}.log"))
    return children


async def wait_ready(children: Sequence[Child], base_url: str, stage_count: int) -> None:
    """API answering /healthz, the relay leading, every stage runner started."""
    deadline = time.monotonic() + 120
    async with httpx.AsyncClient(base_url=base_url, timeout=5) as client:
        while True:
            for child in children:
                if not child.alive():
                    raise SystemExit(f"{child.name} exited:\n{child.log_text()[-3000:]}")
            relay = "relay.leader" in children[1].log_text()
            started = sum(c.log_text().count("runner.started") for c in children[2:])
            if relay and started >= stage_count:
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get("/healthz")).status_code == 200:
                        return
            if time.monotonic() > deadline:
                raise SystemExit("the deployment did not become ready in 120 s")
            await asyncio.sleep(0.5)


# -- load and completions ------------------------------------------------------------------


@dataclass
class Timings:
    """Latencies (seconds) with the wall time each was observed at, compactly."""

    at: array[float] = field(default_factory=lambda: array("d"))
    seconds: array[float] = field(default_factory=lambda: array("d"))

    def add(self, at: float, seconds: float) -> None:
        self.at.append(at)
        self.seconds.append(seconds)

    def between(self, start: float, end: float) -> list[float]:
        return [s for a, s in zip(self.at, self.seconds, strict=True) if start <= a < end]

    def count_between(self, start: float, end: float) -> int:
        return sum(1 for a in self.at if start <= a < end)


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


def p99(values: Sequence[float]) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


@dataclass
class Load:
    """Open-loop POSTs at a fixed rate (a slow API does not slow the arrivals)."""

    base_url: str
    api_key: str
    config: SoakConfig
    callback_url: str
    posts: Timings = field(default_factory=Timings)
    submitted: dict[str, float] = field(default_factory=dict)  # mission id -> POST start
    accepted: int = 0
    errors: int = 0
    done: bool = False

    def body(self, index: int) -> dict[str, Any]:
        extra: dict[str, Any] = {"external_ref": f"SOAK-{index}"}
        if index % self.config.callback_every == 0:
            extra["callback_url"] = self.callback_url
        return mission_body(**extra)

    async def run(self) -> None:
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
        headers = {"Authorization": f"Bearer {self.api_key}"}
        gate = asyncio.Semaphore(400)
        async with httpx.AsyncClient(
            base_url=self.base_url, headers=headers, limits=limits, timeout=60
        ) as client:
            start = time.monotonic()
            tasks: set[asyncio.Task[None]] = set()
            try:
                for index in range(self.config.missions):
                    delay = start + index / self.config.rate_per_s - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    await gate.acquire()
                    task = asyncio.create_task(self._post(client, index))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                    task.add_done_callback(lambda _: gate.release())
                await asyncio.gather(*tasks)
            finally:  # stopped early: no POST may outlive the client
                for task in list(tasks):
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
        self.done = True

    async def _post(self, client: httpx.AsyncClient, index: int) -> None:
        key = f"soak-{index}-{uuid.uuid4().hex[:8]}"
        body = self.body(index)
        for _attempt in range(120):  # a retried POST keeps its Idempotency-Key
            started = time.time()
            try:
                response = await client.post(
                    "/v1/missions", json=body, headers={"Idempotency-Key": key}
                )
            except httpx.HTTPError:
                self.errors += 1
                await asyncio.sleep(1)
                continue
            finished = time.time()
            if response.status_code == 202:
                self.posts.add(finished, finished - started)
                self.submitted[response.json()["id"]] = started
                self.accepted += 1
                return
            self.errors += 1
            await asyncio.sleep(1)


@dataclass
class Completions:
    """Reads the public `completed` topic: end-to-end latency per mission."""

    settings: Settings
    load: Load
    e2e: Timings = field(default_factory=Timings)
    completed: int = 0
    early: dict[str, float] = field(default_factory=dict)  # seen before its POST answered

    async def run(self, stop: asyncio.Event) -> None:
        consumer = AIOKafkaConsumer(
            topic(self.settings.topic_prefix, "missions.completed"),
            bootstrap_servers=self.settings.kafka_bootstrap_servers,
            group_id=f"soak-reader-{uuid.uuid4().hex[:8]}",
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        seen: set[str] = set()  # public events may repeat (same ce_id); count each once
        try:
            while not stop.is_set():
                batches = await consumer.getmany(timeout_ms=500, max_records=1000)
                now = time.time()
                for records in batches.values():
                    for record in records:
                        mission = header_map(record.headers).get("ce_subject", "")
                        if mission not in seen:
                            seen.add(mission)
                            self._arrived(mission, now)
                self._match_early()
        finally:
            await consumer.stop()

    def _arrived(self, mission: str, now: float) -> None:
        started = self.load.submitted.pop(mission, None)
        if started is None:
            self.early[mission] = now
            return
        self.e2e.add(now, now - started)
        self.completed += 1

    def _match_early(self) -> None:
        for mission, at in list(self.early.items()):
            started = self.load.submitted.pop(mission, None)
            if started is not None:
                del self.early[mission]
                self.e2e.add(at, at - started)
                self.completed += 1


# -- samples -------------------------------------------------------------------------------

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
        names = all_topics(self.settings.topic_prefix)
        partitions = await topic_partitions(self.settings, names)
        consumer = AIOKafkaConsumer(bootstrap_servers=self.settings.kafka_bootstrap_servers)
        await consumer.start()
        try:
            start = await consumer.beginning_offsets(partitions)
            end = await consumer.end_offsets(partitions)
        finally:
            await consumer.stop()
        prefix = self.settings.topic_prefix
        values: dict[Key, float] = {("topic_records", n.removeprefix(prefix)): 0.0 for n in names}
        for tp in partitions:
            values[("topic_records", tp.topic.removeprefix(prefix))] += end[tp] - start[tp]
        return values

    async def _objects(self) -> dict[Key, float]:
        """The bucket's object count as MinIO's own usage scanner last measured it.

        Artifacts expire by lifecycle rules counted in days, so in a soak the bucket only
        grows (the series is shown, not judged). Listing it instead (a million keys by
        the end) loaded the machine for minutes at every sample, and the API's latency
        with it: a drift of the harness, not of the system.
        """
        url = f"{(self.settings.s3_endpoint_url or '').rstrip('/')}/minio/v2/metrics/bucket"
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.get(url)
            response.raise_for_status()
        count = object_count(response.text, self.settings.s3_bucket)
        return {} if count is None else {("objects", "bucket"): count}

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


# -- verdict -------------------------------------------------------------------------------

GROWTH_TOLERANCE = 0.10
LATENCY_TOLERANCE = 0.20
#: Sizes move in 8 kB pages and index splits: growth below this is not a trend.
SIZE_FLOOR_BYTES = 2**20
RSS_FLOOR_MB = 8.0


@dataclass(frozen=True)
class Finding:
    check: str
    series: str
    verdict: str  # ok | FAIL | not judged | shown (never judged)
    detail: str

    @property
    def failed(self) -> bool:
        return self.verdict == "FAIL"


def thirds(items: Sequence[Any]) -> tuple[Sequence[Any], Sequence[Any], Sequence[Any]]:
    a, b = round(len(items) / 3), round(2 * len(items) / 3)
    return items[:a], items[a:b], items[b:]


def growth_checks(last: Sample, config: SoakConfig) -> list[tuple[Key, float, float, float]]:
    """(series, seconds until it can be steady, relative tolerance, absolute floor)."""
    checks: list[tuple[Key, float, float, float]] = []
    for table in PRUNED:
        checks.append((("rows", table), config.table_settle_s, GROWTH_TOLERANCE, 0.0))
        checks.append((("bytes", table), config.table_settle_s, GROWTH_TOLERANCE, SIZE_FLOOR_BYTES))
    for kind, series in sorted(last.values):
        if kind == "topic_records":
            checks.append(((kind, series), config.topic_settle_s, GROWTH_TOLERANCE, 0.0))
        elif kind == "rss_mb":
            checks.append(((kind, series), config.table_settle_s, GROWTH_TOLERANCE, RSS_FLOOR_MB))
    return checks


def growth_findings(samples: Sequence[Sample], config: SoakConfig) -> list[Finding]:
    """Does anything keep growing once its retention applies? Last third vs middle third."""
    load = [s for s in samples if s.phase == "load"]
    _first, middle, last = thirds(load)
    if not middle or not last:
        return [Finding("growth", "all", "not judged", f"{len(load)} samples under load")]
    middle_from = middle[0].elapsed_s
    findings = []
    for key, settle_s, tolerance, floor in growth_checks(load[-1], config):
        name = f"{key[0]} growth"
        if settle_s > middle_from:
            detail = f"steady after {settle_s:.0f} s; middle third starts at {middle_from:.0f} s"
            findings.append(Finding(name, key[1], "not judged", detail))
            continue
        before = max(s.values.get(key, 0.0) for s in middle)
        after = max(s.values.get(key, 0.0) for s in last)
        grew = after > before * (1 + tolerance) + floor
        change = f"{(after / before - 1) * 100:+.1f} %" if before else "from 0"
        detail = f"max {_fmt(before)} (middle third) -> {_fmt(after)} (last third), {change}"
        findings.append(Finding(name, key[1], "FAIL" if grew else "ok", detail))
    findings.extend(row_size_findings(middle, last))
    return findings


def row_size_findings(middle: Sequence[Sample], last: Sequence[Sample]) -> list[Finding]:
    """Tables kept by design grow with the missions; their bytes per row must not."""
    findings = []
    for table in KEPT:

        def per_row(sample: Sample, table: str = table) -> float:
            rows = sample.values.get(("rows", table), 0.0)
            return sample.values.get(("bytes", table), 0.0) / rows if rows else 0.0

        before, after = per_row(middle[-1]), per_row(last[-1])
        grew = before > 0 and after > before * (1 + GROWTH_TOLERANCE)
        detail = f"{before:.0f} -> {after:.0f} bytes per row (grows by design, one row a mission)"
        findings.append(Finding("bytes per row", table, "FAIL" if grew else "ok", detail))
    return findings


def latency_findings(
    posts: Timings, e2e: Timings, *, warm_until: float, load_end: float, window_s: float
) -> list[Finding]:
    """Drift of p99 latency: the last third of the load phase vs the first third after
    warm-up, each third's figure being the median of its windows' p99. A trend moves
    every window; a burst of other work on the machine moves a few, and not the median.
    """
    span = (load_end - warm_until) / 3
    if span < 3 * window_s:
        return [Finding("latency drift", "p99", "not judged", "load too short after warm-up")]
    findings = []
    for name, timings in (("POST", posts), ("end_to_end", e2e)):
        first = windowed_p99(timings, warm_until, warm_until + span, window_s)
        last = windowed_p99(timings, load_end - span, load_end, window_s)
        drift = last / first - 1 if first > 0 else float("nan")
        pooled = (
            p99(timings.between(warm_until, warm_until + span)),
            p99(timings.between(load_end - span, load_end)),
        )
        detail = (
            f"median window p99 {first * 1000:.0f} ms (first third) -> {last * 1000:.0f} ms "
            f"({drift:+.0%}); pooled p99 {pooled[0] * 1000:.0f} -> {pooled[1] * 1000:.0f} ms"
        )
        verdict = "FAIL" if drift > LATENCY_TOLERANCE else "ok"
        findings.append(Finding("latency drift", name, verdict, detail))
    return findings


def machine_finding(samples: Sequence[Sample], warm_until_s: float) -> Finding:
    """The machine probe's median, first third after warm-up vs last third: shown next to
    the latency drift (the same thirds), never judged."""
    timed = [s for s in samples if s.phase == "load" and s.elapsed_s >= warm_until_s]
    first, _middle, last = thirds(
        [s.values[("machine", "probe_ms")] for s in timed if ("machine", "probe_ms") in s.values]
    )
    if not first or not last:
        return Finding("machine speed", "probe", "shown", "too few samples")
    before, after = statistics.median(first), statistics.median(last)
    detail = (
        f"median {before:.1f} ms (first third) -> {after:.1f} ms (last third), "
        f"{after / before - 1:+.0%}: the same work, timed under the run's load"
    )
    return Finding("machine speed", "probe", "shown", detail)


def windowed_p99(timings: Timings, start: float, end: float, window_s: float) -> float:
    """Median over the windows of [start, end) of each window's p99."""
    figures = []
    at = start
    while at + window_s <= end:
        values = timings.between(at, at + window_s)
        if len(values) >= 20:  # a p99 of fewer values is its maximum
            figures.append(p99(values))
        at += window_s
    return statistics.median(figures) if figures else float("nan")


def completion_finding(load: Load, completions: Completions, last: Sample) -> Finding:
    lost = load.accepted - completions.completed
    others = {
        status: int(n)
        for (kind, status), n in last.values.items()
        if kind == "missions" and status != "completed"
    }
    detail = (
        f"{load.accepted} accepted, {completions.completed} completed, not completed "
        f"{others or 'none'}, {load.errors} POST errors (retried)"
    )
    return Finding("every mission completes", "missions", "FAIL" if lost else "ok", detail)


def _missing(value: float | None) -> bool:
    return value is None or value != value  # NaN: no rate yet


def _fmt(value: float) -> str:
    if abs(value) >= 2**20:
        return f"{value / 2**20:.1f} MiB" if value > 10_000_000 else f"{value:,.0f}"
    return f"{value:,.1f}" if value < 100 else f"{value:,.0f}"


# -- outputs -------------------------------------------------------------------------------

PANELS = (
    ("rows", "table rows", True),
    ("bytes", "table + index size (bytes)", True),
    ("topic_records", "topic records (end - start offsets)", True),
    ("objects", "bucket objects", False),
    ("rss_mb", "process RSS (MiB)", False),
    ("cpu_cores", "process CPU (cores)", False),
    ("latency_p99_s", "p99 latency in window (s)", True),
    ("pipeline", "missions per s / in flight", False),
    ("db", "PostgreSQL transactions per s", False),
)


def write_csv(samples: Sequence[Sample], path: Path) -> None:
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["elapsed_s", "phase", "kind", "series", "value"])
        for sample in samples:
            for (kind, series), value in sorted(sample.values.items()):
                writer.writerow([f"{sample.elapsed_s:.1f}", sample.phase, kind, series, value])


#: Panels show the tables with a rule (and missions); the fixed small ones are in the CSV.
PLOTTED_TABLES = frozenset((*PRUNED, *KEPT))
#: Drawn on the right-hand axis of its panel (another scale).
SECONDARY = {("pipeline", "in_flight")}


def plot(samples: Sequence[Sample], path: Path, title: str, marks: dict[str, float]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(3, 3, figsize=(18, 13), constrained_layout=True)
    minutes = [s.elapsed_s / 60 for s in samples]
    for ax, (kind, label, log) in zip(axes.flat, PANELS, strict=True):
        ax.set_prop_cycle(color=[plt.get_cmap("tab20")(i) for i in range(20)])  # 20 apart
        right = ax.twinx() if any(k[0] == kind for k in SECONDARY) else None
        for name in _series(samples, kind):
            ys = [s.values.get((kind, name), float("nan")) for s in samples]
            on = right if right is not None and (kind, name) in SECONDARY else ax
            style = "--" if on is right else "-"
            on.plot(minutes, ys, style, label=name, linewidth=1.2)
        if log:
            ax.set_yscale("symlog" if kind != "latency_p99_s" else "log")
        _marks(ax, marks)
        ax.set_title(label, fontsize=10)
        ax.set_xlabel("minutes")
        ax.grid(True, alpha=0.3)
        handles, labels = ax.get_legend_handles_labels()
        if right is not None:
            more = right.get_legend_handles_labels()
            handles, labels = handles + more[0], labels + more[1]
            right.set_ylabel("in flight (dashed)", fontsize=8)
        if handles:
            ax.legend(handles, labels, fontsize=6, ncol=2 if len(labels) > 6 else 1)
    fig.suptitle(title)
    fig.savefig(path, dpi=80)
    plt.close(fig)


def _series(samples: Sequence[Sample], kind: str) -> list[str]:
    names = sorted({k[1] for s in samples for k in s.values if k[0] == kind})
    if kind in ("rows", "bytes"):
        names = [n for n in names if n in PLOTTED_TABLES]
    return names


def _marks(ax: Any, marks: dict[str, float]) -> None:
    for mark, at in marks.items():
        ax.axvline(at / 60, color="grey", linestyle=":", linewidth=0.8)
        ax.text(
            at / 60,
            0.99,
            f" {mark}",
            transform=ax.get_xaxis_transform(),
            fontsize=7,
            va="top",
            rotation=90,
            color="grey",
        )


def print_findings(findings: Iterable[Finding]) -> None:
    print("\n| check | series | verdict | detail |\n|---|---|---|---|")
    for f in findings:
        print(f"| {f.check} | {f.series} | {f.verdict} | {f.detail} |")


def print_summary(
    samples: Sequence[Sample], load: Load, completions: Completions, load_s: float
) -> None:
    """Steady-state figures for docs/benchmarks.md: the last third of the load phase."""
    under_load = [s for s in samples if s.phase == "load"]
    _first, _middle, last = thirds(under_load)
    if not last:
        return
    print(
        f"\n{load.accepted} missions accepted in {load_s:.0f} s "
        f"({load.accepted / load_s:.1f}/s), {completions.completed} completed"
    )
    print("\n| series | steady (mean of last third) | max of last third |\n|---|---|---|")
    for key in sorted(last[-1].values):
        if key[0] in ("rows", "bytes", "topic_records", "objects", "rss_mb", "cpu_cores", "db"):
            values = [s.values[key] for s in last if not _missing(s.values.get(key))]
            if values:
                mean = sum(values) / len(values)
                print(f"| {key[0]} {key[1]} | {_fmt(mean)} | {_fmt(max(values))} |")
    for name, timings in (("POST", load.posts), ("end to end", completions.e2e)):
        everything = list(timings.seconds)
        if everything:
            everything.sort()
            p50 = everything[len(everything) // 2]
            print(
                f"| latency {name} over the run | p50 {p50 * 1000:.0f} ms | "
                f"p99 {p99(everything) * 1000:.0f} ms |"
            )


# -- the run -------------------------------------------------------------------------------


@dataclass
class Run:
    config: SoakConfig
    settings: Settings
    children: list[Child]
    api_key: str
    database: str
    services: dict[str, int] = field(default_factory=dict)  # service -> pid, for its CPU
    interrupted: asyncio.Event = field(default_factory=asyncio.Event)
    started: float = 0.0
    load_end: float = 0.0


async def drive(run: Run, receiver: LoopbackReceiver) -> list[Finding]:
    """Load, completions and samples until every mission is final and the tail is over."""
    config = run.config
    load = Load(run.settings.public_base_url, run.api_key, config, receiver.url("/soak-hook"))
    completions = Completions(run.settings, load)
    sampler = Sampler(
        run.settings, config, run.children, load, completions, run.database, run.services
    )
    stop = asyncio.Event()
    reader = asyncio.create_task(completions.run(stop))
    run.started = time.time()
    await sampler.take(run.started)
    load_task = asyncio.create_task(load.run())
    drained_at: float | None = None
    try:
        while True:
            await _sleep_watching(config.sample_s, run, load_task)
            receiver.received.clear()  # counted by the database; kept, it would grow
            if run.interrupted.is_set() and not load.done:
                load_task.cancel()  # Ctrl-C: stop sending, report what was seen
                load.done = True
            if load.done and not run.load_end:
                run.load_end = time.time()
            if run.interrupted.is_set():
                await sampler.take(run.started)
                break
            sample = await sampler.take(run.started)
            _progress(sample, load, completions)
            if run.load_end and drained_at is None:
                final = sum(sample.values.get(("missions", s), 0) for s in FINAL_OR_HELD)
                finished = completions.completed >= load.accepted or final >= load.accepted
                if finished or time.time() - run.load_end > config.drain_timeout_s:
                    drained_at = time.time()
            if drained_at is not None and time.time() - drained_at >= config.table_settle_s:
                break
    finally:
        stop.set()
        await reader
        load_task.cancel()
    return _report(run, sampler, load, completions, drained_at or time.time())


async def _sleep_watching(seconds: float, run: Run, load: asyncio.Task[None]) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not run.interrupted.is_set():
        for child in run.children:
            if not child.alive():
                raise SystemExit(f"{child.name} died:\n{child.log_text()[-3000:]}")
        if load.done() and load.exception() is not None:
            raise SystemExit(f"load generator failed: {load.exception()!r}")
        await asyncio.sleep(1)


def _progress(sample: Sample, load: Load, completions: Completions) -> None:
    v = sample.values
    print(
        f"{sample.elapsed_s:7.0f} s {sample.phase:5} accepted {load.accepted:>7} "
        f"completed {completions.completed:>7} in flight {v[('pipeline', 'in_flight')]:>6.0f} "
        f"POST p99 {v[('latency_p99_s', 'POST')] * 1000:6.0f} ms "
        f"e2e p99 {v[('latency_p99_s', 'end_to_end')] * 1000:6.0f} ms "
        f"outbox rows {v.get(('rows', 'outbox'), 0):>7.0f} "
        f"processed rows {v.get(('rows', 'processed_events'), 0):>7.0f}",
        flush=True,
    )


def _report(
    run: Run, sampler: Sampler, load: Load, completions: Completions, drained_at: float
) -> list[Finding]:
    config = run.config
    load_s = run.load_end - run.started
    findings = [completion_finding(load, completions, sampler.samples[-1])]
    findings += growth_findings(sampler.samples, config)
    findings += latency_findings(
        load.posts,
        completions.e2e,
        warm_until=run.started + config.table_settle_s,
        load_end=run.load_end,
        window_s=config.sample_s,
    )
    findings.append(machine_finding(sampler.samples, config.table_settle_s))
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    csv_path, png_path = OUT_DIR / f"soak-{stamp}.csv", OUT_DIR / f"soak-{stamp}.png"
    write_csv(sampler.samples, csv_path)
    title = (
        f"Driftline soak: {load.accepted:,} missions at {config.rate_per_s:g}/s, "
        f"retention {config.retention_s:g} s ({stamp})"
    )
    marks = {
        "tables steady": config.table_settle_s,
        "topics steady": config.topic_settle_s,
        "load ends": load_s,
        "all completed": drained_at - run.started,
    }
    plot(sampler.samples, png_path, title, marks)
    if config.missions >= FULL_SIZE:
        DOCS_IMAGE.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(png_path, DOCS_IMAGE)
    print_summary(sampler.samples, load, completions, load_s)
    print(f"\nsamples: {csv_path}\nplot:    {png_path}")
    return findings


async def prefill(database_url: str, count: int) -> None:
    """`count` completed missions of the soak's own shape, as a long-running deployment
    holds them (missions are kept): does latency depend on how many there are?"""
    if count <= 0:
        return
    request = json.dumps(mission_body(external_ref="SOAK-PREFILL"))
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        await conn.execute(
            """
            INSERT INTO missions (id, tenant, name, external_ref, request, status, stage,
                                  progress, created_at, updated_at, completed_at)
            SELECT gen_random_uuid(), 'soak', 'prefill', 'SOAK-PREFILL-' || n, $1::jsonb,
                   'completed', 'notify', 1.0, now() - interval '1 day',
                   now() - interval '1 day', now() - interval '1 day'
            FROM generate_series(1, $2) AS n
            """,
            request,
            count,
        )
        await conn.execute("VACUUM ANALYZE missions")
    finally:
        await conn.close()
    print(f"prefilled {count:,} completed missions", flush=True)


async def cleanup(settings: Settings, admin_url: str, database: str) -> None:
    """Drop what the run made: database, topics, bucket."""
    await drop_database(asyncpg_dsn(admin_url), database)
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        await admin.delete_topics(all_topics(settings.topic_prefix))
    finally:
        await admin.close()
    await asyncio.to_thread(_empty_bucket, settings)


def _empty_bucket(settings: Settings) -> None:
    client: Any = s3_client(settings.s3_endpoint_url or "", settings)
    bucket = settings.s3_bucket
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if keys:
            client.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
    client.delete_bucket(Bucket=bucket)


def services(base: Settings, config: SoakConfig, run_id: str) -> LocalServices:
    """The shared local services, or (`--private-services`) a set of this run's own on
    free ports, which no other engineer's outage test can stop mid-run."""
    if not config.private_services:
        return LocalServices(base)
    home = PROJECT_ROOT / ".driftline" / "soak" / run_id / "services"
    return LocalServices.isolated(base, home, free_port_offset(base))


async def soak(config: SoakConfig) -> int:
    base = load_settings()
    run_id = uuid.uuid4().hex[:6]
    local = services(base, config, run_id)
    local.up()
    admin_url = local.postgres.database_url
    database = f"soak_{run_id}"
    url = await create_database(admin_url, database)
    port = free_port()
    settings = with_retention(soak_settings(base, local, url, run_id), config)
    settings = settings.model_copy(update={"public_base_url": f"http://127.0.0.1:{port}"})
    try:
        RetentionPolicy.from_settings(settings).check()
        ensure_bucket(local.minio.endpoint, settings, settings.s3_bucket)
        await prepare_topics(settings, config)
        db = Database(settings)
        async with db.unit_of_work() as uow:
            api_key = await create_api_key(uow, "soak")
        await db.close()
        await prefill(url, config.prefill_missions)
        logs = PROJECT_ROOT / ".driftline" / "soak" / run_id / "logs"
        children = deployment(settings, config, logs, port)
        run = Run(
            config,
            settings,
            children,
            api_key,
            database,
            services=service_pids(local),
            interrupted=stop_on_signals(),
        )
        findings = await _with_children(run, logs)
    finally:
        if not config.keep and not config.private_services:  # private ones go whole, below
            await cleanup(settings, admin_url, database)
        if config.private_services:
            local.down()  # with --keep, its data stays in the run's folder
        if not config.keep:
            shutil.rmtree(PROJECT_ROOT / ".driftline" / "soak" / run_id, ignore_errors=True)
    print_findings(findings)
    failed = [f for f in findings if f.failed]
    print(f"\nsoak {'FAILED' if failed else 'passed'}: {len(failed)} failing check(s)")
    return 1 if failed else 0


async def _with_children(run: Run, logs: Path) -> list[Finding]:
    print(f"logs: {logs}", flush=True)
    try:
        for child in run.children:
            child.start()
        await wait_ready(run.children, run.settings.public_base_url, len(SOAK_STAGES))
        async with LoopbackReceiver([204]) as receiver:
            return await drive(run, receiver)
    finally:
        for child in reversed(run.children):
            await child.stop()


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--missions", type=int, default=FULL_SIZE)
    parser.add_argument("--rate", type=float, default=SoakConfig.rate_per_s, help="missions/s")
    parser.add_argument("--retention-s", type=float, default=SoakConfig.retention_s)
    parser.add_argument("--sample-s", type=float, default=SoakConfig.sample_s)
    parser.add_argument(
        "--stage-processes",
        type=int,
        choices=sorted(LAYOUTS),
        default=2,
        help="processes running the five stage runners (2: validate+fetch_forcing+simulate, "
        "postprocess+notify)",
    )
    parser.add_argument(
        "--private-services",
        action="store_true",
        help="start a Kafka, PostgreSQL and MinIO of the run's own (free ports) instead of "
        "using the shared ones",
    )
    parser.add_argument("--keep", action="store_true", help="keep the database, topics, bucket")
    parser.add_argument(
        "--prefill-missions",
        type=int,
        default=0,
        metavar="N",
        help="insert N completed missions before the load (latency vs the kept table's size)",
    )
    parser.add_argument("--stages-process", metavar="STAGES", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.stages_process:
        settings = load_settings()
        configure_logging(settings)
        asyncio.run(serve_stages(settings, args.stages_process.split(",")))
        return 0
    config = SoakConfig(
        missions=args.missions,
        rate_per_s=args.rate,
        retention_s=args.retention_s,
        sample_s=args.sample_s,
        stage_processes=LAYOUTS[args.stage_processes],
        private_services=args.private_services,
        keep=args.keep,
        prefill_missions=args.prefill_missions,
    )
    return asyncio.run(soak(config))


if __name__ == "__main__":
    sys.exit(main())
