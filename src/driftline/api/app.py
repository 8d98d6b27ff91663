"""The FastAPI application factory; services are created in the lifespan, never at import."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

from driftline import __version__
from driftline.api import health, missions, object_types, plans
from driftline.api.console import mount_console
from driftline.api.deps import ApiServices
from driftline.api.guard import RequestGuard
from driftline.api.openapi import complete_openapi
from driftline.api.problems import install_problem_handlers
from driftline.api.ratelimit import RateLimiter
from driftline.api.streams import StatusFeed, StreamSlots, asyncpg_dsn
from driftline.db.unit_of_work import Database
from driftline.missions import CallbackCheck, callback_check
from driftline.runtime import metrics
from driftline.settings import Settings
from driftline.storage.factory import open_artifact_store


def create_app(settings: Settings, *, check_callback: CallbackCheck | None = None) -> FastAPI:
    """Build the API for `settings`.

    `check_callback` judges a mission's callback URL at POST time; the default resolves
    its host and refuses internal addresses (`webhooks.check_callback_url`).
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        database = Database(settings)
        storage = open_artifact_store(settings)
        feed = StatusFeed(asyncpg_dsn(settings.database_url))
        async with storage:
            app.state.services = ApiServices(
                settings=settings,
                database=database,
                storage=storage,
                limiter=RateLimiter.from_settings(settings),
                slots=StreamSlots(settings.sse_max_streams_per_key),
                feed=feed,
                check_callback=check_callback or callback_check(settings),
            )
            feed.start()
            try:
                yield
            finally:
                await feed.close()
                await database.close()

    app = FastAPI(
        title="Driftline",
        version=__version__,
        description="Drift prediction for maritime search and rescue. Submit a mission, "
        "follow its status, download its search areas and map.",
        lifespan=lifespan,
    )
    # A server span per request, child of a valid incoming `traceparent` (docs/operations.md).
    FastAPIInstrumentor.instrument_app(app, excluded_urls="healthz,readyz,metrics")
    app.include_router(missions.router)
    app.include_router(plans.router)
    app.include_router(object_types.router)
    app.include_router(health.router)
    mount_console(app, settings)
    install_problem_handlers(app)
    complete_openapi(app)
    # Inside the request counter, so refused requests (401, 413, 429, ...) are counted.
    app.add_middleware(RequestGuard)

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
