"""Chaos run: the whole pipeline as separate processes under steady load, with seeded faults.

    .venv/bin/python -m bench.chaos [--missions 200] [--rate 0.4] [--nodes 1|3] [--seed 7]
    make chaos            # the same, 200 missions;  make chaos NODES=3: three Kafka nodes

Starts its own Kafka, PostgreSQL and MinIO (`driftline infra up --home … --port-offset …`,
never the shared ones), then each stage as `driftline worker <stage>`, `driftline api`
and `driftline relay`. Submits small missions at a steady rate (a retried POST keeps its
Idempotency-Key) while it SIGKILLs, at seeded random moments, every stage worker (the
simulate worker while it simulates), the API, the relay, a Kafka JVM (with three nodes,
the one leading most partitions), the PostgreSQL postmaster and MinIO, restarting each a
few seconds later. It reads the public topics from the beginning, waits until every
accepted mission is final or held, stops everything, and prints one table. The exit
status is non-zero on any lost or stuck mission, held mission without a reason, final
event duplicated under another `ce_id`, orphan process or leaked work folder.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import random
import shutil
import socket
import statistics
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from rich.console import Console
from rich.table import Table

from bench.processes import MARKER, DriftlineProcess, marked
from driftline.contracts.envelope import header_map
from driftline.contracts.topics import PUBLIC_TOPICS, internal_topics, topic
from driftline.db.urls import asyncpg_dsn
from driftline.forcing.sample import write_sample_catalog
from driftline.infra.manager import LocalServices, free_port_offset
from driftline.runtime.dead_letters import read_dead_letters
from driftline.settings import PROJECT_ROOT, load_settings
from tests.helpers import mission_body
from tests.pipeline import settings_env
from workers import STAGE_REGISTRY

console = Console(stderr=True)

STAGES = tuple(STAGE_REGISTRY)
SERVICES = ("kafka", "postgres", "minio")
#: One of each, in this order before the seeded shuffle.
FAULT_KINDS = (*STAGES, "api", "relay", *SERVICES)
FINAL = ("completed", "failed", "cancelled")
SAMPLE_START = datetime(2024, 1, 1)


@dataclass(frozen=True)
class ChaosConfig:
    """What a run does; the same seed gives the same missions and fault schedule."""

    missions: int = 200
    rate_per_s: float = 0.4
    nodes: int = 1
    seed: int = 7
    rounds: int = 1  # faults of each kind
    replicas: int = 2  # processes of each stage, API and relay: the deployment for availability
    restart_after_s: tuple[float, float] = (2.0, 6.0)
    settle_timeout_s: float = 900.0
    keep: bool = False

    def schedule(self) -> list[tuple[float, str]]:
        """(seconds after the first submission, fault kind), in time order, spaced out."""
        rng = random.Random(self.seed)
        kinds = [kind for _ in range(self.rounds) for kind in FAULT_KINDS]
        rng.shuffle(kinds)
        window = self.missions / self.rate_per_s
        # Faults span the whole load, the last one near its end: the time from the last fault
        # to quiescence is then the recovery's own, not the rest of the submissions.
        slot = window * 0.9 / max(len(kinds), 1)  # one fault per slot, at a random moment in it
        return [(window * 0.1 + (i + rng.random() * 0.7) * slot, k) for i, k in enumerate(kinds)]

    def restart_delay(self, rng: random.Random) -> float:
        return rng.uniform(*self.restart_after_s)


@dataclass
class Fault:
    """One injected fault and what was seen while it lasted."""

    kind: str
    at: float  # wall clock of the kill
    victim: str
    pid: int
    restarted_at: float = 0.0
    not_ready: dict[str, str] = field(default_factory=dict)  # process -> failing checks
    log_marks: dict[str, int] = field(default_factory=dict)
    warnings: Counter[str] = field(default_factory=Counter)
    slowed: list[float] = field(default_factory=list)  # e2e of missions it made slow


@dataclass
class Submission:
    index: int
    first_attempt: float
    attempts: int = 0
    mission_id: str | None = None
    accepted_at: float = 0.0
    refused: str | None = None
    retried_on: Counter[str] = field(default_factory=Counter)  # what made the client retry


@dataclass
class FinalEvent:
    kind: str  # completed | failed
    ce_id: str
    at: float
    reason: str | None


@dataclass
class Report:
    """The figures of one run."""

    config: ChaosConfig
    accepted: int = 0
    not_accepted: int = 0
    completed: int = 0
    failed: Counter[str] = field(default_factory=Counter)
    held: int = 0
    held_without_reason: int = 0
    stuck: int = 0
    lost: int = 0
    duplicates_same_id: int = 0
    duplicates_other_id: int = 0
    dead_letters: int = 0
    orphans: list[str] = field(default_factory=list)
    leaked_folders: list[str] = field(default_factory=list)
    settle_s: float | None = None
    drain_s: float | None = None
    p50_s: float | None = None
    p95_s: float | None = None
    fault_free_p95_s: float | None = None  # missions done before the first fault
    api_retries: Counter[str] = field(default_factory=Counter)
    faults: list[Fault] = field(default_factory=list)
    home: Path | None = None

    def problems(self) -> list[str]:
        found = {
            "lost": self.lost,
            "stuck": self.stuck,
            "held without reason": self.held_without_reason,
            "final events duplicated under another ce_id": self.duplicates_other_id,
            "orphan processes": len(self.orphans),
            "leaked work folders": len(self.leaked_folders),
            "not accepted": self.not_accepted,
        }
        return [f"{count} {what}" for what, count in found.items() if count]

    @property
    def ok(self) -> bool:
        return not self.problems()


# -- the run -------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ChaosRun:
    """One run: its services, processes, load, faults and observations."""

    def __init__(self, config: ChaosConfig) -> None:
        self.config = config
        self.run_id = f"{datetime.now():%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:4]}"
        self.home = PROJECT_ROOT / ".driftline" / "chaos" / self.run_id
        base = load_settings()
        self.offset = free_port_offset(base)
        self.services = LocalServices.isolated(base, self.home, self.offset, config.nodes)
        api_port = _free_port()
        self.api_ports = {"api": api_port}
        self.api_ports |= {f"api-{n}": _free_port() for n in range(2, config.replicas + 1)}
        self.settings = self.services.client_settings(base).model_copy(
            update={
                "topic_prefix": "chaos.",
                "work_dir": self.home / "work",
                "artifact_dir": self.home / "artifacts",
                "api_port": api_port,
                "public_base_url": f"http://127.0.0.1:{api_port}",
                "forcing_catalog": self.home / "forcing" / "catalog.json",
            }
        )
        self.rng = random.Random(config.seed)
        self.processes: dict[str, DriftlineProcess] = {}
        self.metrics_ports: dict[str, int] = {}
        self.submissions: list[Submission] = []
        self.finals: dict[str, list[FinalEvent]] = {}
        self.seen: set[tuple[str, int, int]] = set()
        self.faults: list[Fault] = []
        self.api_key = ""

    # -- setup and teardown ---------------------------------------------------------------

    async def infra(self, *args: str) -> None:
        """`driftline infra ARGS` for this run's isolated set of services."""
        argv = [*args, "--home", str(self.home), "--port-offset", str(self.offset)]
        if args[0] != "down":
            argv += ["--kafka-nodes", str(self.config.nodes)]
        await self.cli(["infra", *argv], timeout_s=300)

    async def cli(
        self, args: list[str], timeout_s: float = 120, env: dict[str, str] | None = None
    ) -> str:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "driftline.cli.main",
            *args,
            env={**(env or dict(os.environ)), "COLUMNS": "200"},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await asyncio.wait_for(proc.communicate(), timeout_s)
        text = out.decode(errors="replace")
        with (self.home / "logs" / "cli.log").open("a") as log:
            log.write(f"$ driftline {' '.join(args)}\n{text}\n")
        if proc.returncode != 0:
            raise RuntimeError(f"driftline {' '.join(args)} failed:\n{text[-2000:]}")
        return text

    def env(self, name: str) -> dict[str, str]:
        """Settings as DRIFTLINE_* variables, this process's metrics port, and the marker."""
        env = settings_env(self.settings)
        env[MARKER] = self.run_id
        if name in self.api_ports:
            env["DRIFTLINE_API_PORT"] = str(self.api_ports[name])
        else:
            self.metrics_ports.setdefault(name, _free_port())
            env["DRIFTLINE_METRICS_PORT"] = str(self.metrics_ports[name])
        return env

    async def start(self) -> None:
        (self.home / "logs").mkdir(parents=True, exist_ok=True)
        console.print(
            f"chaos run {self.run_id}: services on port offset {self.offset}, {self.home}"
        )
        await self.infra("up")
        write_sample_catalog(self.home / "forcing", start=SAMPLE_START, hours=48)
        cli_env = settings_env(self.settings)
        await self.cli(["topics", "create"], env=cli_env)
        keys = await self.cli(["keys", "create", "--tenant", "chaos"], env=cli_env)
        self.api_key = next(
            line.split()[2] for line in keys.splitlines() if line.startswith("api key:")
        )
        commands: dict[str, list[str]] = {}
        for kind, args in [("api", ["api"]), ("relay", ["relay"])] + [
            (stage, ["worker", stage]) for stage in STAGES
        ]:  # the first of each kind is the one faults target
            for n in range(1, self.config.replicas + 1):
                name = kind if n == 1 else f"{kind}-{n}"
                # each worker a static member under a name it keeps across its restarts
                instance = ["--instance", name] if kind in STAGES else []
                commands[name] = args + instance
        for name, args in commands.items():
            process = DriftlineProcess(
                name, args, self.env(name), self.home / "logs" / f"{name}.log"
            )
            process.start()
            self.processes[name] = process
        await self.wait_ready()

    async def wait_ready(self, timeout_s: float = 240) -> None:
        """Every process answers /readyz with 200 (the simulate worker once warm)."""
        async with httpx.AsyncClient(timeout=3) as http:
            deadline = time.monotonic() + timeout_s
            for name in self.processes:
                while not await self._ready(http, name):
                    if time.monotonic() > deadline or not self.processes[name].alive():
                        raise RuntimeError(f"{name} not ready: {self.processes[name].log_file}")
                    await asyncio.sleep(0.5)

    def readyz_url(self, name: str) -> str:
        port = self.api_ports[name] if name in self.api_ports else self.metrics_ports[name]
        return f"http://127.0.0.1:{port}/readyz"

    async def _ready(self, http: httpx.AsyncClient, name: str) -> bool:
        with contextlib.suppress(httpx.HTTPError):
            return (await http.get(self.readyz_url(name))).status_code == 200
        return False

    async def shutdown(self) -> dict[str, int | None]:
        """SIGTERM every process (they drain), SIGKILL what does not stop."""
        codes = await asyncio.gather(*(p.stop() for p in self.processes.values()))
        return dict(zip(self.processes, codes, strict=True))

    # -- load --------------------------------------------------------------------------

    def mission(self, index: int) -> dict[str, Any]:
        """A small mission (few particles, three hours), spread over a few places and times."""
        rng = random.Random(self.config.seed * 100_003 + index)
        position = {
            "lat": 60.0 + rng.choice((-0.1, 0.0, 0.1)),
            "lon": 4.0 + rng.choice((-0.2, 0.0, 0.2)),
            "time": f"2024-01-01T{rng.choice((6, 12)):02d}:00:00Z",
            "radius_m": 500,
        }
        return mission_body(
            name=f"chaos {index}",
            last_known_position=position,
            duration_hours=3,
            particles=rng.choice((20, 50, 100)),
            external_ref=f"CHAOS-{self.run_id}-{index}",
        )

    async def submit_all(self) -> None:
        started = time.monotonic()
        async with httpx.AsyncClient(
            headers={"Authorization": f"Bearer {self.api_key}"},
            timeout=15,
        ) as http:
            tasks = []
            for index in range(self.config.missions):
                await asyncio.sleep(
                    max(0.0, started + index / self.config.rate_per_s - time.monotonic())
                )
                tasks.append(asyncio.create_task(self.submit(http, index)))
            await asyncio.gather(*tasks)

    async def submit(self, http: httpx.AsyncClient, index: int) -> None:
        """POST until 202, with the same Idempotency-Key (the API may be dead meanwhile).

        Like a load balancer, a failed try goes to the next API process.
        """
        urls = [f"http://127.0.0.1:{port}/v1/missions" for port in self.api_ports.values()]
        submission = Submission(index, time.time())
        self.submissions.append(submission)
        body = self.mission(index)
        key = f"chaos-{self.run_id}-{index}"
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            submission.attempts += 1
            try:
                response = await http.post(
                    urls[(index + submission.attempts) % len(urls)],
                    json=body,
                    headers={"Idempotency-Key": key},
                )
            except httpx.HTTPError as exc:
                submission.retried_on[type(exc).__name__] += 1
                await asyncio.sleep(0.1 if len(urls) > 1 else 0.5 + random.random())
                continue
            if response.status_code == 202:
                submission.mission_id = str(response.json()["id"])
                submission.accepted_at = time.time()
                return
            if response.status_code not in (409, 429, 500, 502, 503, 504):
                submission.refused = f"{response.status_code}: {response.text[:200]}"
                return
            submission.retried_on[str(response.status_code)] += 1
            await asyncio.sleep(0.5 + random.random())
        submission.refused = "no 202 within 600 s"

    # -- the public topics ---------------------------------------------------------------

    async def read_public_topics(self, stop: asyncio.Event) -> None:
        """Every record of the public topics from the beginning; survives Kafka restarts."""
        names = [topic(self.settings.topic_prefix, t) for t in PUBLIC_TOPICS]
        while not stop.is_set():
            consumer = AIOKafkaConsumer(
                *names,
                bootstrap_servers=self.settings.kafka_bootstrap_servers,
                group_id=f"chaos-reader-{uuid.uuid4().hex[:8]}",
                auto_offset_reset="earliest",
                enable_auto_commit=False,
                metadata_max_age_ms=5000,
            )
            try:
                await asyncio.wait_for(consumer.start(), 30)
                while not stop.is_set():
                    batches = await asyncio.wait_for(consumer.getmany(timeout_ms=500), 60)
                    for records in batches.values():
                        for record in records:
                            self.observe(record)
            except Exception as exc:  # a dead broker: read again from the start, deduplicated
                console.print(f"[yellow]public-topic reader restarts: {exc!r}[/yellow]")
                await asyncio.sleep(2)
            finally:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(consumer.stop(), 10)

    def observe(self, record: Any) -> None:
        where = (record.topic, record.partition, record.offset)
        if where in self.seen:
            return
        self.seen.add(where)
        suffix = record.topic.removeprefix(self.settings.topic_prefix)
        if suffix not in ("missions.completed", "missions.failed"):
            return
        headers = header_map(record.headers)
        data = json.loads(record.value)
        at = datetime.fromisoformat(headers["ce_time"].replace("Z", "+00:00")).timestamp()
        event = FinalEvent(suffix.split(".")[1], headers["ce_id"], at, data.get("reason"))
        self.finals.setdefault(str(data["mission_id"]), []).append(event)

    # -- faults ---------------------------------------------------------------------------

    async def inject_faults(self, started: float) -> None:
        for due, kind in self.config.schedule():
            await asyncio.sleep(max(0.0, started + due - time.monotonic()))
            fault = await self.kill(kind)
            self.faults.append(fault)
            delay = self.config.restart_delay(self.rng)
            await self.observe_outage(fault, min(delay, 2.5))
            await asyncio.sleep(max(0.0, fault.at + delay - time.time()))
            await self.restart(kind)
            fault.restarted_at = time.time()
            console.print(
                f"fault {len(self.faults)}: {kind} (pid {fault.pid}) killed, "
                f"restarted after {fault.restarted_at - fault.at:.1f} s"
            )

    async def kill(self, kind: str) -> Fault:
        marks = {n: p.log_file.stat().st_size for n, p in self.processes.items()}
        if kind in self.processes:
            process = self.processes[kind]
            if kind == "simulate":  # while it simulates: right after it starts a run
                count = process.log_text().count("simulate.start")
                await process.wait_for_line("simulate.start", 120, after=count)
            fault = Fault(kind, time.time(), kind, process.pid, log_marks=marks)
            process.kill()
            return fault
        victim, pid = await self.service_pid(kind)
        fault = Fault(kind, time.time(), victim, pid, log_marks=marks)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, 9)
        return fault

    async def service_pid(self, kind: str) -> tuple[str, int]:
        pid: int | None
        if kind == "postgres":
            victim, pid = "postmaster", self.services.postgres.pid()
        elif kind == "minio":
            victim, pid = "minio", _read_pid(self.services.minio.pid_file)
        else:
            node = await self.leading_node()
            victim = f"kafka node {node.node_id}"
            pid = _read_pid(node.pid_file)
        if pid is None:
            raise RuntimeError(f"{kind} is not running")
        return victim, pid

    async def leading_node(self) -> Any:
        """The Kafka node leading most partitions of the pipeline's topics."""
        nodes = self.services.kafka.nodes
        if len(nodes) == 1:
            return nodes[0]
        admin = AIOKafkaAdminClient(bootstrap_servers=self.settings.kafka_bootstrap_servers)
        await admin.start()
        try:
            names = [topic(self.settings.topic_prefix, t) for t in internal_topics()]
            described = await admin.describe_topics(names)
        finally:
            await admin.close()
        leaders = Counter(p["leader"] for t in described for p in t["partitions"])
        leader_id = leaders.most_common(1)[0][0]
        return next(n for n in nodes if n.node_id == leader_id)

    async def restart(self, kind: str) -> None:
        if kind in self.processes:
            self.processes[kind].start()
            return
        for attempt in range(10):  # a killed postmaster's backends may still hold its memory
            try:
                await self.infra("up", "--only", kind)
                return
            except RuntimeError:
                if attempt == 9:
                    raise
                await asyncio.sleep(2)

    async def observe_outage(self, fault: Fault, after_s: float) -> None:
        """What an operator would see `after_s` into the outage: every process's /readyz."""
        await asyncio.sleep(after_s)

        async def probe(http: httpx.AsyncClient, name: str) -> None:
            try:
                response = await http.get(self.readyz_url(name))
            except httpx.HTTPError as exc:
                fault.not_ready[name] = f"no answer ({type(exc).__name__})"
                return
            if response.status_code != 200:
                checks = response.json().get("checks", {})
                failing = ",".join(c for c, ok in checks.items() if not ok)
                fault.not_ready[name] = f"{response.status_code} ({failing})"

        # All at once: looking must not delay the restart (a probe may take its timeout).
        async with httpx.AsyncClient(timeout=4) as http:
            await asyncio.gather(*(probe(http, name) for name in self.processes))

    def collect_log_warnings(self) -> None:
        """Warnings and errors each process logged from one fault's kill to the next's."""
        for index, fault in enumerate(self.faults):
            until = self.faults[index + 1].log_marks if index + 1 < len(self.faults) else {}
            for name, process in self.processes.items():
                for event in _log_events(
                    process.log_file, fault.log_marks.get(name, 0), until.get(name)
                ):
                    fault.warnings[f"{name}: {event}"] += 1

    # -- settling and the figures ----------------------------------------------------------

    async def missions_in_db(self) -> dict[str, asyncpg.Record]:
        conn = await asyncio.wait_for(asyncpg.connect(asyncpg_dsn(self.settings.database_url)), 10)
        try:
            rows = await conn.fetch(
                "SELECT id::text AS id, status, stage, status_detail, failure_reason FROM missions"
            )
        finally:
            await conn.close()
        return {row["id"]: row for row in rows}

    async def settle(self, last_fault: float) -> float | None:
        """Wait until every accepted mission is final (and its final event seen) or held."""
        deadline = last_fault + self.config.settle_timeout_s
        while time.time() < deadline:
            with contextlib.suppress(OSError, asyncpg.PostgresError, TimeoutError):
                if self.quiescent(await self.missions_in_db()):
                    return time.time()
            await asyncio.sleep(2)
        return None

    def quiescent(self, rows: dict[str, asyncpg.Record]) -> bool:
        for submission in self.submissions:
            row = rows.get(submission.mission_id or "")
            if submission.mission_id is None:
                continue
            if row is None or (row["status"] not in FINAL and row["status"] != "held"):
                return False
            if row["status"] in ("completed", "failed") and not self.finals.get(
                submission.mission_id
            ):
                return False
        return True

    def figures(self, rows: dict[str, asyncpg.Record], report: Report) -> None:
        durations = []
        first_fault = min((f.at for f in self.faults), default=float("inf"))
        before_faults = []  # the fault-free baseline of the same run
        lifetimes: list[tuple[float, float]] = []
        for submission in self.submissions:
            if submission.mission_id is None:
                report.not_accepted += 1
                continue
            report.accepted += 1
            report.api_retries.update(submission.retried_on)
            row = rows.get(submission.mission_id)
            finals = self.finals.get(submission.mission_id, [])
            ids = {f.ce_id for f in finals}
            report.duplicates_same_id += len(finals) - len(ids)
            report.duplicates_other_id += max(len(ids) - 1, 0)
            if row is None or (row["status"] in ("completed", "failed") and not finals):
                report.lost += 1
            elif row["status"] == "completed":
                report.completed += 1
                done = min(f.at for f in finals)
                durations.append(done - submission.first_attempt)
                lifetimes.append((submission.first_attempt, done))
                if done < first_fault:
                    before_faults.append(done - submission.first_attempt)
            elif row["status"] == "failed":
                report.failed[row["failure_reason"] or "?"] += 1
            elif row["status"] == "held":
                report.held += 1
                report.held_without_reason += 0 if row["status_detail"] else 1
            elif row["status"] not in FINAL:
                report.stuck += 1
        if durations:
            report.p50_s = statistics.median(durations)
            report.p95_s = _percentile(durations, 0.95)
        if before_faults:
            report.fault_free_p95_s = _percentile(before_faults, 0.95)
            slow = 3 * report.fault_free_p95_s
            for fault in self.faults:  # missions in flight during the outage that took > 3x
                until = fault.restarted_at or fault.at
                hit = [e - s for s, e in lifetimes if s <= until and e >= fault.at]
                fault.slowed = sorted(d for d in hit if d > slow)

    def leaked_folders(self) -> list[str]:
        """What the stopped workers left in the work folder (nothing, if all is well)."""
        work = self.settings.work_dir
        return (
            sorted(str(p.relative_to(work)) for p in work.rglob("*") if p.is_dir())
            if work.exists()
            else []
        )


