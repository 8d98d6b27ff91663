"""Search-planning use cases behind the API, and the plan stage's exactly-once effects.

Asking for a plan stores a `search_plans` row and its `plan.requested` event in one
transaction (the outbox), like a mission; recording a search stores it and asks for the
map redrawn on the updated weights (a plan without units). Every plan request carries
the searches recorded so far, so the plan stage needs nothing but the event and the
particle file, and a redelivered request computes the very same plan.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog

from driftline.contracts.envelope import Envelope, follow, rfc3339, stage_source
from driftline.contracts.events import EventData, PlanCompletedV1, PlanRequestedV1
from driftline.contracts.missions import Link, MissionStatus, utcnow
from driftline.contracts.object_types import find_object_type
from driftline.contracts.plans import (
    PlanAccepted,
    PlanArtifact,
    PlanCreate,
    PlanPublic,
    PlanResult,
    PlanStatus,
    PlanSummary,
    SearchCreate,
    SearchGeometry,
    SearchPublic,
    SearchRecord,
    StoredPlanArtifact,
)
from driftline.db.models import Mission, MissionSearch, SearchPlan
from driftline.db.unit_of_work import Database, UnitOfWork
from driftline.errors import DriftlineError, PermanentError, RequestRejected
from driftline.planning.sweep_width import NoSweepWidth, corrected_sweep_width
from driftline.runtime.apply import ExactlyOnce
from driftline.runtime.stage import BoundStage

log = structlog.get_logger("driftline.plans")

#: Artifact listed by post-processing for the simulation's own particle file.
RAW_PARTICLES = "raw/particles.nc"
FINISHED = {PlanStatus.COMPLETED.value, PlanStatus.FAILED.value}


class MissionNotReady(DriftlineError):
    """Plans and searches need a completed mission with its particle file (409)."""


def plan_prefix(tenant: str, mission_id: uuid.UUID, plan_id: uuid.UUID) -> str:
    """Where a plan's products are stored (deterministic: a re-run overwrites)."""
    return f"{tenant}/{mission_id}/plans/{plan_id}/"


def plan_links(base_url: str, mission_id: uuid.UUID, plan_id: uuid.UUID) -> dict[str, Link]:
    root = f"{base_url.rstrip('/')}/v1/missions/{mission_id}/plans/{plan_id}"
    return {"self": Link(href=root)}


def plan_artifact_href(base_url: str, mission_id: uuid.UUID, plan_id: uuid.UUID, name: str) -> str:
    return f"{plan_links(base_url, mission_id, plan_id)['self'].href}/artifacts/{name}"


@dataclass(frozen=True)
class MissionWindow:
    """The times a mission's particle file covers."""

    start: datetime
    end: datetime

    @classmethod
    def of(cls, request: dict[str, Any]) -> MissionWindow:
        start = datetime.fromisoformat(request["last_known_position"]["time"])
        span = timedelta(hours=float(request["duration_hours"]))
        backward = bool((request.get("options") or {}).get("backward"))
        end = start - span if backward else start + span
        return cls(min(start, end), max(start, end))

    def contains(self, moment: datetime) -> bool:
        return self.start <= moment <= self.end

    def clamp(self, moment: datetime) -> datetime:
        return min(max(moment, self.start), self.end)


def particles_key(mission: Mission) -> str:
    """The object-store key of the mission's particle file; MissionNotReady otherwise."""
    if mission.status != MissionStatus.COMPLETED.value or not mission.result:
        raise MissionNotReady(f"mission is {mission.status}; search plans need a completed mission")
    for artifact in mission.result.get("artifacts", []):
        if artifact.get("name") == RAW_PARTICLES:
            return str(artifact["key"])
    raise MissionNotReady("the mission's particle file is not listed among its artifacts")


def object_key(mission: Mission) -> str:
    """The mission's Leeway object key (a request may name it by its numeric id)."""
    value = mission.request.get("object_type")
    found = find_object_type(value) if isinstance(value, str | int) else None
    return found.key if found is not None else str(value)


def screen_plan(mission: Mission, body: PlanCreate) -> None:
    """Refuse (422, one entry per field) a commence time outside the simulated window or
    a unit whose sweep width the table cannot give."""
    problems: list[tuple[str, str, str]] = []
    window = MissionWindow.of(mission.request)
    if not window.contains(body.commence_time):
        problems.append(
            (
                "commence_time",
                f"{rfc3339(body.commence_time)} is outside the mission's simulated window "
                f"({rfc3339(window.start)} to {rfc3339(window.end)})",
                "time_out_of_range",
            )
        )
    object_type = object_key(mission)
    for i, unit in enumerate(body.units):
        try:
            corrected_sweep_width(
                object_type=object_type,
                unit_type=unit.type,
                visibility_nm=unit.visibility_nm,
                given_km=unit.sweep_width_km,
            )
        except NoSweepWidth as exc:
            problems.append((f"units.{i}.sweep_width_km", exc.detail, exc.reason))
    if problems:
        raise RequestRejected(problems)


