"""Mission use cases behind the API: screen, submit (with Idempotency-Key), read, list, cancel."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from driftline.contracts.envelope import Envelope, rfc3339, stage_source
from driftline.contracts.events import MissionRequestedV1
from driftline.contracts.missions import (
    FailureInfo,
    Link,
    MissionAccepted,
    MissionCreate,
    MissionPublic,
    MissionStatus,
    utcnow,
)
from driftline.db.models import IdempotencyKey, Mission, MissionStatusChange
from driftline.db.unit_of_work import Database, UnitOfWork
from driftline.errors import (
    IdempotencyConflict,
    IdempotencyMismatch,
    InvalidMission,
    RequestRejected,
)
from driftline.settings import Settings
from driftline.webhooks import check_callback_url

#: Checks a callback URL before a mission is accepted; raises InvalidMission to refuse it.
CallbackCheck = Callable[[str], Awaitable[None]]


def callback_check(settings: Settings) -> CallbackCheck:
    """The production check: resolve the host off the event loop, refuse internal addresses."""

    async def check(url: str) -> None:
        await asyncio.to_thread(
            check_callback_url,
            url,
            allow_private=settings.webhook_allow_private,
            allowlist=settings.webhook_allowlist,
        )

    return check


@dataclass(frozen=True)
class TimeWindow:
    """The times a mission may start or end at; anything else is a typo or an attack."""

    earliest: datetime
    latest: datetime

    @classmethod
    def of(cls, settings: Settings, now: datetime) -> TimeWindow:
        return cls(
            earliest=settings.mission_earliest_time,
            latest=now + timedelta(days=settings.mission_max_future_days),
        )

    def problems(self, body: MissionCreate) -> list[tuple[str, str, str]]:
        found = []
        for field, position in (
            ("last_known_position.time", body.last_known_position),
            ("end_position.time", body.end_position),
        ):
            if position is None:
                continue
            if not self.earliest <= position.time <= self.latest:
                found.append(
                    (
                        field,
                        f"time {rfc3339(position.time)} is outside the window Driftline "
                        f"accepts ({rfc3339(self.earliest)} to {rfc3339(self.latest)})",
                        "time_out_of_range",
                    )
                )
        return found


def too_many_particles(asked: int, limit: int) -> str:
    return (
        f"{asked:,} particles requested; this deployment allows at most {limit:,} "
        "(per tenant: DRIFTLINE_TENANT_MAX_PARTICLES)."
    )


async def screen_submission(
    body: MissionCreate,
    *,
    window: TimeWindow,
    check_callback: CallbackCheck,
    max_particles: int,
) -> None:
    """Refuse, before anything is stored, what the body's schema alone cannot judge:
    times outside the window, a callback to an internal address, more particles than
    the tenant may ask for.

    Raises RequestRejected with one entry per offending field.
    """
    problems = window.problems(body)
    if body.particles > max_particles:
        problems.append(
            ("particles", too_many_particles(body.particles, max_particles), "too_many_particles")
        )
    if body.callback_url is not None:
        try:
            await check_callback(str(body.callback_url))
        except InvalidMission as exc:
            problems.append(("callback_url", exc.detail, exc.reason))
    if problems:
        raise RequestRejected(problems)


@dataclass(frozen=True)
class Submitted:
    accepted: MissionAccepted
    replayed: bool


def mission_links(base_url: str, mission_id: uuid.UUID) -> dict[str, Link]:
    root = f"{base_url.rstrip('/')}/v1/missions/{mission_id}"
    return {
        "self": Link(href=root),
        "results": Link(href=f"{root}/results"),
        "events": Link(href=f"{root}/events"),
    }


def request_fingerprint(body: MissionCreate) -> str:
    canonical = json.dumps(body.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


async def submit_mission(
    db: Database,
    *,
    tenant: str,
    body: MissionCreate,
    traceparent: str,
    base_url: str,
    idempotency_key: str | None,
) -> Submitted:
    """The mission, its `requested` event, its first status and the key's answer: one
    transaction.

    The key's row is written first, already holding the answer, under a lock that lives
    as long as the transaction: a second request with the same key meanwhile is told
    "in flight" (409), one after the commit gets the same answer, and an API process
    killed mid-request leaves nothing behind (the retry files the mission at once).
    """
    fingerprint = request_fingerprint(body)
    mission_id = uuid.uuid4()
    now = utcnow()
    accepted = MissionAccepted(
        id=mission_id, status=MissionStatus.ACCEPTED, links=mission_links(base_url, mission_id)
    )
    async with db.unit_of_work() as uow:
        if idempotency_key is not None:
            answered = await uow.idempotency.claim(
                tenant,
                idempotency_key,
                fingerprint,
                mission_id=mission_id,
                status=202,
                body=accepted.model_dump(mode="json"),
            )
            if not answered:
                first = await uow.idempotency.get(tenant, idempotency_key)
                return Submitted(
                    accepted=_replay(first, idempotency_key, fingerprint), replayed=True
                )
        mission = Mission(
            id=mission_id,
            tenant=tenant,
            name=body.name,
            external_ref=body.external_ref,
            request=body.model_dump(mode="json"),
            status=MissionStatus.ACCEPTED.value,
            stage="api",
            progress=0.0,
            traceparent=traceparent,
            created_at=now,
            updated_at=now,
        )
        uow.missions.add(mission)
        await uow.missions.flush()
        requested = MissionRequestedV1(
            mission_id=mission_id, tenant=tenant, requested_at=now, request=body
        )
        uow.publish(Envelope(data=requested, source=stage_source("api"), traceparent=traceparent))
        await uow.change_status(
            mission, MissionStatus.ACCEPTED, stage="api", cause=None, traceparent=traceparent
        )
    return Submitted(accepted=accepted, replayed=False)


def _replay(first: IdempotencyKey | None, key: str, fingerprint: str) -> MissionAccepted:
    """The answer given to the first request with `key`, if this one is the same request."""
    if first is None or first.response_body is None:
        raise IdempotencyConflict(key)  # pruned between the insert and the read: retry
    if first.request_hash != fingerprint:
        raise IdempotencyMismatch(key)
    return MissionAccepted.model_validate(first.response_body)


def to_public(mission: Mission, base_url: str) -> MissionPublic:
    failure = None
    if mission.failure_reason:
        failure = FailureInfo(
            stage=mission.failure_stage or "",
            reason=mission.failure_reason,
            detail=mission.failure_detail or "",
        )
    return MissionPublic(
        id=mission.id,
        name=mission.name,
        external_ref=mission.external_ref,
        status=MissionStatus(mission.status),
        stage=mission.stage,
        progress=mission.progress,
        detail=mission.status_detail,
        request=mission.request,
        failure=failure,
        created_at=mission.created_at,
        updated_at=mission.updated_at,
        completed_at=mission.completed_at,
        links=mission_links(base_url, mission.id),
    )


def encode_cursor(created_at: datetime, mission_id: uuid.UUID) -> str:
    raw = f"{created_at.isoformat()}|{mission_id}"
    return base64.urlsafe_b64encode(raw.encode()).decode()


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """Raises ValueError on a cursor this API did not hand out."""
    created, mid = base64.urlsafe_b64decode(cursor.encode()).decode().split("|")
    moment = datetime.fromisoformat(created)
    if moment.tzinfo is None:
        raise ValueError("cursor time without a zone")
    return moment, uuid.UUID(mid)


async def list_missions(
    uow: UnitOfWork, tenant: str, *, limit: int, cursor: str | None, status: str | None
) -> tuple[list[Mission], str | None]:
    """The tenant's missions, newest first, one page at a time."""
    before = decode_cursor(cursor) if cursor else None
    rows = await uow.missions.page(tenant=tenant, limit=limit + 1, status=status, before=before)
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor(rows[-1].created_at, rows[-1].id)
    return rows, next_cursor


async def cancel_mission(db: Database, tenant: str, mission_id: uuid.UUID) -> Mission | None:
    """Cancel unless already final; later stages skip a cancelled mission."""
    async with db.unit_of_work() as uow:
        mission = await uow.missions.owned(tenant, mission_id, lock=True)
        if mission is None:
            return None
        if not MissionStatus(mission.status).is_final:
            await uow.change_status(
                mission,
                MissionStatus.CANCELLED,
                stage=mission.stage,
                cause=None,
                detail="cancelled by the coordinator",
                traceparent=mission.traceparent,
            )
        return mission


def status_change_payload(change: MissionStatusChange) -> dict[str, Any]:
    return {
        "status": change.status,
        "stage": change.stage,
        "progress": change.progress,
        "detail": change.detail,
        "at": change.at.isoformat(),
    }