def _read_pid(pid_file: Path) -> int | None:
    from driftline.infra.process import read_pid

    return read_pid(pid_file)


def _log_events(log_file: Path, start: int, end: int | None) -> Iterator[str]:
    """The `event` of each warning or error line in `log_file[start:end]`."""
    with contextlib.suppress(OSError), log_file.open("rb") as log:
        log.seek(start)
        chunk = log.read() if end is None else log.read(max(end - start, 0))
        for line in chunk.decode(errors="replace").splitlines():
            with contextlib.suppress(ValueError, AttributeError):
                entry = json.loads(line)
                if entry.get("level") in ("warning", "error", "critical"):
                    yield str(entry.get("event", "?"))[:60]


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


async def run_chaos(config: ChaosConfig) -> Report:
    """One chaos run from start to figures; everything it started is stopped at the end."""
    run = ChaosRun(config)
    report = Report(config, home=run.home)
    stop_reading = asyncio.Event()
    reader: asyncio.Task[None] | None = None
    try:
        await run.start()
        reader = asyncio.create_task(run.read_public_topics(stop_reading))
        started = time.monotonic()
        await asyncio.gather(run.submit_all(), run.inject_faults(started))
        last_fault = max((f.restarted_at for f in run.faults), default=time.time())
        settled = await run.settle(last_fault)
        if settled is not None:
            report.settle_s = settled - last_fault
            report.drain_s = settled - max(s.accepted_at for s in run.submissions)
        rows = await run.missions_in_db()
        run.figures(rows, report)
        report.dead_letters = len(await read_dead_letters(run.settings))
    finally:
        stop_reading.set()
        if reader is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(reader, 30)
        await run.shutdown()
        run.collect_log_warnings()
        report.faults = run.faults
        await asyncio.sleep(3)  # children of a stopped process need a moment to go
        report.orphans = [
            f"{p.pid} (parent {p.ppid}): {p.cmdline[:120]}" for p in marked(run.run_id)
        ]
        report.leaked_folders = run.leaked_folders()
        with contextlib.suppress(Exception):
            await run.infra("down")
        if report.ok and not config.keep:
            shutil.rmtree(run.home, ignore_errors=True)
    return report


