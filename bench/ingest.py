"""Ingest: `POST /v1/missions` against the database's own two-insert transaction rate.

    .venv/bin/python -m bench.ingest [--seconds 15] [--clients 32] [--workers 1,2] [--repeat 3]

Each repeat, on its own database (dropped afterwards), measures side by side:

* `database`  the same PostgreSQL doing what an accepted mission needs at least: one
  transaction inserting the mission row and its outbox row (asyncpg, prepared
  statements, `clients` connections at once): transactions/s.
* `api`       `driftline api --workers N` under `clients` concurrent keep-alive
  connections, each POSTing a valid mission with an Idempotency-Key: missions/s,
  p50/p99 latency, every answer's status, and afterwards every accepted mission
  looked up in the database (none may be missing).

The load generator is a minimal HTTP/1.1 client on raw asyncio streams (a request is
one `write`, a response one header read and one body read), so it takes little of the
machine's CPU from the API. `--profile DIR` runs the API under py-spy and writes a
flame graph per worker count there.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from bench.processes import Child, free_port, tree_cpu_seconds
from bench.soak.load import p99
from bench.stage_throughput import TENANT, Scratch, load_average, scratch, until
from driftline.auth import create_api_key
from driftline.contracts.missions import MissionCreate
from driftline.db.unit_of_work import Database
from driftline.db.urls import asyncpg_dsn
from driftline.infra.manager import LocalServices
from driftline.settings import PROJECT_ROOT, Settings, load_settings
from tests.helpers import mission_body
from tests.pipeline import settings_env


@dataclass
class ApiRun:
    workers: int
    seconds: float
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    accepted: list[str] = field(default_factory=list)
    missing: int = -1
    cpu_s: float = 0.0

    @property
    def per_s(self) -> float:
        return len(self.accepted) / self.seconds

    def describe(self) -> str:
        ordered = sorted(self.latencies)
        p50 = ordered[len(ordered) // 2] * 1000 if ordered else float("nan")
        worst = p99(ordered) * 1000 if ordered else float("nan")
        others = {k: v for k, v in self.statuses.items() if k != 202}
        cpu = self.cpu_s / max(len(self.accepted), 1) * 1000
        return (
            f"{self.per_s:,.0f} missions/s, p50 {p50:.0f} ms, p99 {worst:.0f} ms, "
            f"{cpu:.2f} ms API CPU/POST, non-202: {others or 'none'}, "
            f"missing in DB: {self.missing}"
        )


# -- the database's own rate ---------------------------------------------------------------

MISSION_SQL = (
    "INSERT INTO missions (id, tenant, name, external_ref, request, status, stage, progress,"
    " traceparent, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, 'accepted', 'api', 0,"
    " $6, $7, $7)"
)
OUTBOX_SQL = (
    "INSERT INTO outbox (topic, key, event_id, headers, payload) VALUES ($1, $2, $3, $4, $5)"
)


async def database_rate(settings: Settings, clients: int, seconds: float) -> float:
    """Two-insert transactions per second, `clients` at once, for `seconds`."""
    request = json.dumps(MissionCreate.model_validate(mission_body()).model_dump(mode="json"))
    headers = json.dumps({"ce_type": "driftline.mission.requested.v1", "traceparent": "x" * 55})
    pool = await asyncpg.create_pool(
        asyncpg_dsn(settings.database_url), min_size=clients, max_size=clients
    )
    done = 0

    async def loop(deadline: float) -> None:
        nonlocal done
        async with pool.acquire() as conn:
            mission, outbox = await conn.prepare(MISSION_SQL), await conn.prepare(OUTBOX_SQL)
            while time.monotonic() < deadline:
                mission_id, now = uuid.uuid4(), datetime.now(UTC)
                async with conn.transaction():
                    await mission.fetch(
                        mission_id, TENANT, "bench", "B-1", request, "00-" + "a" * 51, now
                    )
                    await outbox.fetch(
                        "bench.missions.requested", str(mission_id), uuid.uuid4(), headers, request
                    )
                done += 1

    try:
        await asyncio.gather(*(loop(time.monotonic() + 2) for _ in range(clients)))  # warm-up
        done = 0
        started = time.perf_counter()
        await asyncio.gather(*(loop(time.monotonic() + seconds) for _ in range(clients)))
        return done / (time.perf_counter() - started)
    finally:
        await pool.close()


# -- the API -------------------------------------------------------------------------------


class Connection:
    """One keep-alive HTTP/1.1 connection: the lightest client asyncio allows."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def post(self, head: bytes, body: bytes) -> tuple[int, bytes]:
        self.writer.write(head + body)
        status_line = await self.reader.readline()
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        payload = await self.reader.readexactly(length)
        return int(status_line.split()[1]), payload

    def close(self) -> None:
        self.writer.close()


