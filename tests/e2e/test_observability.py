"""Operators can see everything: one trace per mission, every process's /metrics and
/readyz, consumer lag while a stage is stopped and after it catches up."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from driftline.settings import Settings
from driftline.telemetry import configure_tracing
from tests.pipeline import (
    eventually,
    free_port,
    mission_body,
    run_cli,
    running_pipeline,
    settings_env,
)
from tests.tcp_proxy import TcpProxy
from workers import STAGE_REGISTRY

STAGES = tuple(s for s in STAGE_REGISTRY if s != "plan")  # a mission's chain; plans on request


async def test_a_mission_is_one_trace_through_relay_and_every_stage(
    pipeline_settings: Settings, simulation_pool: Any
) -> None:
    exporter = InMemorySpanExporter()
    configure_tracing(pipeline_settings, "tests", SimpleSpanProcessor(exporter))
    async with running_pipeline(pipeline_settings, simulation_pool=simulation_pool) as p:
        mission_id = await p.submit(mission_body())
        assert (await p.wait_final(mission_id))["status"] == "completed"
        async with p.database.unit_of_work() as uow:
            mission = await uow.missions.get(uuid.UUID(mission_id))
        assert mission is not None and mission.traceparent
        trace_id = int(mission.traceparent.split("-")[1], 16)
    names = {s.name for s in exporter.get_finished_spans() if s.context.trace_id == trace_id}
    for stage in STAGES:
        assert f"{stage} process" in names, (stage, sorted(names))
        assert f"{stage} run" in names and f"{stage} commit" in names
    requested = p.topic("missions.requested")
    assert f"publish {requested}" in names, "the relay's publish joins the mission's trace"
    assert any(n.startswith("POST /v1/missions") for n in names), "the request roots it"
    assert {"opendrift leeway", "storage put"} <= names


@asynccontextmanager
async def driftline_process(settings: Settings, log: Path, *args: str) -> AsyncIterator[None]:
    """`driftline ARGS` as its own process (output to `log`), SIGTERM afterwards."""
    with log.open("ab") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "driftline.cli.main",
            *args,
            env=settings_env(settings),
            stdout=out,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield
    except AssertionError as exc:
        tail = (await asyncio.to_thread(log.read_text))[-3000:]
        raise AssertionError(f"{exc}\n--- {log.name} ---\n{tail}") from exc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), 60)
        except TimeoutError:
            os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()


async def _scrape(port: int, path: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        return await client.get(path)


def _sample(text: str, name: str, **labels: str) -> float:
    """The value of one Prometheus sample (0 when absent)."""
    for line in text.splitlines():
        if line.startswith(f"{name}{{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
        if not labels and line.startswith(f"{name} "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def _ready(port: int) -> bool:
    try:
        return (await _scrape(port, "/readyz")).status_code == 200
    except httpx.HTTPError:
        return False


async def test_worker_and_relay_processes_serve_moving_metrics(
    pipeline_settings: Settings, simulation_pool: Any, tmp_path: Path
) -> None:
    worker_port, relay_port = free_port(), free_port()
    in_process = tuple(s for s in STAGES if s != "validate")
    async with running_pipeline(
        pipeline_settings, simulation_pool=simulation_pool, run_stages=in_process, relay=False
    ) as p:
        worker = p.settings.model_copy(update={"metrics_port": worker_port})
        relay = p.settings.model_copy(update={"metrics_port": relay_port})
        async with (
            driftline_process(worker, tmp_path / "validate.log", "worker", "validate"),
            driftline_process(relay, tmp_path / "relay.log", "relay"),
        ):
            await eventually(lambda: _ready(worker_port), 120)
            await eventually(lambda: _ready(relay_port), 120)
            mission_id = await p.submit(mission_body())
            assert (await p.wait_final(mission_id))["status"] == "completed"
            worker_metrics = (await _scrape(worker_port, "/metrics")).text
            relay_metrics = (await _scrape(relay_port, "/metrics")).text
            assert (await _scrape(worker_port, "/healthz")).json() == {"status": "ok"}
    ok = {"stage": "validate", "outcome": "ok"}
    assert _sample(worker_metrics, "driftline_stage_seconds_count", **ok) >= 1
    assert "driftline_consumer_lag_records" in worker_metrics
    assert _sample(relay_metrics, "driftline_outbox_published_total") >= 6


async def test_worker_readiness_follows_the_database(
    pipeline_settings: Settings, tmp_path: Path
) -> None:
    db_host, db_port = (
        "127.0.0.1",
        int(pipeline_settings.database_url.rsplit(":", 1)[1].split("/")[0]),
    )
    proxy = TcpProxy(db_host, db_port)
    await proxy.start()
    url = pipeline_settings.database_url.replace(f":{db_port}/", f":{proxy.port}/")
    port = free_port()
    settings = pipeline_settings.model_copy(update={"database_url": url, "metrics_port": port})
    try:
        async with driftline_process(settings, tmp_path / "notify.log", "worker", "notify"):
            await eventually(lambda: _ready(port), 120)
            await proxy.cut()
            down = await _scrape(port, "/readyz")
            assert down.status_code == 503
            assert down.json()["checks"] == {"database": False, "kafka": True}
            await proxy.restore()
            await eventually(lambda: _ready(port), 30)
    finally:
        await proxy.cut()


async def _lag(settings: Settings) -> dict[str, int]:
    out = await run_cli(settings, "lag", "--json", "--interval", "0")
    return {row["stage"]: row["lag"] for row in json.loads(out.strip().splitlines()[-1])}


async def test_lag_shows_the_backlog_of_a_stopped_stage_until_it_catches_up(
    pipeline_settings: Settings, simulation_pool: Any
) -> None:
    without_notify = tuple(s for s in STAGES if s != "notify")
    async with running_pipeline(
        pipeline_settings, simulation_pool=simulation_pool, run_stages=without_notify
    ) as p:
        missions = [await p.submit(mission_body(name=f"lag {i}")) for i in range(2)]

        async def both_ready() -> bool:
            statuses = [(await p.mission(m))["status"] for m in missions]
            return statuses == ["results_ready"] * len(missions)

        await eventually(both_ready, 180)
        lag = await _lag(p.settings)
        assert lag["notify"] == 2 and lag["validate"] == 0, lag
        p.start_runner(STAGE_REGISTRY["notify"])
        for mission_id in missions:
            assert (await p.wait_final(mission_id))["status"] == "completed"

        async def caught_up() -> bool:
            return (await _lag(p.settings))["notify"] == 0

        await eventually(caught_up, 60)
