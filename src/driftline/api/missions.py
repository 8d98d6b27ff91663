"""`/v1/missions`: submit, follow, fetch results and artifacts, cancel."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Response, status
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.types import Receive, Scope, Send

from driftline.api.deps import CallerDep, IdempotencyKeyDep, ServicesDep, TenantDep
from driftline.api.openapi import event_stream
from driftline.api.problems import (
    BAD_CURSOR,
    IDEMPOTENCY_KEY_IN_USE,
    IDEMPOTENCY_KEY_REUSED,
    MISSION_NOT_COMPLETED,
    RESULTS_EXPIRED,
    TOO_MANY_STREAMS,
    ApiProblem,
    FieldError,
    accepted_responses,
    problem_responses,
)
from driftline.api.streams import parse_last_event_id, status_events
from driftline.contracts.envelope import active_traceparent, child_traceparent
from driftline.contracts.missions import (
    MissionAccepted,
    MissionCreate,
    MissionPage,
    MissionPublic,
    MissionStatus,
    StatusChange,
    utcnow,
)
from driftline.contracts.results import MissionResult, MissionResults
from driftline.db.models import Mission
from driftline.errors import ArtifactNotFound, IdempotencyConflict, IdempotencyMismatch
from driftline.missions import (
    TimeWindow,
    cancel_mission,
    list_missions,
    screen_submission,
    submit_mission,
    to_public,
)
from driftline.retention import RetentionPolicy
from driftline.runtime import metrics
from driftline.settings import particle_limit

#: What the edge (guard.py) may answer for any operation here: no or a revoked key,
#: a body over the limit or a malformed Content-Length, the key's rate limit, no database.
GUARDED = (400, 401, 413, 429, 503)
#: ... and for one mission (its id is checked, then looked up in the caller's missions).
MISSION_SCOPED = (*GUARDED, 404, 422)

router = APIRouter(prefix="/v1/missions", tags=["missions"])

NOT_FOUND = "no such mission"


class EventStreamResponse(StreamingResponse):
    """Server-Sent Events (`text/event-stream`) that call `on_close` however they end,
    even if the client left before the first byte (the stream never started then)."""

    media_type = "text/event-stream"

    def __init__(
        self, content: AsyncIterator[bytes], *, on_close: Callable[[], None], **kwargs: Any
    ) -> None:
        super().__init__(content, **kwargs)
        self._on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._on_close()


async def owned_mission(mission_id: uuid.UUID, tenant: TenantDep, services: ServicesDep) -> Mission:
    """The caller's mission; another tenant's id answers 404 exactly like a missing one."""
    async with services.database.reads() as uow:
        mission = await uow.missions.owned(tenant, mission_id)
    if mission is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, NOT_FOUND)
    return mission


OwnedMission = Annotated[Mission, Depends(owned_mission)]


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=MissionAccepted,
    responses={
        **accepted_responses("mission"),
        **problem_responses(*GUARDED, 409, 415, 422),
    },
)
async def create_mission(
    body: MissionCreate,
    tenant: TenantDep,
    services: ServicesDep,
    response: Response,
    idempotency_key: IdempotencyKeyDep,
    traceparent: Annotated[
        str | None, Header(description="W3C trace context; an invalid one starts a new trace.")
    ] = None,
) -> MissionAccepted:
    """Accept a mission: once this answers 202 the mission is durably stored.

    Refused with 422 (one entry per field) for an unknown object type, a time outside
    the accepted window or a callback URL that reaches an internal address.
    """
    await screen_submission(
        body,
        window=TimeWindow.of(services.settings, utcnow()),
        check_callback=services.check_callback,
        max_particles=particle_limit(services.settings, tenant),
    )
    # The request's server span (a child of a valid incoming traceparent) roots the trace.
    trace = active_traceparent() or child_traceparent(traceparent)
    try:
        submitted = await submit_mission(
            services.database,
            tenant=tenant,
            body=body,
            traceparent=trace,
            base_url=services.settings.public_base_url,
            idempotency_key=idempotency_key,
        )
    except IdempotencyMismatch as exc:
        reused = "this Idempotency-Key was already used with a different request body"
        raise ApiProblem(
            IDEMPOTENCY_KEY_REUSED,
            reused,
            errors=[
                FieldError(
                    field="header.idempotency-key", message=reused, type="idempotency_key_reused"
                )
            ],
        ) from exc
    except IdempotencyConflict as exc:
        raise ApiProblem(
            IDEMPOTENCY_KEY_IN_USE,
            "a request with this Idempotency-Key is still being processed; retry shortly",
        ) from exc
    accepted = submitted.accepted
    response.headers["Location"] = accepted.links["self"].href
    if submitted.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    else:
        metrics.MISSIONS_ACCEPTED.inc()
    return accepted


@router.get("", response_model=MissionPage, responses=problem_responses(*GUARDED, 422))
async def list_my_missions(
    tenant: TenantDep,
    services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: str | None = None,
    status_filter: Annotated[MissionStatus | None, Query(alias="status")] = None,
) -> MissionPage:
    """The caller's missions, newest first; pass `next_cursor` back for the next page."""
    async with services.database.unit_of_work() as uow:
        try:
            rows, next_cursor = await list_missions(
                uow,
                tenant,
                limit=limit,
                cursor=cursor,
                status=status_filter.value if status_filter else None,
            )
        except ValueError as exc:
            raise ApiProblem(BAD_CURSOR, "invalid cursor: pass back a next_cursor") from exc
    base = services.settings.public_base_url
    return MissionPage(items=[to_public(m, base) for m in rows], next_cursor=next_cursor)


