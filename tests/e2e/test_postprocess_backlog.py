"""A backlog reaching post-processing at once: ten missions' products are built
concurrently (threads reading and writing NetCDF), which crashed the process (SIGSEGV in
netCDF4/HDF5) before every NetCDF access held `NETCDF_LOCK`."""

from __future__ import annotations

import asyncio
from typing import Any

from driftline.settings import Settings
from tests.pipeline import eventually, mission_body, running_pipeline
from workers import STAGE_REGISTRY

BACKLOG = 10


async def test_backlog_of_simulated_missions_all_complete(
    pipeline_settings: Settings, simulation_pool: Any
) -> None:
    without_postprocess = tuple(s for s in STAGE_REGISTRY if s != "postprocess")
    async with running_pipeline(
        pipeline_settings, simulation_pool=simulation_pool, run_stages=without_postprocess
    ) as p:
        bodies = [
            mission_body(name=f"backlog {i}", particles=200, duration_hours=6)
            for i in range(BACKLOG)
        ]
        missions = [await p.submit(body) for body in bodies]

        async def all_simulated() -> bool:
            statuses = [(await p.mission(m))["status"] for m in missions]
            return statuses == ["simulated"] * BACKLOG

        await eventually(all_simulated, timeout_s=300)
        p.start_runner(STAGE_REGISTRY["postprocess"])
        finals = await asyncio.gather(*(p.wait_final(m, timeout_s=300) for m in missions))
    assert [f["status"] for f in finals] == ["completed"] * BACKLOG, finals