def _records(searches: list[MissionSearch]) -> list[SearchRecord]:
    return [SearchRecord.model_validate(s.record) for s in searches]


async def _ask_for_plan(
    uow: UnitOfWork, mission: Mission, body: PlanCreate, traceparent: str
) -> SearchPlan:
    """The plan row and its `plan.requested` event, in the caller's transaction."""
    plan = SearchPlan(
        id=uuid.uuid4(),
        mission_id=mission.id,
        tenant=mission.tenant,
        status=PlanStatus.REQUESTED.value,
        request=body.model_dump(mode="json"),
        created_at=utcnow(),
    )
    uow.plans.add(plan)
    requested = PlanRequestedV1(
        mission_id=mission.id,
        tenant=mission.tenant,
        plan_id=plan.id,
        request=body,
        object_type=object_key(mission),
        title=mission.name,
        particles_key=particles_key(mission),
        searches=_records(await uow.searches.for_mission(mission.id)),
    )
    uow.publish(Envelope(data=requested, source=stage_source("api"), traceparent=traceparent))
    return plan


async def request_plan(
    db: Database,
    *,
    tenant: str,
    mission_id: uuid.UUID,
    body: PlanCreate,
    base_url: str,
    traceparent: str,
) -> PlanAccepted | None:
    """Store the plan request and its event (one commit); None if no such mission."""
    async with db.unit_of_work() as uow:
        mission = await uow.missions.owned(tenant, mission_id, lock=True)
        if mission is None:
            return None
        particles_key(mission)
        screen_plan(mission, body)
        plan = await _ask_for_plan(uow, mission, body, traceparent)
    return PlanAccepted(
        id=plan.id, status=PlanStatus.REQUESTED, links=plan_links(base_url, mission_id, plan.id)
    )


async def record_search(
    db: Database,
    *,
    tenant: str,
    mission_id: uuid.UUID,
    body: SearchCreate,
    base_url: str,
    traceparent: str,
) -> SearchPublic | None:
    """Store the search and ask for the map redrawn on the updated weights (one commit).

    The mission lock orders concurrent searches and plans of one mission, so every plan
    request carries every search committed before it.
    """
    async with db.unit_of_work() as uow:
        mission = await uow.missions.owned(tenant, mission_id, lock=True)
        if mission is None:
            return None
        particles_key(mission)
        window = MissionWindow.of(mission.request)
        record = await _search_record(uow, mission, body)
        search = MissionSearch(
            id=record.id,
            mission_id=mission.id,
            tenant=tenant,
            searched_at=record.searched_at,
            record=record.model_dump(mode="json"),
            plan_id=body.plan_id,
            map_update_plan_id=uuid.uuid4(),
            created_at=utcnow(),
        )
        uow.searches.add(search)
        await uow.missions.flush()
        update = PlanCreate(commence_time=window.clamp(record.searched_at), units=[])
        plan = await _ask_for_plan(uow, mission, update, traceparent)
        search.map_update_plan_id = plan.id
    return search_public(search)


async def _search_record(uow: UnitOfWork, mission: Mission, body: SearchCreate) -> SearchRecord:
    """The search as recorded; "searched as planned" takes the planned area and spacing."""
    search_id = uuid.uuid4()
    if body.geometry is not None:
        return SearchRecord(
            id=search_id,
            searched_at=body.searched_at,
            unit=body.unit,
            geometry=body.geometry,
            sweep_width_km=body.sweep_width_km,
            track_spacing_km=body.track_spacing_km,
            pod=body.pod,
        )
    assert body.plan_id is not None and body.unit is not None  # checked by SearchCreate
    plan = await uow.plans.get(body.plan_id)
    if plan is None or plan.mission_id != mission.id or plan.result is None:
        raise RequestRejected(
            [("plan_id", "no completed plan with this id for this mission", "unknown_plan")]
        )
    summary = PlanResult.model_validate(plan.result).summary
    area = next((a for a in summary.areas if a.unit == body.unit), None)
    if area is None:
        raise RequestRejected(
            [("unit", f"plan {plan.id} has no area for this unit", "unknown_unit")]
        )
    return SearchRecord(
        id=search_id,
        searched_at=body.searched_at,
        unit=body.unit,
        geometry=SearchGeometry(type="Polygon", coordinates=[[*area.corners, area.corners[0]]]),
        sweep_width_km=area.sweep_width_km,
        track_spacing_km=area.track_spacing_km,
        # As planned: the plan's POD (effort over area), unless the unit reports its own.
        pod=body.pod if body.pod is not None else min(area.pod, 0.999999),
    )


