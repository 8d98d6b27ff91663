"""A huge mission over the worker group, on the real services: its shards spread over two
simulate worker processes, one of them is SIGKILLed in the middle of its shard, and the
merged result is still exactly what one process gives running the same shards.

"Exactly" is checked array by array against the shards run here, one after another, in
the test's own warm pool, from the very `forcing.ready` records the workers consumed:
no particle lost, none twice, none different.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import netCDF4
import numpy as np

from bench.processes import MARKER, DriftlineProcess, marked
from driftline.contracts.envelope import parse_record
from driftline.contracts.events import ForcingReadyV1
from driftline.settings import Settings
from driftline.simulation.pool import SimulationPool
from driftline.simulation.request import simulation_request
from driftline.simulation.shards import merge_particle_files, shard_request
from driftline.storage.factory import open_artifact_store
from tests.helpers import unique_id
from tests.pipeline import (
    eventually,
    mission_body,
    published_statuses,
    read_topic,
    records_for,
    running_pipeline,
    settings_env,
)
from workers import STAGE_REGISTRY

SHARD = 4_000
SHARDS = 3
COMPARED = ("lon", "lat", "status", "origin_marker")


def _simulate_worker(settings: Settings, name: str, log: Path, run_id: str) -> DriftlineProcess:
    return DriftlineProcess(
        name, ["worker", "simulate"], {**settings_env(settings), MARKER: run_id}, log
    )


async def _started(worker: DriftlineProcess) -> None:
    worker.start()
    if not await worker.wait_for_line("runner.started", 240):
        raise AssertionError(f"{worker.name} did not start:\n{worker.log_text()[-3000:]}")


def _two_partitions_each(workers: list[DriftlineProcess]) -> Callable[[], Awaitable[bool]]:
    """Both workers in the group with their share of the 4 partitions (the last
    assignment each logged), so the mission's shards meet both."""

    async def check() -> bool:
        for worker in workers:
            assigned = [
                line for line in worker.log_text().splitlines() if "runner.assigned" in line
            ]
            found = re.search(r"partitions\W+(\d+)", assigned[-1]) if assigned else None
            if found is None or int(found.group(1)) != 2:
                return False
        return True

    return check


async def _first_to_start_a_shard(workers: list[DriftlineProcess]) -> DriftlineProcess:
    for _ in range(6000):
        for worker in workers:
            if "simulate.start" in worker.log_text():
                return worker
        await asyncio.sleep(0.02)
    raise AssertionError("no simulate worker started a shard")


async def _expected(
    settings: Settings, records: list[Any], pool: SimulationPool, workdir: Path
) -> Path:
    """The shards of `records`, run one after another here, merged."""
    shards = [parse_record(r.headers, r.value).data for r in records]
    assert all(isinstance(d, ForcingReadyV1) and d.shard for d in shards)
    shards.sort(key=lambda d: d.shard.index if isinstance(d, ForcingReadyV1) and d.shard else -1)
    outputs = []
    async with open_artifact_store(settings) as storage:
        for data in shards:
            assert isinstance(data, ForcingReadyV1) and data.shard is not None
            paths = []
            for i, forcing in enumerate(data.forcing):
                path = workdir / f"{data.shard.index}-{i}-{forcing.variable}.nc"
                await storage.download(forcing.key, path)
                paths.append(path)
            request = shard_request(simulation_request(data, paths), data.shard)
            output = workdir / f"shard-{data.shard.index}.nc"
            await pool.run(request, output)
            outputs.append(output)
    merged = workdir / "expected.nc"
    merge_particle_files(outputs, merged)
    return merged


def _arrays(path: Path) -> dict[str, np.ndarray]:
    with netCDF4.Dataset(path) as ds:
        return {name: ds.variables[name][:].filled(np.nan).astype("float64") for name in COMPARED}


async def test_a_huge_mission_survives_a_worker_killed_mid_shard(
    pipeline_settings: Settings, simulation_pool: SimulationPool, tmp_path: Path
) -> None:
    settings = pipeline_settings.model_copy(
        update={
            "shard_particles": SHARD,
            "shard_topic_partitions": 4,
            "kafka_session_timeout_s": 6.0,
            "max_particles": SHARD * SHARDS,
        }
    )
    run_id = unique_id()
    workers = [
        _simulate_worker(settings, f"simulate-{i}", tmp_path / f"simulate-{i}.log", run_id)
        for i in range(2)
    ]
    others = tuple(s for s in STAGE_REGISTRY if s != "simulate")
    try:
        async with running_pipeline(
            settings, simulation_pool=simulation_pool, run_stages=others
        ) as p:
            for worker in workers:
                await _started(worker)
            await eventually(_two_partitions_each(workers), timeout_s=120)
            body = mission_body(name="huge", particles=SHARD * SHARDS, duration_hours=24)
            mission_id = await p.submit(body)

            victim = await _first_to_start_a_shard(workers)
            victim.kill()  # mid-shard: its record was never committed
            final = await p.wait_final(mission_id, timeout_s=600)
            assert final["status"] == "completed", final

            survivor = next(w for w in workers if w is not victim)
            assert "simulate.done" in survivor.log_text()
            assert "simulate.done" not in victim.log_text()

            async with p.client() as client:
                results = (await client.get(f"/v1/missions/{mission_id}/results")).json()
                raw = await client.get(
                    f"/v1/missions/{mission_id}/artifacts/raw/particles.nc", follow_redirects=True
                )
                raw.raise_for_status()
            assert results["summary"]["particles_total"] == SHARD * SHARDS
            produced = tmp_path / "pipeline.nc"
            produced.write_bytes(raw.content)

            statuses = await published_statuses(p, mission_id)
            assert "results_ready" in statuses and "simulated" not in statuses
            async with p.database.unit_of_work() as uow:
                assert await uow.shards.for_mission(uuid.UUID(mission_id)) == []

            shard_records = records_for(
                await read_topic(
                    settings, p.topic("forcing.ready"), until=lambda r: len(r) >= SHARDS
                ),
                mission_id,
            )
            assert len(shard_records) == SHARDS
            assert len({r.partition for r in shard_records}) == SHARDS, "one partition each"
            expected = await _expected(settings, shard_records, simulation_pool, tmp_path)
    finally:
        for worker in workers:
            worker.kill()
        for leftover in marked(run_id):
            with contextlib.suppress(ProcessLookupError):
                os.kill(leftover.pid, signal.SIGKILL)

    got, want = _arrays(produced), _arrays(expected)
    assert got["lon"].shape == (SHARD * SHARDS, want["lon"].shape[1])
    for name in COMPARED:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)
