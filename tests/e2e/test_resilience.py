"""Crashes and outages lose nothing: Kafka down while accepting, a worker SIGKILLed mid-run."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

from driftline.settings import Settings
from tests.conftest import ServiceControl
from tests.pipeline import (
    mission_body,
    outbox_count,
    read_topic,
    records_for,
    running_pipeline,
    settings_env,
)


async def test_kafka_down_api_still_accepts_and_all_complete_after(
    pipeline_settings: Settings, simulation_pool: Any, service_control: ServiceControl
) -> None:
    async with running_pipeline(pipeline_settings, simulation_pool=simulation_pool) as p:
        first = await p.submit(mission_body(name="before the outage"))
        assert (await p.wait_final(first))["status"] == "completed"
        await asyncio.to_thread(service_control.stop, "kafka")
        try:
            during = []
            for i in range(3):
                response = await p.post_mission(mission_body(name=f"during outage {i}"))
                assert response.status_code == 202, response.text
                during.append(response.json()["id"])
            await asyncio.sleep(3)
            async with p.database.unit_of_work() as uow:
                backlog = await uow.outbox.backlog()
            assert backlog >= 3, "accepted missions wait in the outbox"
        finally:
            await asyncio.to_thread(service_control.start, "kafka")
        for mission_id in during:
            assert (await p.wait_final(mission_id, timeout_s=240))["status"] == "completed"


async def _read_until(stream: asyncio.StreamReader, marker: str, timeout_s: float) -> list[str]:
    lines: list[str] = []

    async def scan() -> None:
        while True:
            raw = await stream.readline()
            if not raw:
                raise AssertionError(f"worker exited before {marker!r}: {lines[-20:]}")
            lines.append(raw.decode(errors="replace"))
            if marker in lines[-1]:
                return

    try:
        await asyncio.wait_for(scan(), timeout_s)
    except TimeoutError as exc:
        raise AssertionError(f"no {marker!r} within {timeout_s} s: {''.join(lines[-30:])}") from exc
    return lines


async def _start_simulate_worker(
    settings: Settings, log: Path | None = None
) -> asyncio.subprocess.Process:
    """`driftline worker simulate` as its own process; output piped (to watch) or to `log`."""
    out = log.open("wb") if log is not None else asyncio.subprocess.PIPE
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "driftline.cli.main",
        "worker",
        "simulate",
        env=settings_env(settings),
        stdout=out,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
    )


async def test_worker_killed_during_simulation_mission_completes_once(
    pipeline_settings: Settings, simulation_pool: Any, tmp_path: Path
) -> None:
    run_stages = ("validate", "fetch_forcing", "postprocess", "notify")
    async with running_pipeline(
        pipeline_settings, simulation_pool=simulation_pool, run_stages=run_stages
    ) as p:
        victim = await _start_simulate_worker(p.settings)
        replacement = None
        try:
            assert victim.stdout is not None
            await _read_until(victim.stdout, "runner.started", 120)
            mission_id = await p.submit(mission_body(particles=20000, duration_hours=24))
            await _read_until(victim.stdout, "simulate.start", 120)
            os.killpg(victim.pid, signal.SIGKILL)  # the worker and its OpenDrift pool
            await victim.wait()

            log = tmp_path / "replacement.log"
            replacement = await _start_simulate_worker(p.settings, log)
            try:
                final = await p.wait_final(mission_id, timeout_s=240)
            except AssertionError as exc:
                raise AssertionError(f"{exc}\n{log.read_text()[-3000:]}") from exc
            assert final["status"] == "completed", final
        finally:
            for proc in (victim, replacement):
                if proc is not None and proc.returncode is None:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGTERM)
                    await proc.wait()
        simulated = await outbox_count(p, mission_id, "simulations.completed")
        assert simulated == 1, "one result, however often the simulation started"
        completed = await read_topic(
            p.settings,
            p.topic("missions.completed"),
            until=lambda recs: bool(records_for(recs, mission_id)),
        )
        mine = records_for(completed, mission_id)
        assert len({dict(r.headers)["ce_id"] for r in mine}) == 1
        assert json.loads(mine[0].value)["summary"]["particles_total"] == 20000


async def test_sigterm_drains_the_simulation_in_flight(
    pipeline_settings: Settings, simulation_pool: Any
) -> None:
    run_stages = ("validate", "fetch_forcing", "postprocess", "notify")
    async with running_pipeline(
        pipeline_settings, simulation_pool=simulation_pool, run_stages=run_stages
    ) as p:
        worker = await _start_simulate_worker(p.settings)
        assert worker.stdout is not None
        try:
            await _read_until(worker.stdout, "runner.started", 120)
            mission_id = await p.submit(mission_body(particles=20000, duration_hours=24))
            await _read_until(worker.stdout, "simulate.start", 120)
            os.killpg(worker.pid, signal.SIGTERM)  # as Ctrl-C or a service manager would
            tail = await _read_until(worker.stdout, "runner.stopped", 90)
            stopped = json.loads(tail[-1])  # logs are JSON lines when not on a terminal
            assert stopped["processed"] == 1, tail[-5:]
            assert await asyncio.wait_for(worker.wait(), 60) == 0
        finally:
            if worker.returncode is None:
                os.killpg(worker.pid, signal.SIGKILL)
                await worker.wait()
        # No simulate worker runs any more: the drained one finished and committed.
        assert (await p.wait_final(mission_id, timeout_s=60))["status"] == "completed"
        assert await outbox_count(p, mission_id, "simulations.completed") == 1


async def test_postgresql_restart_is_survived(
    pipeline_settings: Settings, simulation_pool: Any, service_control: ServiceControl
) -> None:
    async with running_pipeline(pipeline_settings, simulation_pool=simulation_pool) as p:
        first = await p.submit(mission_body(name="before the restart"))
        assert (await p.wait_final(first))["status"] == "completed"
        await asyncio.to_thread(service_control.stop, "postgres")
        try:
            async with p.client() as client:
                down = await client.post("/v1/missions", json=mission_body())
            assert down.status_code == 503, "no 202 without a durable write"
            assert down.headers["Retry-After"] == "5"
        finally:
            await asyncio.to_thread(service_control.start, "postgres")
        second = await p.submit(mission_body(name="after the restart"))
        assert (await p.wait_final(second, timeout_s=180))["status"] == "completed"