def search_public(search: MissionSearch) -> SearchPublic:
    record = SearchRecord.model_validate(search.record)
    return SearchPublic(
        id=search.id,
        mission_id=search.mission_id,
        searched_at=record.searched_at,
        unit=record.unit,
        geometry=record.geometry,
        sweep_width_km=record.sweep_width_km,
        track_spacing_km=record.track_spacing_km,
        pod=record.pod,
        plan_id=search.plan_id,
        map_update_plan_id=search.map_update_plan_id,
        created_at=search.created_at,
    )


def plan_public(plan: SearchPlan, base_url: str) -> PlanPublic:
    result = PlanResult.model_validate(plan.result) if plan.result else None
    failure = None
    if plan.failure_reason:
        failure = f"{plan.failure_reason}: {plan.failure_detail or ''}"
    elif plan.status == PlanStatus.HELD.value:
        failure = plan.failure_detail
    return PlanPublic(
        id=plan.id,
        mission_id=plan.mission_id,
        status=PlanStatus(plan.status),
        request=PlanCreate.model_validate(plan.request),
        created_at=plan.created_at,
        completed_at=plan.completed_at,
        failure=failure,
        summary=result.summary if result else None,
        artifacts=[
            PlanArtifact.model_validate(a.model_dump(exclude={"key"}))
            for a in (result.artifacts if result else [])
        ],
        links=plan_links(base_url, plan.mission_id, plan.id),
    )


# -- the plan stage's effects ---------------------------------------------------------------


class PlanEffects(ExactlyOnce):
    """Exactly-once effects of the plan stage: the plan row's result, the processed-event
    claim and the `plan.completed` event commit in one transaction. The mission (already
    completed) is read, never changed; a failure or a hold is the plan's, not the
    mission's."""

    def __init__(self, stage: str, group: str, database: Database, run: BoundStage) -> None:
        super().__init__(stage, group, database, run)
        self._plan_stage = stage
        self._plan_group = group
        self._plan_db = database
        self._plan_run = run

    async def apply(self, envelope: Envelope[EventData]) -> None:
        if not await self._needs_plan(envelope):
            return
        outcome = await self._plan_run(envelope)
        async with self._plan_db.unit_of_work() as uow:
            if not await uow.processed.claim(self._plan_group, envelope.id):
                return  # another consumer committed it first
            plan = await uow.plans.get(_plan_id(envelope), lock=True)
            if plan is None or plan.status in FINISHED:
                return
            for data in outcome.emits:
                uow.publish(follow(data, cause=envelope, stage=self._plan_stage))
                if isinstance(data, PlanCompletedV1):
                    _complete(plan, data, envelope.data.tenant)

    async def _needs_plan(self, envelope: Envelope[EventData]) -> bool:
        async with self._plan_db.unit_of_work() as uow:
            if await uow.processed.contains(self._plan_group, envelope.id):
                return False
            plan = await uow.plans.get(_plan_id(envelope))
            if plan is None:
                raise PermanentError("unknown_plan", f"plan {_plan_id(envelope)} does not exist")
            if plan.status not in FINISHED:
                return True
            await uow.processed.claim(self._plan_group, envelope.id)
        return False

    async def fail(self, envelope: Envelope[EventData], exc: PermanentError) -> None:
        async with self._plan_db.unit_of_work() as uow:
            if not await uow.processed.claim(self._plan_group, envelope.id):
                return
            plan = await uow.plans.get(_plan_id(envelope), lock=True)
            if plan is None or plan.status in FINISHED:
                return
            plan.status = PlanStatus.FAILED.value
            plan.failure_reason = exc.reason
            plan.failure_detail = exc.detail
            plan.completed_at = utcnow()
        log.info("plan.failed", plan=str(_plan_id(envelope)), reason=exc.reason)

    async def hold(self, envelope: Envelope[EventData], why: str) -> None:
        async with self._plan_db.unit_of_work() as uow:
            plan = await uow.plans.get(_plan_id(envelope), lock=True)
            if plan is None or plan.status in FINISHED:
                return
            plan.status = PlanStatus.HELD.value
            plan.failure_detail = why


def _plan_id(envelope: Envelope[EventData]) -> uuid.UUID:
    data = envelope.data
    if not isinstance(data, PlanRequestedV1):
        raise PermanentError("not_a_plan", f"the plan stage cannot apply {envelope.type}")
    return data.plan_id


def _complete(plan: SearchPlan, completed: PlanCompletedV1, tenant: str) -> None:
    prefix = plan_prefix(tenant, plan.mission_id, plan.id)
    result = PlanResult(
        summary=PlanSummary.model_validate(completed.summary.model_dump()),
        artifacts=[
            StoredPlanArtifact(**a.model_dump(), key=prefix + a.name) for a in completed.artifacts
        ],
    )
    plan.status = PlanStatus.COMPLETED.value
    plan.result = result.model_dump(mode="json")
    plan.completed_at = completed.completed_at
