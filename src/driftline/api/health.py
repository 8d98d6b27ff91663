"""Liveness, readiness (database and Kafka reachable) and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from driftline.api.deps import ServicesDep
from driftline.runtime import metrics
from driftline.runtime.ops import (
    Readiness,
    database_probe,
    kafka_probe,
    metrics_response,
    readiness_response,
)

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
    readiness = Readiness()
    readiness.probe("database", database_probe(services.database))
    readiness.probe("kafka", kafka_probe(services.settings.kafka_bootstrap_servers))
    return await readiness_response(readiness)


@router.get("/metrics", response_class=PrometheusText)
async def prometheus_metrics(services: ServicesDep) -> Response:
    try:
        async with services.database.unit_of_work() as uow:
            metrics.OUTBOX_BACKLOG.set(await uow.outbox.backlog())
    except Exception:
        pass
    return metrics_response()
