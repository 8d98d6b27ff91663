"""Benchmark: the pipeline's end-to-end latency against a direct OpenDrift run, same run.

    .venv/bin/python -m bench.run [--particles 2000] [--hours 24] [--repeat 3]

Baseline: the same mission simulated directly (`run_leeway`) in the same warm process
pool the pipeline uses. Measured: POST → `completed` through API, outbox relay, Kafka,
the five stages, PostgreSQL and MinIO, with per-stage times from the status history.
Prints a markdown table of medians and ratios (pipeline / direct); the figures go into
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from driftline.forcing.sample import SampleForcing, write_sample_forcing
from driftline.infra.manager import LocalServices, ensure_bucket
from driftline.settings import load_settings
from driftline.simulation.leeway import SimulationRequest, seed_from_mission_id
from driftline.simulation.pool import SimulationPool
from driftline.telemetry import configure_tracing
from tests.e2e.conftest import write_catalog
from tests.helpers import create_database, mission_body
from tests.pipeline import running_pipeline

STAGES = ["validated", "forcing_ready", "simulated", "results_ready", "completed"]


def direct_request(
    mission_id: str, sample: SampleForcing, particles: int, hours: int
) -> SimulationRequest:
    """The benchmarks' OpenDrift run without the pipeline: the demo's mission on the
    sample forcing, seeded from its id like a mission's."""
    return SimulationRequest(
        mission_id=mission_id,
        object_type=7,
        lat=60.0,
        lon=4.0,
        start=datetime(2024, 1, 1, 6),
        duration_hours=hours,
        particles=particles,
        seed=seed_from_mission_id(mission_id),
        radius_m=1000,
        forcing_paths=[sample.current_path, sample.wind_path],
    )


async def _database(admin_url: str) -> str:
    return await create_database(admin_url, f"bench_{uuid.uuid4().hex[:8]}")


def span_tree(spans: list[Any], trace_id: int) -> list[str]:
    """One trace as an indented tree: name, duration, offset from the trace's start."""
    mine = sorted((s for s in spans if s.context.trace_id == trace_id), key=lambda s: s.start_time)
    if not mine:
        return []
    start = mine[0].start_time
    children: dict[int | None, list[Any]] = {}
    ids = {s.context.span_id for s in mine}
    for span in mine:
        parent = span.parent.span_id if span.parent and span.parent.span_id in ids else None
        children.setdefault(parent, []).append(span)
    lines: list[str] = []

    def walk(parent: int | None, depth: int) -> None:
        for span in children.get(parent, []):
            at, took = (span.start_time - start) / 1e6, (span.end_time - span.start_time) / 1e6
            lines.append(f"{'  ' * depth}{span.name}  +{at:.0f} ms, {took:.0f} ms")
            walk(span.context.span_id, depth + 1)

    walk(None, 0)
    return lines


async def main(particles: int, hours: int, repeat: int, trace: bool = False) -> None:
    base = load_settings()
    local = LocalServices(base)
    local.up()
    work = Path(tempfile.mkdtemp(prefix="driftline-bench-"))
    catalog = write_catalog(work)
    prefix = f"bench{uuid.uuid4().hex[:6]}."
    settings = base.model_copy(
        update={
            "kafka_bootstrap_servers": local.kafka_bootstrap_servers,
            "database_url": await _database(local.postgres.database_url),
            "s3_endpoint_url": local.minio.endpoint,
            "s3_bucket": f"{prefix[:-1]}",
            "topic_prefix": prefix,
            "forcing_catalog": catalog,
            "work_dir": work / "work",
            "max_particles": max(particles, base.max_particles),
        }
    )
    ensure_bucket(local.minio.endpoint, settings, settings.s3_bucket)
    pool = SimulationPool(1)
    started = time.perf_counter()
    await pool.start()
    warm_s = time.perf_counter() - started
    body = mission_body(particles=particles, duration_hours=hours)
    direct: list[float] = []
    sample = write_sample_forcing(
        work / "direct", lat=60.0, lon=4.0, start=datetime(2024, 1, 1), hours=48
    )

    exporter = InMemorySpanExporter()
    if trace:
        configure_tracing(settings, "bench", SimpleSpanProcessor(exporter))
    totals: list[float] = []
    per_stage: dict[str, list[float]] = {s: [] for s in STAGES}
    traceparent: str | None = None
    async with running_pipeline(settings, simulation_pool=pool) as p:
        await p.wait_final(await p.submit(body), timeout_s=600)  # first: topics, groups, caches
        for i in range(repeat):  # interleaved, so both sides see the same machine load
            t0 = time.perf_counter()
            await pool.run(
                direct_request(f"bench-{i}", sample, particles, hours), work / f"direct-{i}.nc"
            )
            direct.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            mission_id = await p.submit(body)
            final = await p.wait_final(mission_id, timeout_s=600)
            totals.append(time.perf_counter() - t0)
            assert final["status"] == "completed", final
            async with p.database.unit_of_work() as uow:
                changes = await uow.missions.changes_after(uuid.UUID(mission_id), 0)
                mission = await uow.missions.get(uuid.UUID(mission_id))
            traceparent = mission.traceparent if mission else None
            at = {c.status: c.at for c in changes}
            previous = at["accepted"]
            for stage in STAGES:
                per_stage[stage].append((at[stage] - previous).total_seconds())
                previous = at[stage]
            print(
                f"repeat {i + 1}: direct {direct[-1]:.2f} s, pipeline {totals[-1]:.2f} s",
                flush=True,
            )
    await pool.close()

    d, t = statistics.median(direct), statistics.median(totals)
    rows: list[tuple[str, Any, str]] = [
        ("simulation pool warm-up (once per worker)", f"{warm_s:.1f} s", ""),
        (
            f"direct OpenDrift run, {particles} particles x {hours} h (baseline)",
            f"{d:.2f} s",
            "1.00",
        ),
        ("pipeline POST → completed", f"{t:.2f} s", f"{t / d:.2f}"),
        (
            "median of the per-repeat ratios",
            "",
            f"{statistics.median(x / y for x, y in zip(totals, direct, strict=True)):.2f}",
        ),
        ("pipeline overhead (total - direct)", f"{t - d:.2f} s", ""),
    ]
    for stage in STAGES:
        m = statistics.median(per_stage[stage])
        rows.append((f"  … until {stage}", f"{m:.2f} s", f"{m / d:.2f}"))
    print(f"\nmedian of {repeat} runs, {particles} particles x {hours} h\n")
    print("| measure | time | ratio to direct |\n|---|---|---|")
    for name, value, ratio in rows:
        print(f"| {name} | {value} | {ratio} |")
    if trace and traceparent:
        print(f"\ntrace {traceparent.split('-')[1]} of the last mission:\n")
        print(
            "\n".join(
                span_tree(list(exporter.get_finished_spans()), int(traceparent.split("-")[1], 16))
            )
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--particles", type=int, default=2000)
    parser.add_argument("--hours", type=int, default=24)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--trace", action="store_true", help="print the last mission's trace")
    args = parser.parse_args()
    asyncio.run(main(args.particles, args.hours, args.repeat, args.trace))
