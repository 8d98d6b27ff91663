"""`/v1/missions/{id}/plans` and `/v1/missions/{id}/searches`: search planning on a
completed mission, and the searches made with nothing found."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Response, status

from driftline.api.deps import ServicesDep, TenantDep
from driftline.api.problems import (
    MISSION_NOT_COMPLETED,
    ApiProblem,
    accepted_responses,
    problem_responses,
)
from driftline.contracts.envelope import active_traceparent, child_traceparent
from driftline.contracts.plans import (
    PlanAccepted,
    PlanCreate,
    PlanPage,
    PlanPublic,
    PlanResult,
    PlanStatus,
    SearchCreate,
    SearchPage,
    SearchPublic,
)
from driftline.db.models import SearchPlan
from driftline.errors import ArtifactNotFound
from driftline.plans import (
    MissionNotReady,
    plan_public,
    record_search,
    request_plan,
    search_public,
)

#: What the edge may answer for any operation (guard.py), and for one mission.
GUARDED = (400, 401, 413, 429, 503)
MISSION_SCOPED = (*GUARDED, 404, 422)
NOT_FOUND = "no such mission"

router = APIRouter(prefix="/v1/missions", tags=["search planning"])

TraceparentHeader = Annotated[
    str | None, Header(description="W3C trace context; an invalid one starts a new trace.")
]


def _trace(traceparent: str | None) -> str:
    return active_traceparent() or child_traceparent(traceparent)


def _not_ready(exc: MissionNotReady) -> ApiProblem:
    return ApiProblem(MISSION_NOT_COMPLETED, str(exc))


@router.post(
    "/{mission_id}/plans",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=PlanAccepted,
    responses={
        **accepted_responses("plan"),
        **problem_responses(*MISSION_SCOPED, 409, 415),
    },
)
async def create_plan(
    mission_id: uuid.UUID,
    body: PlanCreate,
    tenant: TenantDep,
    services: ServicesDep,
    response: Response,
    traceparent: TraceparentHeader = None,
) -> PlanAccepted:
    """Ask for a search plan: areas, patterns and POS for the given units from the
    commence time, on the probability left after every recorded search.

    409 until the mission has completed; 422 for a commence time outside the mission's
    simulated window or a unit whose sweep width the table cannot give.
    """
    try:
        accepted = await request_plan(
            services.database,
            tenant=tenant,
            mission_id=mission_id,
            body=body,
            base_url=services.settings.public_base_url,
            traceparent=_trace(traceparent),
        )
    except MissionNotReady as exc:
        raise _not_ready(exc) from exc
    if accepted is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, NOT_FOUND)
    response.headers["Location"] = accepted.links["self"].href
    return accepted


async def _plans(services: ServicesDep, tenant: str, mission_id: uuid.UUID) -> list[SearchPlan]:
    async with services.database.unit_of_work() as uow:
        if await uow.missions.owned(tenant, mission_id) is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, NOT_FOUND)
        return await uow.plans.for_mission(mission_id)


async def _plan(
    services: ServicesDep, tenant: str, mission_id: uuid.UUID, plan_id: uuid.UUID
) -> SearchPlan:
    async with services.database.unit_of_work() as uow:
        plan = await uow.plans.get(plan_id)
    if plan is None or plan.tenant != tenant or plan.mission_id != mission_id:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such plan")
    return plan


@router.get(
    "/{mission_id}/plans", response_model=PlanPage, responses=problem_responses(*MISSION_SCOPED)
)
async def list_plans(mission_id: uuid.UUID, tenant: TenantDep, services: ServicesDep) -> Any:
    """The mission's plans, newest first (map updates after searches included)."""
    base = services.settings.public_base_url
    return PlanPage(
        items=[plan_public(p, base) for p in await _plans(services, tenant, mission_id)]
    )


@router.get(
    "/{mission_id}/plans/{plan_id}",
    response_model=PlanPublic,
    responses=problem_responses(*MISSION_SCOPED),
)
async def get_plan(
    mission_id: uuid.UUID, plan_id: uuid.UUID, tenant: TenantDep, services: ServicesDep
) -> Any:
    """One plan: its request, status and, once completed, areas, POS and products."""
    plan = await _plan(services, tenant, mission_id, plan_id)
    return plan_public(plan, services.settings.public_base_url)


@router.get(
    "/{mission_id}/plans/{plan_id}/artifacts/{name}",
    response_class=Response,
    responses={
        200: {
            "description": "The product's bytes (GeoJSON, KML, GPX, PNG or text).",
            "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
        },
        **problem_responses(*MISSION_SCOPED),
    },
)
async def get_plan_artifact(
    mission_id: uuid.UUID, plan_id: uuid.UUID, name: str, tenant: TenantDep, services: ServicesDep
) -> Response:
    """A product of a completed plan."""
    plan = await _plan(services, tenant, mission_id, plan_id)
    result = PlanResult.model_validate(plan.result) if plan.result else None
    artifact = next((a for a in result.artifacts if a.name == name), None) if result else None
    if artifact is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"plan has no artifact {name!r}")
    try:
        data = await services.storage.get_bytes(artifact.key)
    except ArtifactNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "artifact missing from storage") from exc
    return Response(data, media_type=artifact.media_type)


@router.post(
    "/{mission_id}/searches",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=SearchPublic,
    responses=problem_responses(*MISSION_SCOPED, 409, 415),
)
async def create_search(
    mission_id: uuid.UUID,
    body: SearchCreate,
    tenant: TenantDep,
    services: ServicesDep,
    response: Response,
    traceparent: TraceparentHeader = None,
) -> SearchPublic:
    """Record a search that found nothing. The map is redrawn on the updated weights
    (`map_update_plan_id`), and every later plan uses them."""
    try:
        search = await record_search(
            services.database,
            tenant=tenant,
            mission_id=mission_id,
            body=body,
            base_url=services.settings.public_base_url,
            traceparent=_trace(traceparent),
        )
    except MissionNotReady as exc:
        raise _not_ready(exc) from exc
    if search is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, NOT_FOUND)
    base = services.settings.public_base_url.rstrip("/")
    response.headers["Location"] = (
        f"{base}/v1/missions/{mission_id}/plans/{search.map_update_plan_id}"
    )
    return search


@router.get(
    "/{mission_id}/searches",
    response_model=SearchPage,
    responses=problem_responses(*MISSION_SCOPED),
)
async def list_searches(mission_id: uuid.UUID, tenant: TenantDep, services: ServicesDep) -> Any:
    """The searches recorded for the mission, in the order they were made, and the
    cumulative POS after all of them (once the latest map update has completed)."""
    async with services.database.unit_of_work() as uow:
        if await uow.missions.owned(tenant, mission_id) is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, NOT_FOUND)
        searches = await uow.searches.for_mission(mission_id)
        plans = await uow.plans.for_mission(mission_id)
    cumulative = None
    for plan in plans:  # newest first
        if plan.status == PlanStatus.COMPLETED.value and plan.result:
            summary = PlanResult.model_validate(plan.result).summary
            if summary.searches_applied == len(searches):
                cumulative = summary.cumulative_pos_before
                break
    return SearchPage(items=[search_public(s) for s in searches], cumulative_pos=cumulative)
