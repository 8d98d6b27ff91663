"""Wiring: builds the real adapters once per process and runs the relay and stage runners.

The only module that knows which concrete storage, database, pool and catalog a process
uses. Each dependency has one provider, keyed by the parameter name stages use for it;
a process builds only what its stages ask for (a notify worker never warms OpenDrift),
and a caller (a test) may hand in its own instance of any of them.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import Any

import httpx
import structlog

from driftline.callbacks import SignedCallbacks
from driftline.db.unit_of_work import Database
from driftline.errors import ConfigurationError
from driftline.forcing.catalog import Catalog
from driftline.forcing.store import StoredSubsets
from driftline.landmask import LandMask, gshhg_landmask
from driftline.retention import RetentionPolicy
from driftline.runtime import work_folders
from driftline.runtime.housekeeping import Housekeeper
from driftline.runtime.lifecycle import stop_on_signals
from driftline.runtime.ops import (
    Readiness,
    database_probe,
    kafka_probe,
    serve_ops,
    storage_probe,
)
from driftline.runtime.relay import OutboxRelay
from driftline.runtime.runner import StageRunner
from driftline.runtime.stage import Stage
from driftline.runtime.webhook_dispatcher import WebhookDispatcher
from driftline.settings import Settings
from driftline.shard_ledger import StoredShards
from driftline.simulation.pool import SimulationPool
from driftline.storage.factory import open_artifact_store
from workers import STAGE_REGISTRY

log = structlog.get_logger("driftline.bootstrap")


class Wiring:
    """Builds each dependency on first request, once, and closes them all at the end."""

    def __init__(
        self,
        settings: Settings,
        database: Database,
        stack: AsyncExitStack,
        given: Mapping[str, Any],
    ) -> None:
        self.settings = settings
        self.database = database
        self._stack = stack
        self._built: dict[str, Any] = {"settings": settings, **given}

    async def get(self, name: str) -> Any:
        if name not in self._built:
            provider = PROVIDERS.get(name)
            if provider is None:
                raise ConfigurationError(f"no provider for the dependency {name!r}")
            self._built[name] = await self._stack.enter_async_context(provider(self))
        return self._built[name]


Provider = Callable[[Wiring], AbstractAsyncContextManager[Any]]


@asynccontextmanager
async def _storage(wiring: Wiring) -> AsyncIterator[Any]:
    async with open_artifact_store(wiring.settings) as storage:
        # A stage that stores or reads artifacts cannot work while the store is down.
        readiness: Readiness = await wiring.get("readiness")
        readiness.probe("storage", storage_probe(storage))
        yield storage


@asynccontextmanager
async def _http(_: Wiring) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10.0) as client:
        yield client


@asynccontextmanager
async def _catalog(wiring: Wiring) -> AsyncIterator[Catalog]:
    yield Catalog.from_settings(wiring.settings)


@asynccontextmanager
async def _land(_: Wiring) -> AsyncIterator[LandMask]:
    yield await asyncio.to_thread(gshhg_landmask)  # seconds, once, not on the first mission


@asynccontextmanager
async def _readiness(_: Wiring) -> AsyncIterator[Readiness]:
    yield Readiness()


@asynccontextmanager
async def _pool(wiring: Wiring) -> AsyncIterator[SimulationPool]:
    readiness: Readiness = await wiring.get("readiness")
    readiness.set("simulation_pool", False)  # not ready while OpenDrift warms up
    pool = SimulationPool(wiring.settings.simulation_workers, wiring.settings.work_dir)
    log.info("simulation_pool.warming", workers=wiring.settings.simulation_workers)
    await pool.start()
    readiness.set("simulation_pool", True)
    try:
        yield pool
    finally:
        await pool.close()


@asynccontextmanager
async def _subsets(wiring: Wiring) -> AsyncIterator[StoredSubsets]:
    storage = await wiring.get("storage")
    yield StoredSubsets(storage, wiring.database, wiring.settings.work_dir)


@asynccontextmanager
async def _shards(wiring: Wiring) -> AsyncIterator[StoredShards]:
    yield StoredShards(wiring.database)


@asynccontextmanager
async def _callbacks(wiring: Wiring) -> AsyncIterator[SignedCallbacks]:
    # The process that schedules callbacks (the notify worker) also sends them, for as
    # long as it runs; more dispatchers (`driftline webhooks run`) may run beside it.
    async with webhook_dispatch(wiring.settings, wiring.database):
        yield SignedCallbacks(wiring.database)


@asynccontextmanager
async def webhook_dispatch(settings: Settings, database: Database) -> AsyncIterator[None]:
    """A webhook dispatcher running in the background while inside."""
    stop = asyncio.Event()
    task = asyncio.create_task(WebhookDispatcher(settings, database).run(stop))
    try:
        yield
    finally:
        stop.set()
        await task


#: One provider per dependency name a stage may ask for.
PROVIDERS: dict[str, Provider] = {
    "storage": _storage,
    "http": _http,
    "catalog": _catalog,
    "land": _land,
    "pool": _pool,
    "subsets": _subsets,
    "callbacks": _callbacks,
    "shards": _shards,
    "readiness": _readiness,
}


@asynccontextmanager
async def stage_dependencies(
    settings: Settings,
    database: Database,
    stages: Sequence[Stage[Any]],
    given: Mapping[str, Any] | None = None,
) -> AsyncIterator[dict[str, Any]]:
    """Everything `stages` ask for, built (and warmed) before any of them consumes.

    `given` instances (a test's shared warm pool) are used as they are and not closed.
    """
    async with AsyncExitStack() as stack:
        wiring = Wiring(settings, database, stack, given or {})
        names = sorted({name for stage in stages for name in stage.dependencies})
        yield {name: await wiring.get(name) for name in names}


def stages_named(names: Sequence[str]) -> list[Stage[Any]]:
    unknown = [n for n in names if n not in STAGE_REGISTRY]
    if unknown:
        raise ConfigurationError(
            f"unknown stage {unknown[0]!r}; one of {', '.join(STAGE_REGISTRY)}"
        )
    return [STAGE_REGISTRY[name] for name in names]


async def run_workers(
    settings: Settings, stages: Sequence[str], stop: asyncio.Event | None = None
) -> None:
    """Run the named stages' runners in this process until stopped."""
    stop = stop or stop_on_signals()
    chosen = stages_named(stages)
    RetentionPolicy.from_settings(settings).check()  # refuse settings a replay could break
    # Temporary files go in this process's own folder; dead workers' folders are removed.
    own_folder = work_folders.claim(settings.work_dir)
    settings = settings.model_copy(update={"work_dir": own_folder})
    database = Database(settings)
    readiness = process_readiness(settings, database)
    try:
        async with (
            ops_endpoints(settings, readiness, stop),
            stage_dependencies(settings, database, chosen, {"readiness": readiness}) as deps,
        ):
            runners = [StageRunner(s, settings, database, deps) for s in chosen]
            await asyncio.gather(*(runner.run(stop) for runner in runners))
    finally:
        await database.close()
        shutil.rmtree(own_folder, ignore_errors=True)


async def run_webhook_dispatcher(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Run a webhook dispatcher alone until stopped."""
    stop = stop or stop_on_signals()
    database = Database(settings)
    readiness = Readiness()
    readiness.probe("database", database_probe(database))
    try:
        async with ops_endpoints(settings, readiness, stop):
            await WebhookDispatcher(settings, database).run(stop)
    finally:
        await database.close()


async def run_relay(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Run the outbox relay until stopped."""
    stop = stop or stop_on_signals()
    database = Database(settings)
    try:
        async with ops_endpoints(settings, process_readiness(settings, database), stop):
            await asyncio.gather(
                OutboxRelay(settings, database).run(stop),
                Housekeeper(settings, database).run(stop),
            )
    finally:
        await database.close()


async def run_housekeeping(
    settings: Settings, stop: asyncio.Event | None = None, *, once: bool = False
) -> dict[str, int]:
    """Prune past-retention rows until stopped (or one pass); relays also do this."""
    stop = stop or stop_on_signals()
    database = Database(settings)
    try:
        housekeeper = Housekeeper(settings, database)
        if once:
            return await housekeeper.pass_once()
        await housekeeper.run(stop)
        return {}
    finally:
        await database.close()


def process_readiness(settings: Settings, database: Database) -> Readiness:
    """What every worker and relay process needs: PostgreSQL and Kafka answering."""
    readiness = Readiness()
    readiness.probe("database", database_probe(database))
    readiness.probe("kafka", kafka_probe(settings.kafka_bootstrap_servers))
    return readiness


@asynccontextmanager
async def ops_endpoints(
    settings: Settings, readiness: Readiness, stop: asyncio.Event
) -> AsyncIterator[None]:
    """`/metrics`, `/healthz`, `/readyz` on `settings.metrics_port` while inside, if set."""
    if settings.metrics_port is None:
        yield
        return
    done = asyncio.Event()
    server = asyncio.create_task(
        serve_ops(readiness, settings.api_host, settings.metrics_port, done)
    )
    try:
        yield
    finally:
        done.set()
        await server