def post_head(api_key: str, body: bytes) -> bytes:
    return (
        "POST /v1/missions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {api_key}\r\nIdempotency-Key: {uuid.uuid4().hex}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()


async def hammer(port: int, api_key: str, clients: int, seconds: float, run: ApiRun) -> None:
    body = json.dumps(mission_body()).encode()

    async def client(deadline: float, record: bool) -> None:
        conn = await Connection.open(port)
        try:
            while time.monotonic() < deadline:
                started = time.perf_counter()
                status, payload = await conn.post(post_head(api_key, body), body)
                if not record:
                    continue
                run.statuses[status] += 1
                if status == 202:
                    run.latencies.append(time.perf_counter() - started)
                    run.accepted.append(json.loads(payload)["id"])
        finally:
            conn.close()

    await asyncio.gather(*(client(time.monotonic() + 3, False) for _ in range(clients)))
    started = time.perf_counter()
    await asyncio.gather(*(client(time.monotonic() + seconds, True) for _ in range(clients)))
    run.seconds = time.perf_counter() - started


async def new_key(settings: Settings) -> str:
    """An API key of the bench tenant (the tenant row the database baseline needs too)."""
    database = Database(settings)
    try:
        async with database.unit_of_work() as uow:
            return await create_api_key(uow, TENANT)
    finally:
        await database.close()


async def api_rate(
    s: Scratch, api_key: str, workers: int, clients: int, seconds: float, profile: Path | None
) -> ApiRun:
    port = free_port()
    env = {**settings_env(s.settings), "PYTHONPATH": str(PROJECT_ROOT)}
    argv = [sys.executable, "-m", "driftline.cli.main", "api", "--port", str(port)]
    argv += ["--workers", str(workers)]
    api = Child("api", argv, env, s.settings.work_dir / "logs" / f"api-{workers}.log")
    api.start()
    run = ApiRun(workers, seconds)
    try:
        await until(lambda: _answers(port), 120, 0.3)
        cpu = tree_cpu_seconds(api.pid)
        spy = None
        if profile is not None:  # attached for the measured part (after the warm-up)
            out = profile / f"api-{workers}-workers.txt"
            spy = await asyncio.create_subprocess_exec(
                str(Path(sys.executable).parent / "py-spy"),
                *("record", "-r", "100", "-s", "-d", str(int(seconds) + 3), "-f", "raw"),
                *("-o", str(out), "--pid", str(api.pid)),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        await hammer(port, api_key, clients, seconds, run)
        run.cpu_s = tree_cpu_seconds(api.pid) - cpu
        if spy is not None:
            await spy.wait()
    finally:
        await api.stop()
    run.missing = await _missing(s.settings, run.accepted)
    return run


async def _answers(port: int) -> bool:
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return False
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    line = await reader.readline()
    writer.close()
    return b" 200 " in line


async def _missing(settings: Settings, accepted: Sequence[str]) -> int:
    conn = await asyncpg.connect(asyncpg_dsn(settings.database_url))
    try:
        found = await conn.fetchval(
            "SELECT count(*) FROM missions WHERE id = ANY($1::uuid[])", list(accepted)
        )
    finally:
        await conn.close()
    return len(accepted) - int(found)


# -- main ----------------------------------------------------------------------------------


async def main(args: argparse.Namespace) -> None:
    base = load_settings()
    local = LocalServices(base)
    local.up()
    worker_counts = [int(w) for w in args.workers.split(",")]
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    results: dict[int, list[tuple[float, ApiRun]]] = {w: [] for w in worker_counts}
    print(f"# ingest, {args.clients} clients, {args.seconds:.0f} s per measure\n")
    print(f"{load_average()}; {os.cpu_count()} cores\n")
    print("| repeat | API workers | database two-insert tx/s | API | ratio |")
    print("|---|---|---|---|---|")
    for repeat in range(args.repeat):
        for workers in worker_counts:
            async with scratch(base, local) as s:
                api_key = await new_key(s.settings)
                db_rate = await database_rate(s.settings, args.clients, args.seconds)
                profile = args.profile if repeat == 0 and args.profile else None
                run = await api_rate(s, api_key, workers, args.clients, args.seconds, profile)
            results[workers].append((db_rate, run))
            print(
                f"| {repeat + 1} | {workers} | {db_rate:,.0f} | {run.describe()} | "
                f"{run.per_s / db_rate:.3f} |"
            )
            sys.stdout.flush()
    print(f"\nmedians ({load_average()}):\n")
    print(
        "| API workers | database tx/s | API missions/s | p99 ms | ratio |\n|---|---|---|---|---|"
    )
    for workers, rows in results.items():
        db = statistics.median(r[0] for r in rows)
        api = statistics.median(r[1].per_s for r in rows)
        worst = statistics.median(p99(sorted(r[1].latencies)) * 1000 for r in rows)
        ratio = statistics.median(r[1].per_s / r[0] for r in rows)
        print(f"| {workers} | {db:,.0f} | {api:,.0f} | {worst:.0f} | {ratio:.3f} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--workers", default="1,2", help="API process counts, comma-separated")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", type=Path, help="py-spy flame graphs into this folder")
    asyncio.run(main(parser.parse_args()))