@router.get(
    "/{mission_id}", response_model=MissionPublic, responses=problem_responses(*MISSION_SCOPED)
)
async def get_mission(mission: OwnedMission, services: ServicesDep) -> Any:
    return to_public(mission, services.settings.public_base_url)


def _result_of(mission: Mission, retention: RetentionPolicy) -> MissionResult | None:
    """The mission's result; 410 Gone once its artifacts are past their retention."""
    if mission.result is None:
        return None
    kept = retention.artifacts
    if kept is not None and mission.completed_at and mission.completed_at + kept < utcnow():
        raise ApiProblem(
            RESULTS_EXPIRED,
            f"the results of this mission were removed {kept.days} days after it completed",
        )
    return MissionResult.model_validate(mission.result)


@router.get(
    "/{mission_id}/results",
    response_model=MissionResults,
    responses=problem_responses(*MISSION_SCOPED, 409, 410),
)
async def get_results(mission: OwnedMission, services: ServicesDep) -> Any:
    """Summary and artifact list; 409 until the mission has completed, 410 once its
    artifacts have expired (`DRIFTLINE_RETENTION_ARTIFACTS_DAYS`)."""
    result = _result_of(mission, RetentionPolicy.from_settings(services.settings))
    if mission.status != MissionStatus.COMPLETED.value or result is None:
        raise ApiProblem(
            MISSION_NOT_COMPLETED, f"mission is {mission.status}; results exist once completed"
        )
    return {"mission_id": str(mission.id), "status": mission.status, **result.model_dump()}


@router.get(
    "/{mission_id}/artifacts/{name:path}",
    response_class=Response,
    responses={
        200: {
            "description": "The artifact's bytes, in its own media type (NetCDF, GeoJSON, "
            "KML, PNG or JSON).",
            "content": {
                "application/json": {"schema": {}},
                "application/geo+json": {"schema": {"type": "object"}},
                "*/*": {"schema": {"type": "string", "format": "binary"}},
            },
        },
        **problem_responses(*MISSION_SCOPED, 410),
    },
)
async def get_artifact(mission: OwnedMission, name: str, services: ServicesDep) -> Response:
    """The artifact's bytes (served through the API, so clients need no S3 access)."""
    result = _result_of(mission, RetentionPolicy.from_settings(services.settings))
    artifact = result.artifact(name) if result is not None else None
    if artifact is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"mission has no artifact {name!r}")
    try:
        data = await services.storage.get_bytes(artifact.key)
    except ArtifactNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "artifact missing from storage") from exc
    return Response(data, media_type=artifact.media_type)


@router.get(
    "/{mission_id}/events",
    # The 200 entry below documents the stream, event by event (FastAPI would add a
    # schema for the whole body if the response class named a media type).
    response_class=Response,
    responses={
        200: event_stream(
            "status",
            StatusChange,
            "One `status` event per change (`id` is the change's number), until a final "
            "status or the idle timeout; `: keep-alive` comments between.",
        ),
        **problem_responses(*MISSION_SCOPED, 410),
    },
)
async def stream_events(
    mission: OwnedMission,
    caller: CallerDep,
    services: ServicesDep,
    last_event_id: Annotated[
        str | None,
        Header(description="Resume after this event id; anything but a number is ignored."),
    ] = None,
) -> EventStreamResponse:
    """Server-Sent Events: one `status` event per change, until a final state."""
    release = services.slots.acquire(caller.key_id)
    if release is None:
        raise ApiProblem(
            TOO_MANY_STREAMS,
            f"this API key already has {services.settings.sse_max_streams_per_key} status "
            "streams open; close one first",
            headers={"Retry-After": "5"},
        )
    events = status_events(
        services.database,
        services.feed,
        mission.id,
        after=parse_last_event_id(last_event_id),
        timing=services.stream_timing,
    )
    return EventStreamResponse(
        events, on_close=release, headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )


@router.delete(
    "/{mission_id}",
    response_model=MissionPublic,
    responses={
        202: {"description": "Cancelled.", "model": MissionPublic},
        200: {"description": "Already final: left as it was (see `status`)."},
        **problem_responses(*MISSION_SCOPED, 410),
    },
)
async def cancel(mission_id: uuid.UUID, tenant: TenantDep, services: ServicesDep) -> Any:
    """Cancel; a final mission stays as it is (the answer shows its status)."""
    mission = await cancel_mission(services.database, tenant, mission_id)
    if mission is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, NOT_FOUND)
    return JSONResponse(
        to_public(mission, services.settings.public_base_url).model_dump(mode="json"),
        status_code=status.HTTP_202_ACCEPTED
        if mission.status == MissionStatus.CANCELLED.value
        else status.HTTP_200_OK,
    )
