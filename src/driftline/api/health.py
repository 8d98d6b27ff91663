"""Liveness, readiness (database and Kafka reachable) and Prometheus metrics."""

from __future__ import annotations

import asyncio
import contextlib

from aiokafka.admin import AIOKafkaAdminClient
from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel

from driftline.api.deps import ServicesDep
from driftline.runtime import metrics

router = APIRouter(tags=["operations"])


class ReadyReport(BaseModel):
    """Whether each dependency answered."""

    ready: bool
    checks: dict[str, bool]


class PrometheusText(Response):
    """Prometheus text exposition format (documents the media type in OpenAPI)."""

    media_type = "text/plain"


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is alive (no dependency checked)."""
    return {"status": "ok"}


async def _kafka_ok(bootstrap: str, timeout_s: float) -> bool:
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, request_timeout_ms=int(timeout_s * 1000)
    )
    try:
        await asyncio.wait_for(admin.start(), timeout_s)
        await asyncio.wait_for(admin.describe_cluster(), timeout_s)
        return True
    except Exception:
        return False
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(admin.close(), timeout_s)


@router.get(
    "/readyz",
    responses={
        200: {"model": ReadyReport, "description": "PostgreSQL and Kafka answer."},
        503: {"model": ReadyReport, "description": "A dependency does not answer."},
    },
)
async def readyz(services: ServicesDep) -> JSONResponse:
    """Ready when PostgreSQL and Kafka answer; missions are accepted even if Kafka is down,
    so a load balancer should use this for alerting rather than for routing."""
    checks: dict[str, bool] = {}
    try:
        async with services.database.unit_of_work() as uow:
            await uow.ping()
        checks["database"] = True
    except Exception:
        checks["database"] = False
    checks["kafka"] = await _kafka_ok(services.settings.kafka_bootstrap_servers, 3.0)
    ok = all(checks.values())
    return JSONResponse({"ready": ok, "checks": checks}, status_code=200 if ok else 503)


@router.get("/metrics", response_class=PrometheusText)
async def prometheus_metrics(services: ServicesDep) -> Response:
    try:
        async with services.database.unit_of_work() as uow:
            metrics.OUTBOX_BACKLOG.set(await uow.outbox.backlog())
    except Exception:
        pass
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