# -- output --------------------------------------------------------------------------------


def print_report(report: Report) -> None:
    c = report.config
    table = Table(
        title=f"chaos run: {c.missions} missions at {c.rate_per_s}/s, "
        f"{c.nodes} Kafka node(s), {c.replicas} process(es) of each, seed {c.seed}, "
        f"{len(report.faults)} faults"
    )
    table.add_column("measure")
    table.add_column("value", justify="right")
    reasons = _counts(report.failed)
    rows = [
        ("accepted (202)", report.accepted),
        ("not accepted", report.not_accepted),
        ("completed", report.completed),
        ("failed", reasons),
        ("held", f"{report.held} ({report.held_without_reason} without a reason)"),
        ("stuck", report.stuck),
        ("lost", report.lost),
        ("final events duplicated, same ce_id", report.duplicates_same_id),
        ("final events duplicated, other ce_id", report.duplicates_other_id),
        ("dead letters", report.dead_letters),
        ("orphan processes", len(report.orphans)),
        ("leaked work folders", len(report.leaked_folders)),
        ("POST retries (same Idempotency-Key)", _counts(report.api_retries)),
        ("last fault to quiescence", _seconds(report.settle_s)),
        ("last 202 to quiescence", _seconds(report.drain_s)),
        ("end to end p50", _seconds(report.p50_s)),
        ("end to end p95", _seconds(report.p95_s)),
        ("end to end p95 before the first fault", _seconds(report.fault_free_p95_s)),
        ("p95 / fault-free p95 (target < 3)", _ratio(report.p95_s, report.fault_free_p95_s)),
    ]
    for name, value in rows:
        table.add_row(name, str(value))
    wide = Console(width=220)
    wide.print(table)
    faults = Table(
        "fault",
        "victim",
        "down",
        "missions slowed > 3x (slowest)",
        "/readyz not 200 meanwhile",
        "warnings logged (top 4)",
    )
    for fault in report.faults:
        warnings = "; ".join(f"{e} x{n}" for e, n in fault.warnings.most_common(4))
        not_ready = "; ".join(f"{n}: {why}" for n, why in sorted(fault.not_ready.items()))
        slowed = f"{len(fault.slowed)} ({fault.slowed[-1]:.1f} s)" if fault.slowed else "0"
        faults.add_row(
            fault.kind,
            fault.victim,
            f"{fault.restarted_at - fault.at:.1f} s",
            slowed,
            not_ready,
            warnings,
        )
    wide.print(faults)
    for line in report.orphans + report.leaked_folders:
        console.print(f"  {line}")
    problems = report.problems()
    if problems:
        console.print(f"[red]FAILED: {', '.join(problems)}; logs in {report.home}[/red]")
    else:
        console.print("[green]no mission lost, stuck or duplicated; nothing left behind[/green]")


def _ratio(value: float | None, baseline: float | None) -> str:
    return "-" if value is None or not baseline else f"{value / baseline:.2f}"


def _counts(counts: Counter[str]) -> str:
    """`12 (ConnectError 9, 503 3)`."""
    total = sum(counts.values())
    return f"{total} ({', '.join(f'{k} {n}' for k, n in counts.most_common())})" if total else "0"


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--missions", type=int, default=200)
    parser.add_argument("--rate", type=float, default=0.4, help="missions per second")
    parser.add_argument("--nodes", type=int, default=1, choices=(1, 3))
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--rounds", type=int, default=1, help="faults of each kind (0: none)")
    parser.add_argument(
        "--replicas", type=int, default=2, help="processes of each stage, API and relay"
    )
    parser.add_argument("--keep", action="store_true", help="keep the run's folder")
    args = parser.parse_args()
    config = ChaosConfig(
        missions=args.missions,
        rate_per_s=args.rate,
        nodes=args.nodes,
        seed=args.seed,
        rounds=args.rounds,
        replicas=args.replicas,
        keep=args.keep,
    )
    # aiokafka logs every reconnection attempt while a broker is down; the table says it all.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    report = asyncio.run(run_chaos(config))
    print_report(report)
    return 0 if report.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
