"""Benchmark: a huge mission simulated by one simulate worker, then by two, same run.

    .venv/bin/python -m bench.shards [--particles 200000] [--hours 24] [--repeat 2]

API, relay, validate, fetch_forcing, postprocess and notify run in this process; the
simulate workers are real `driftline worker simulate` processes (each with its warm
OpenDrift pool) in one consumer group. The mission is split into shards of
`--shard-particles` (default the setting, 50,000). Phase one runs the mission with one
worker; a second worker then joins, the group rebalances, and phase two runs it again.
Phases alternate `--repeat` times, so both see the same machine.

Prints per phase: POST → completed, and the simulation span (the mission reaching
`forcing_ready` until its last shard is recorded), with the ratios one worker / two.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench.processes import MARKER, DriftlineProcess, marked
from bench.run import _database
from driftline.infra.manager import LocalServices, ensure_bucket
from driftline.settings import load_settings
from tests.e2e.conftest import write_catalog
from tests.helpers import mission_body
from tests.pipeline import Pipeline, running_pipeline, settings_env
from workers import STAGE_REGISTRY

TENANT = "bench-huge"


def _assigned(worker: DriftlineProcess) -> int | None:
    """Partitions in the worker's last logged assignment."""
    lines = [x for x in worker.log_text().splitlines() if "runner.assigned" in x]
    found = re.search(r"partitions\W+(\d+)", lines[-1]) if lines else None
    return int(found.group(1)) if found else None


async def _balanced(workers: list[DriftlineProcess], partitions: int) -> None:
    """Until every worker holds its even share of the simulate topic's partitions."""
    share = partitions // len(workers)
    deadline = time.monotonic() + 180
    while any(_assigned(w) != share for w in workers):
        if time.monotonic() > deadline:
            raise RuntimeError(f"group did not settle: {[_assigned(w) for w in workers]}")
        await asyncio.sleep(0.5)
    await asyncio.sleep(2)  # the last member's fetch starts


async def _run_once(p: Pipeline, body: dict[str, Any]) -> tuple[float, float]:
    """(POST → completed, simulation span) of one mission, in seconds."""
    started = time.perf_counter()
    mission_id = await p.submit(body)
    final = await p.wait_final(mission_id, timeout_s=1800)
    total = time.perf_counter() - started
    if final["status"] != "completed":
        raise RuntimeError(f"mission ended {final['status']}: {final}")
    async with p.database.unit_of_work() as uow:
        changes = await uow.missions.changes_after(uuid.UUID(mission_id), 0)
    ready = [c.at for c in changes if c.status == "forcing_ready"]
    shards = [c.at for c in changes if (c.detail or "").startswith("shard ")]
    return total, (max(shards) - min(ready)).total_seconds()


async def main(
    particles: int, hours: int, repeat: int, shard_particles: int | None, keep_logs: bool
) -> None:
    base = load_settings()
    local = LocalServices(base)
    local.up()
    work = Path(tempfile.mkdtemp(prefix="driftline-bench-shards-"))
    prefix = f"benchshard{uuid.uuid4().hex[:6]}."
    settings = base.model_copy(
        update={
            "kafka_bootstrap_servers": local.kafka_bootstrap_servers,
            "database_url": await _database(local.postgres.database_url),
            "s3_endpoint_url": local.minio.endpoint,
            "s3_bucket": prefix[:-1],
            "topic_prefix": prefix,
            "forcing_catalog": write_catalog(work),
            "work_dir": work / "work",
            "tenant_max_particles": {TENANT: particles},
            "shard_particles": shard_particles or base.shard_particles,
        }
    )
    ensure_bucket(local.minio.endpoint, settings, settings.s3_bucket)
    run_id = uuid.uuid4().hex[:8]
    env = {**settings_env(settings), MARKER: run_id}
    workers = [
        DriftlineProcess(f"simulate-{i}", ["worker", "simulate"], env, work / f"simulate-{i}.log")
        for i in range(2)
    ]
    body = mission_body(name="huge", particles=particles, duration_hours=hours)
    times: dict[int, list[tuple[float, float]]] = {1: [], 2: []}
    others = tuple(s for s in STAGE_REGISTRY if s != "simulate")
    partitions = settings.shard_topic_partitions
    try:
        async with running_pipeline(
            settings, simulation_pool=None, run_stages=others, tenant=TENANT
        ) as p:
            for round_ in range(repeat):
                for count in (1, 2):
                    for worker in workers[:count]:
                        if not worker.alive():
                            worker.start()
                    for worker in workers[count:]:
                        await worker.stop()
                    await _balanced(workers[:count], partitions)
                    if round_ == 0 and count == 1:
                        await _run_once(p, body)  # first: topics, caches, the group
                    times[count].append(await _run_once(p, body))
                    total, simulating = times[count][-1]
                    print(
                        f"round {round_ + 1}, {count} worker(s): POST → completed {total:.1f} s, "
                        f"simulating {simulating:.1f} s",
                        flush=True,
                    )
    finally:
        for worker in workers:
            await worker.stop()
        leftovers = marked(run_id)
        if leftovers:
            print(f"left running: {leftovers}")
    _report(times, particles, hours, settings.shard_particles, partitions)
    if keep_logs:
        print(f"logs: {work}")


def _report(
    times: dict[int, list[tuple[float, float]]],
    particles: int,
    hours: int,
    shard_particles: int,
    partitions: int,
) -> None:
    one = [statistics.median(x[i] for x in times[1]) for i in (0, 1)]
    two = [statistics.median(x[i] for x in times[2]) for i in (0, 1)]
    shards = -(-particles // shard_particles)
    print(
        f"\n{particles:,} particles x {hours} h in {shards} shards of {shard_particles:,}, "
        f"simulate topic of {partitions} partitions; median of {len(times[1])} runs\n"
    )
    print("| measure | 1 worker | 2 workers | speed-up (1 / 2) |\n|---|---|---|---|")
    for name, a, b in (
        ("POST → completed", one[0], two[0]),
        ("simulation (forcing ready → last shard)", one[1], two[1]),
    ):
        print(f"| {name} | {a:.1f} s | {b:.1f} s | {a / b:.2f}x |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--particles", type=int, default=200_000)
    parser.add_argument("--hours", type=int, default=24)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--shard-particles", type=int, default=None)
    parser.add_argument("--keep-logs", action="store_true", help="print the workers' log folder")
    args = parser.parse_args()
    asyncio.run(main(args.particles, args.hours, args.repeat, args.shard_particles, args.keep_logs))
