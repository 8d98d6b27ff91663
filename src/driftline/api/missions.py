"""`/v1/missions`: submit, follow, fetch results and artifacts, cancel."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request, Response, status
from fastapi.responses import JSONResponse, StreamingResponse

from driftline.api.deps import ServicesDep, TenantDep
from driftline.contracts.envelope import child_traceparent, new_traceparent
from driftline.contracts.missions import (
    MissionAccepted,
    MissionCreate,
    MissionPage,
    MissionPublic,
    MissionStatus,
)
from driftline.contracts.results import MissionResult
from driftline.db.models import Mission
from driftline.errors import ArtifactNotFound, IdempotencyConflict, IdempotencyMismatch
from driftline.missions import (
    cancel_mission,
    list_missions,
    status_change_payload,
    submit_mission,
    to_public,
)
from driftline.runtime import metrics

router = APIRouter(prefix="/v1/missions", tags=["missions"])

NOT_FOUND = "no such mission"


async def owned_mission(mission_id: uuid.UUID, tenant: TenantDep, services: ServicesDep) -> Mission:
    """The caller's mission; another tenant's id answers 404 exactly like a missing one."""
    async with services.database.unit_of_work() as uow:
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
        409: {"description": "same Idempotency-Key still in flight"},
        422: {"description": "invalid body, or Idempotency-Key reused with another body"},
    },
)
async def create_mission(
    body: MissionCreate,
    tenant: TenantDep,
    services: ServicesDep,
    response: Response,
    idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
    traceparent: Annotated[str | None, Header()] = None,
) -> MissionAccepted:
    """Accept a mission: once this answers 202 the mission is durably stored."""
    trace = child_traceparent(traceparent) if traceparent else new_traceparent()
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
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"Idempotency-Key {exc} was already used with a different request body",
        ) from exc
    except IdempotencyConflict as exc:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"a request with Idempotency-Key {exc} is still being processed; retry shortly",
        ) from exc
    accepted = submitted.accepted
    response.headers["Location"] = accepted.links["self"].href
    if submitted.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    else:
        metrics.MISSIONS_ACCEPTED.inc()
    return accepted


@router.get("", response_model=MissionPage)
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
            raise HTTPException(status.HTTP_400_BAD_REQUEST, "invalid cursor") from exc
    base = services.settings.public_base_url
    return MissionPage(items=[to_public(m, base) for m in rows], next_cursor=next_cursor)


@router.get("/{mission_id}", response_model=MissionPublic)
async def get_mission(mission: OwnedMission, services: ServicesDep) -> Any:
    return to_public(mission, services.settings.public_base_url)


def _result_of(mission: Mission) -> MissionResult | None:
    return MissionResult.model_validate(mission.result) if mission.result else None


@router.get("/{mission_id}/results")
async def get_results(mission: OwnedMission) -> Any:
    """Summary and artifact list; 409 until the mission has completed."""
    result = _result_of(mission)
    if mission.status != MissionStatus.COMPLETED.value or result is None:
        raise HTTPException(
            status.HTTP_409_CONFLICT, f"mission is {mission.status}; results exist once completed"
        )
    return {"mission_id": str(mission.id), "status": mission.status, **result.model_dump()}


@router.get("/{mission_id}/artifacts/{name:path}")
async def get_artifact(mission: OwnedMission, name: str, services: ServicesDep) -> Response:
    """The artifact's bytes (served through the API, so clients need no S3 access)."""
    result = _result_of(mission)
    artifact = result.artifact(name) if result is not None else None
    if artifact is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"mission has no artifact {name!r}")
    try:
        data = await services.storage.get_bytes(artifact.key)
    except ArtifactNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "artifact missing from storage") from exc
    return Response(data, media_type=artifact.media_type)


@router.get("/{mission_id}/events")
async def stream_events(
    mission: OwnedMission,
    services: ServicesDep,
    request: Request,
    last_event_id: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    """Server-Sent Events: one `status` event per change, until a final state."""
    mission_id = mission.id
    start_after = int(last_event_id) if last_event_id and last_event_id.isdigit() else 0

    async def events() -> AsyncIterator[bytes]:
        after = start_after
        idle = 0.0
        while not await request.is_disconnected():
            async with services.database.unit_of_work() as uow:
                changes = await uow.missions.changes_after(mission_id, after)
            for change in changes:
                after = change.id
                payload = json.dumps(status_change_payload(change))
                yield f"id: {change.id}\nevent: status\ndata: {payload}\n\n".encode()
                if MissionStatus(change.status).is_final:
                    return
            if changes:
                idle = 0.0
            else:
                idle += 0.5
                if idle >= 15:
                    idle = 0.0
                    yield b": keep-alive\n\n"
            await asyncio.sleep(0.5)

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.delete("/{mission_id}", response_model=MissionPublic)
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
