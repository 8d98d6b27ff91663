"""Wiring: builds the real adapters once per process and runs the relay and stage runners.

The only module that knows which concrete storage, database, pool and catalog a process
uses; stages and the runner receive them as parameters.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import httpx
import structlog

from driftline.db.unit_of_work import Database
from driftline.forcing.catalog import Catalog
from driftline.landmask import landmask
from driftline.runtime.lifecycle import stop_on_signals
from driftline.runtime.relay import OutboxRelay
from driftline.runtime.runner import StageRunner
from driftline.runtime.stage import StageContext
from driftline.settings import Settings
from driftline.simulation.pool import SimulationPool
from driftline.storage.factory import open_artifact_store
from workers import STAGE_REGISTRY

log = structlog.get_logger("driftline.bootstrap")


@asynccontextmanager
async def stage_context(
    settings: Settings,
    database: Database,
    stages: Sequence[str],
    *,
    simulation_pool: SimulationPool | None = None,
) -> AsyncIterator[StageContext]:
    """Open what the given stages need; the simulation pool is warmed before consuming.

    A caller may pass an already warm `simulation_pool` (tests share one); it then
    stays open.
    """
    storage = open_artifact_store(settings)
    async with storage, httpx.AsyncClient(timeout=10.0) as http:
        services: dict[str, object] = {"database": database}
        if {"validate", "fetch_forcing"} & set(stages):
            services["forcing_catalog"] = Catalog.from_settings(settings)
        if {"validate", "postprocess"} & set(stages):
            await asyncio.to_thread(landmask)  # ~3 s once, not on the first mission
        pool = None
        if "simulate" in stages:
            if simulation_pool is None:
                pool = SimulationPool(settings.simulation_workers)
                log.info("simulation_pool.warming", workers=settings.simulation_workers)
                await pool.start()
            services["simulation_pool"] = simulation_pool or pool
        try:
            yield StageContext(settings=settings, storage=storage, http=http, services=services)
        finally:
            if pool is not None:
                await pool.close()


async def run_workers(
    settings: Settings, stages: Sequence[str], stop: asyncio.Event | None = None
) -> None:
    """Run the named stages' runners in this process until stopped."""
    stop = stop or stop_on_signals()
    database = Database(settings)
    try:
        async with stage_context(settings, database, stages) as context:
            runners = [
                StageRunner(STAGE_REGISTRY[name], settings, database, context) for name in stages
            ]
            await asyncio.gather(*(runner.run(stop) for runner in runners))
    finally:
        await database.close()


async def run_relay(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Run the outbox relay until stopped."""
    stop = stop or stop_on_signals()
    database = Database(settings)
    try:
        await OutboxRelay(settings, database).run(stop)
    finally:
        await database.close()
