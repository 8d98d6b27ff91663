"""Every process's operations endpoints: `/metrics`, `/healthz`, `/readyz`.

The API serves them on its own port; workers and the relay serve them on
`settings.metrics_port` (`--metrics-port`). Readiness is the conjunction of named
conditions a process needs (database reachable, Kafka reachable, simulation pool warm):
an orchestrator routes around a process that says it is not ready.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import structlog
import uvicorn
from aiokafka.admin import AIOKafkaAdminClient
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from driftline.db.unit_of_work import Database
from driftline.runtime import metrics
from driftline.storage.base import ArtifactStore

log = structlog.get_logger("driftline.ops")

Probe = Callable[[], Awaitable[bool]]
PROBE_TIMEOUT_S = 3.0


class Readiness:
    """Named conditions: flags set by the process (pool warm) and probes run on request."""

    def __init__(self) -> None:
        self._flags: dict[str, bool] = {}
        self._probes: dict[str, Probe] = {}

    def set(self, name: str, ok: bool) -> None:
        self._flags[name] = ok

    def probe(self, name: str, check: Probe) -> None:
        self._probes[name] = check

    async def checks(self) -> dict[str, bool]:
        names = list(self._probes)
        results = await asyncio.gather(*(_bounded(self._probes[n]) for n in names))
        checks = {**self._flags, **dict(zip(names, results, strict=True))}
        for name, ok in checks.items():
            metrics.DEPENDENCY_UP.labels(name).set(1 if ok else 0)
        return checks


async def _bounded(check: Probe) -> bool:
    try:
        return await asyncio.wait_for(check(), PROBE_TIMEOUT_S)
    except Exception:
        return False


def database_probe(database: Database) -> Probe:
    async def check() -> bool:
        async with database.unit_of_work() as uow:
            await uow.ping()
        return True

    return check


def storage_probe(storage: ArtifactStore) -> Probe:
    """The artifact store answers (a missing key is an answer)."""

    async def check() -> bool:
        await storage.exists("readyz/probe")
        return True

    return check


def kafka_probe(bootstrap_servers: str) -> Probe:
    async def check() -> bool:
        admin = AIOKafkaAdminClient(
            bootstrap_servers=bootstrap_servers,
            request_timeout_ms=int(PROBE_TIMEOUT_S * 1000),
        )
        try:
            # Bootstrapping asks the listed brokers in turn until one answers a metadata
            # request: reachable. No further request, since it would go to a random node,
            # and one dead node of three (still listed until the controller drops it)
            # would make a healthy cluster look down a third of the time.
            await admin.start()
            return True
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(admin.close(), PROBE_TIMEOUT_S)

    return check


async def readiness_response(readiness: Readiness) -> JSONResponse:
    checks = await readiness.checks()
    ok = all(checks.values())
    return JSONResponse({"ready": ok, "checks": checks}, status_code=200 if ok else 503)


def metrics_response() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


def ops_app(readiness: Readiness) -> Starlette:
    async def healthz(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def readyz(_: Request) -> JSONResponse:
        return await readiness_response(readiness)

    async def prometheus(_: Request) -> Response:
        return metrics_response()

    return Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", prometheus),
        ]
    )


async def serve_ops(readiness: Readiness, host: str, port: int, stop: asyncio.Event) -> None:
    """Serve the endpoints until `stop` is set."""
    config = uvicorn.Config(ops_app(readiness), host=host, port=port, log_level="warning")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    log.info("ops.serving", port=port)
    try:
        await stop.wait()
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
