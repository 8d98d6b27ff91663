"""The FastAPI application factory; services are created in the lifespan, never at import."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from driftline import __version__
from driftline.api import health, missions
from driftline.api.deps import ApiServices
from driftline.db.unit_of_work import Database
from driftline.errors import TransientError
from driftline.runtime import metrics
from driftline.settings import Settings
from driftline.storage.factory import open_artifact_store


def create_app(settings: Settings) -> FastAPI:
    """Build the API for `settings`."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        database = Database(settings)
        storage = open_artifact_store(settings)
        async with storage:
            app.state.services = ApiServices(settings=settings, database=database, storage=storage)
            try:
                yield
            finally:
                await database.close()

    app = FastAPI(
        title="Driftline",
        version=__version__,
        description="Drift prediction for maritime search and rescue. Submit a mission, "
        "follow its status, download its search areas and map.",
        lifespan=lifespan,
    )
    app.include_router(missions.router)
    app.include_router(health.router)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        """422 with one entry per offending field, in words."""
        errors = [
            {
                "field": ".".join(str(p) for p in err["loc"] if p != "body"),
                "message": err["msg"],
                "type": err["type"],
            }
            for err in exc.errors()
        ]
        return JSONResponse({"detail": "invalid request", "errors": errors}, status_code=422)

    async def unavailable(_: Request, exc: Exception) -> JSONResponse:
        """A dependency is down: say so (503, retry), never a bare 500 and never a 202."""
        return JSONResponse(
            {
                "detail": "a backing service is unavailable; nothing was accepted, retry shortly",
                "error": type(exc).__name__,
            },
            status_code=503,
            headers={"Retry-After": "5"},
        )

    app.add_exception_handler(TransientError, unavailable)

    @app.middleware("http")
    async def count_requests(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        path = getattr(route, "path", "unmatched")
        metrics.HTTP_REQUESTS.labels(request.method, path, str(response.status_code)).inc()
        response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - started) * 1000:.1f}"
        return response

    return app
