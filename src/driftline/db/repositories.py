"""Repositories: the queries of each table, behind the unit of work (`uow.missions`, ...).

Callers never touch the SQLAlchemy session; every statement Driftline runs lives here,
so a schema change has one place to land and the unit of work can map database errors
at a single boundary.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Table,
    and_,
    bindparam,
    delete,
    func,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from driftline.contracts.envelope import Envelope
from driftline.contracts.missions import MissionStatus
from driftline.db.models import (
    ApiKey,
    DeadLetterReplay,
    DeliveryState,
    IdempotencyKey,
    Mission,
    MissionSearch,
    MissionStatusChange,
    OutboxRecord,
    ProcessedEvent,
    SearchPlan,
    SimulationShard,
    Tenant,
    WebhookAttempt,
    WebhookDelivery,
)
from driftline.errors import IdempotencyConflict

#: The tables the bulk statements write (Core: no ORM objects on the hot path).
_MISSIONS = cast(Table, Mission.__table__)
_STATUS_CHANGES = cast(Table, MissionStatusChange.__table__)
_OUTBOX = cast(Table, OutboxRecord.__table__)
_IDEMPOTENCY_KEYS = cast(Table, IdempotencyKey.__table__)
_PROCESSED = cast(Table, ProcessedEvent.__table__)


@dataclass
class MissionState:
    """What a status change reads of a locked mission row."""

    tenant: str
    status: str
    progress: float


@dataclass(frozen=True)
class PendingEvent:
    """An outbox row waiting for the relay."""

    id: int
    topic: str
    key: str
    headers: dict[str, str]
    payload: str


def outbox_row(topic: str, envelope: Envelope[Any]) -> dict[str, Any]:
    """The outbox columns of one event."""
    return {
        "topic": topic,
        "key": envelope.key.decode(),
        "event_id": envelope.id,
        "headers": {k: v.decode() for k, v in envelope.headers()},
        "payload": envelope.value().decode(),
    }


class _Repository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session


class MissionRepository(_Repository):
    """Mission rows and their status history."""

    def add(self, mission: Mission) -> None:
        self._session.add(mission)

    async def flush(self) -> None:
        """Send pending inserts now (rows that reference the mission need it first)."""
        await self._session.flush()

    async def get(self, mission_id: uuid.UUID, *, lock: bool = False) -> Mission | None:
        stmt = select(Mission).where(Mission.id == mission_id)
        if lock:
            stmt = stmt.with_for_update()
        return (await self._session.execute(stmt)).scalar_one_or_none()

    async def get_many(
        self, mission_ids: Iterable[uuid.UUID], *, lock: bool = False
    ) -> dict[uuid.UUID, Mission]:
        """Several missions in one statement; locked in id order, so two transactions
        locking overlapping sets never deadlock."""
        ids = sorted(set(mission_ids))
        if not ids:
            return {}
        stmt = select(Mission).where(Mission.id.in_(ids)).order_by(Mission.id)
        if lock:
            stmt = stmt.with_for_update()
        return {m.id: m for m in (await self._session.execute(stmt)).scalars().all()}

    async def lock_states(self, mission_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, MissionState]:
        """Lock several missions (in id order: no deadlock between overlapping sets) and
        read what a status change needs, without loading the rows' documents."""
        ids = sorted(set(mission_ids))
        if not ids:
            return {}
        stmt = (
            select(Mission.id, Mission.tenant, Mission.status, Mission.progress)
            .where(Mission.id.in_(ids))
            .order_by(Mission.id)
            .with_for_update()
        )
        rows = (await self._session.execute(stmt)).tuples()
        return {
            mid: MissionState(tenant, status, progress) for mid, tenant, status, progress in rows
        }

    async def update_states(self, changes: list[dict[str, Any]]) -> None:
        """Several missions' status columns in one prepared statement (executemany); each
        dict has `mission_id`, `status`, `stage`, `progress`, `detail`, `at`, and, for some,
        `result` and `completed_at` (grouped by shape, one statement per shape)."""
        table = _MISSIONS
        columns = {
            "status": "status",
            "stage": "stage",
            "progress": "progress",
            "detail": "status_detail",
            "at": "updated_at",
            "result": "result",
            "completed_at": "completed_at",
        }
        shapes: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for change in changes:
            shapes.setdefault(tuple(sorted(change)), []).append(change)
        for shape, rows in shapes.items():
            values = {
                columns[name]: bindparam(f"new_{name}", type_=table.c[columns[name]].type)
                for name in shape
                if name != "mission_id"
            }
            stmt = update(table).where(table.c.id == bindparam("the_id")).values(values)
            params = [
                {("the_id" if k == "mission_id" else f"new_{k}"): v for k, v in row.items()}
                for row in rows
            ]
            await self._session.execute(stmt, params)

    async def record_changes(self, changes: list[dict[str, Any]]) -> None:
        """Status history rows, in one statement."""
        if changes:
            await self._session.execute(insert(_STATUS_CHANGES), changes)

    async def statuses(self, mission_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
        """The status of each mission that exists (one statement, no row loaded)."""
        ids = list(set(mission_ids))
        if not ids:
            return {}
        stmt = select(Mission.id, Mission.status).where(Mission.id.in_(ids))
        return {mid: status for mid, status in (await self._session.execute(stmt)).tuples()}

    async def owned(
        self, tenant: str, mission_id: uuid.UUID, *, lock: bool = False
    ) -> Mission | None:
        """The mission if `tenant` owns it; another tenant's mission is simply not there."""
        mission = await self.get(mission_id, lock=lock)
        return mission if mission is not None and mission.tenant == tenant else None

    async def page(
        self,
        *,
        tenant: str | None,
        limit: int,
        status: str | None = None,
        before: tuple[datetime, uuid.UUID] | None = None,
    ) -> list[Mission]:
        """Newest first; `before` is the (created_at, id) of the last row already seen."""
        stmt = select(Mission)
        if tenant is not None:
            stmt = stmt.where(Mission.tenant == tenant)
        if status:
            stmt = stmt.where(Mission.status == status)
        if before is not None:
            created, mid = before
            stmt = stmt.where(
                or_(
                    Mission.created_at < created,
                    and_(Mission.created_at == created, Mission.id < mid),
                )
            )
        stmt = stmt.order_by(Mission.created_at.desc(), Mission.id.desc()).limit(limit)
        return list((await self._session.execute(stmt)).scalars().all())

    def record_change(self, change: MissionStatusChange) -> None:
        self._session.add(change)

    async def changes_after(
        self, mission_id: uuid.UUID, after_id: int
    ) -> list[MissionStatusChange]:
        stmt = (
            select(MissionStatusChange)
            .where(MissionStatusChange.mission_id == mission_id, MissionStatusChange.id > after_id)
            .order_by(MissionStatusChange.id)
        )
        return list((await self._session.execute(stmt)).scalars().all())

    async def count(self) -> int:
        return int((await self._session.execute(select(func.count(Mission.id)))).scalar_one())

    async def count_by_status(self) -> dict[str, int]:
        stmt = select(Mission.status, func.count()).group_by(Mission.status)
        return {status: int(n) for status, n in (await self._session.execute(stmt)).all()}


class OutboxRepository(_Repository):
    """Events waiting for the relay, in commit order."""

    def add(self, topic: str, envelope: Envelope[Any]) -> None:
        self._session.add(OutboxRecord(**outbox_row(topic, envelope)))

    async def add_many(self, events: list[tuple[str, Envelope[Any]]]) -> None:
        """Several (topic, event) rows in one statement, in list order (so in id order)."""
        if events:
            await self._session.execute(insert(_OUTBOX), [outbox_row(t, e) for t, e in events])

    async def next_batch(self, limit: int) -> list[OutboxRecord]:
        """The oldest unpublished rows, locked for this transaction (others skip them)."""
        stmt = (
            select(OutboxRecord)
            .where(OutboxRecord.published_at.is_(None))
            .order_by(OutboxRecord.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return list((await self._session.execute(stmt)).scalars().all())

    async def unpublished(self, limit: int, *, after: int | None = None) -> list[PendingEvent]:
        """The oldest unpublished rows (past id `after`), as plain values, unlocked: the
        one relay holding the advisory lock is the only publisher."""
        stmt = select(
            OutboxRecord.id,
            OutboxRecord.topic,
            OutboxRecord.key,
            OutboxRecord.headers,
            OutboxRecord.payload,
        ).where(OutboxRecord.published_at.is_(None))
        if after is not None:
            stmt = stmt.where(OutboxRecord.id > after)
        stmt = stmt.order_by(OutboxRecord.id).limit(limit)
        return [PendingEvent(*row) for row in (await self._session.execute(stmt)).tuples()]

    async def mark_published(self, ids: list[int], at: datetime) -> None:
        await self._session.execute(
            update(OutboxRecord).where(OutboxRecord.id.in_(ids)).values(published_at=at)
        )

    async def backlog(self) -> int:
        stmt = select(func.count()).select_from(OutboxRecord)
        stmt = stmt.where(OutboxRecord.published_at.is_(None))
        return int((await self._session.execute(stmt)).scalar_one())

    async def count(self, *, key: str | None = None, topic: str | None = None) -> int:
        """How many rows (published or not) match; for operators and tests."""
        stmt = select(func.count()).select_from(OutboxRecord)
        if key is not None:
            stmt = stmt.where(OutboxRecord.key == key)
        if topic is not None:
            stmt = stmt.where(OutboxRecord.topic == topic)
        return int((await self._session.execute(stmt)).scalar_one())

    async def topics(self) -> list[str]:
        return list((await self._session.execute(select(OutboxRecord.topic))).scalars().all())


class ProcessedEventRepository(_Repository):
    """The event ids each consumer group has applied: what makes redelivery a no-op."""

    async def claim(self, consumer_group: str, event_id: uuid.UUID) -> bool:
        """Record that `consumer_group` applied `event_id`; False if it already had."""
        stmt = (
            insert(ProcessedEvent)
            .values(consumer_group=consumer_group, event_id=event_id)
            .on_conflict_do_nothing()
            .returning(ProcessedEvent.event_id)
        )
        return (await self._session.execute(stmt)).first() is not None

    async def claim_many(
        self, consumer_group: str, event_ids: Iterable[uuid.UUID]
    ) -> set[uuid.UUID]:
        """Claim several event ids in one statement; returns those newly claimed. Sorted,
        so two transactions claiming overlapping sets wait for each other in the same
        order instead of deadlocking."""
        ids = sorted(set(event_ids))
        if not ids:
            return set()
        stmt = (
            insert(_PROCESSED)
            .values([{"consumer_group": consumer_group, "event_id": e} for e in ids])
            .on_conflict_do_nothing()
            .returning(_PROCESSED.c.event_id)
        )
        return set((await self._session.execute(stmt)).scalars().all())

    async def applied(self, consumer_group: str, event_ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
        """Those of `event_ids` that `consumer_group` has applied already."""
        ids = list(set(event_ids))
        if not ids:
            return set()
        stmt = select(ProcessedEvent.event_id).where(
            ProcessedEvent.consumer_group == consumer_group, ProcessedEvent.event_id.in_(ids)
        )
        return set((await self._session.execute(stmt)).scalars().all())

    async def contains(self, consumer_group: str, event_id: uuid.UUID) -> bool:
        stmt = select(ProcessedEvent.event_id).where(
            ProcessedEvent.consumer_group == consumer_group, ProcessedEvent.event_id == event_id
        )
        return (await self._session.execute(stmt)).first() is not None

    async def count(self, consumer_group: str) -> int:
        stmt = select(func.count()).select_from(ProcessedEvent)
        stmt = stmt.where(ProcessedEvent.consumer_group == consumer_group)
        return int((await self._session.execute(stmt)).scalar_one())


class IdempotencyRepository(_Repository):
    """First answers given under an Idempotency-Key, per tenant."""

    async def claim(
        self,
        tenant: str,
        key: str,
        request_hash: str,
        *,
        mission_id: uuid.UUID,
        status: int,
        body: dict[str, Any],
    ) -> bool:
        """Record `key`'s answer (committed with the mission); False if it was answered
        already. While another transaction holds the key (its request is in flight) this
        raises IdempotencyConflict: the transaction-scoped advisory lock says so without
        waiting, and goes with that transaction however it ends, a crash included."""
        lock = select(func.pg_try_advisory_xact_lock(func.hashtextextended(f"{tenant}/{key}", 0)))
        if not (await self._session.execute(lock)).scalar_one():
            raise IdempotencyConflict(key)
        stmt = (
            insert(_IDEMPOTENCY_KEYS)
            .values(
                tenant=tenant,
                key=key,
                request_hash=request_hash,
                state="done",
                mission_id=mission_id,
                response_status=status,
                response_body=body,
            )
            .on_conflict_do_nothing()
            .returning(_IDEMPOTENCY_KEYS.c.key)
        )
        return (await self._session.execute(stmt)).first() is not None

    async def get(self, tenant: str, key: str) -> IdempotencyKey | None:
        return await self._session.get(IdempotencyKey, (tenant, key))


class TenantRepository(_Repository):
    """Tenants, their hashed API keys and webhook signing secrets."""

    async def ensure(self, name: str, webhook_secret: str) -> None:
        """Create the tenant unless it exists (its secret then stays as it was)."""
        await self._session.execute(
            insert(Tenant).values(name=name, webhook_secret=webhook_secret).on_conflict_do_nothing()
        )

    def add_key(self, tenant: str, key_hash: str, label: str | None) -> None:
        self._session.add(ApiKey(id=uuid.uuid4(), tenant=tenant, key_hash=key_hash, label=label))

    async def tenant_for_key(self, key_hash: str) -> str | None:
        stmt = select(ApiKey.tenant).where(ApiKey.key_hash == key_hash, ApiKey.revoked_at.is_(None))
        return (await self._session.execute(stmt)).scalar_one_or_none()

    async def webhook_secret(self, tenant: str) -> str | None:
        stmt = select(Tenant.webhook_secret).where(Tenant.name == tenant)
        return (await self._session.execute(stmt)).scalar_one_or_none()

    async def caller_for_key(self, key_hash: str) -> tuple[str, uuid.UUID] | None:
        """(tenant, key id) of an unrevoked key; read on every request, never cached,
        so a revocation answers 401 at once."""
        stmt = select(ApiKey.tenant, ApiKey.id).where(
            ApiKey.key_hash == key_hash, ApiKey.revoked_at.is_(None)
        )
        row = (await self._session.execute(stmt)).first()
        return (row[0], row[1]) if row is not None else None

    async def keys(self, tenant: str | None = None) -> list[ApiKey]:
        """Every key (revoked ones too), oldest first; only hashes are stored."""
        stmt = select(ApiKey).order_by(ApiKey.created_at, ApiKey.id)
        if tenant is not None:
            stmt = stmt.where(ApiKey.tenant == tenant)
        return list((await self._session.execute(stmt)).scalars().all())

    async def revoke_key(self, key_id: uuid.UUID, at: datetime) -> ApiKey | None:
        """Mark the key revoked (kept for the audit trail); None if there is no such key.
        Revoking twice keeps the first time."""
        key = await self._session.get(ApiKey, key_id, with_for_update=True)
        if key is not None and key.revoked_at is None:
            key.revoked_at = at
        return key


@dataclass(frozen=True)
class DueDelivery:
    """A webhook delivery claimed for one attempt, with the tenant's signing secret."""

    delivery: WebhookDelivery
    secret: str | None
    lease_until: datetime  # the claim: the attempt must be recorded before then
    traceparent: str | None = None  # the mission's, so attempts join its trace


class WebhookDeliveryRepository(_Repository):
    """Webhook deliveries (one per webhook id) and the record of every attempt."""

    async def enqueue(
        self, *, webhook_id: str, mission_id: uuid.UUID, url: str, payload: str, due: datetime
    ) -> bool:
        """Schedule a delivery; False if that webhook id was scheduled already (a stage
        that ran twice keeps the first body, so every attempt sends the same bytes)."""
        stmt = (
            insert(WebhookDelivery)
            .values(
                webhook_id=webhook_id,
                mission_id=mission_id,
                url=url,
                payload=payload,
                state=DeliveryState.PENDING,
                next_attempt_at=due,
            )
            .on_conflict_do_nothing()
            .returning(WebhookDelivery.webhook_id)
        )
        return (await self._session.execute(stmt)).first() is not None

    async def claim_due(
        self, now: datetime, lease_until: datetime, limit: int
    ) -> list[DueDelivery]:
        """Pending deliveries due by `now` whose mission's completion is committed, locked
        against other dispatchers (SKIP LOCKED) and leased until `lease_until`."""
        return await self._claim(WebhookDelivery.next_attempt_at <= now, lease_until, limit)

    async def claim(self, webhook_id: str, lease_until: datetime) -> DueDelivery | None:
        """One pending delivery, due or not, unless another dispatcher holds it."""
        claimed = await self._claim(WebhookDelivery.webhook_id == webhook_id, lease_until, 1)
        return claimed[0] if claimed else None

    async def _claim(
        self, which: ColumnElement[bool], lease_until: datetime, limit: int
    ) -> list[DueDelivery]:
        # A delivery announces a completion: it waits until that completion is committed
        # (the notify stage schedules it just before the runner commits the outcome).
        stmt = (
            select(WebhookDelivery, Tenant.webhook_secret, Mission.traceparent)
            .join(Mission, Mission.id == WebhookDelivery.mission_id)
            .outerjoin(Tenant, Tenant.name == Mission.tenant)
            .where(
                which,
                WebhookDelivery.state == DeliveryState.PENDING,
                WebhookDelivery.payload.is_not(None),
                Mission.status == MissionStatus.COMPLETED,
            )
            .order_by(WebhookDelivery.next_attempt_at)
            .limit(limit)
            .with_for_update(of=WebhookDelivery, skip_locked=True)
        )
        claimed = []
        for delivery, secret, traceparent in (await self._session.execute(stmt)).tuples():
            delivery.next_attempt_at = lease_until
            claimed.append(DueDelivery(delivery, secret, lease_until, traceparent))
        return claimed

    async def abandon_unannounced(self, now: datetime) -> int:
        """Fail pending deliveries whose mission ended without completing (cancelled
        while its notify stage ran): there is no completion to announce."""
        ended = select(Mission.id).where(
            Mission.status.in_([MissionStatus.FAILED, MissionStatus.CANCELLED])
        )
        result = await self._session.execute(
            update(WebhookDelivery)
            .where(
                WebhookDelivery.state == DeliveryState.PENDING,
                WebhookDelivery.mission_id.in_(ended),
            )
            .values(
                state=DeliveryState.FAILED,
                next_attempt_at=None,
                last_error="the mission ended without completing; nothing to announce",
                updated_at=now,
            )
        )
        return int(getattr(result, "rowcount", 0) or 0)

    async def record_attempt(
        self,
        due: DueDelivery,
        attempt: WebhookAttempt,
        *,
        state: DeliveryState,
        next_attempt_at: datetime | None,
    ) -> None:
        """Store `attempt` and move the delivery on, unless an operator restarted it while
        the attempt was in flight (then only the attempt and the counters are kept)."""
        self._session.add(attempt)
        webhook = WebhookDelivery.webhook_id == due.delivery.webhook_id
        await self._session.execute(
            update(WebhookDelivery)
            .where(webhook)
            .values(
                attempts=WebhookDelivery.attempts + 1,
                last_status=attempt.status_code,
                last_error=attempt.error,
                updated_at=attempt.at,
            )
        )
        await self._session.execute(
            update(WebhookDelivery)
            .where(
                webhook,
                WebhookDelivery.state == DeliveryState.PENDING,
                WebhookDelivery.next_attempt_at == due.lease_until,
            )
            .values(
                state=state,
                schedule_step=WebhookDelivery.schedule_step + 1,
                next_attempt_at=next_attempt_at,
                delivered_at=attempt.at if state == DeliveryState.DELIVERED else None,
            )
        )

    async def restart(self, webhook_id: str, now: datetime) -> WebhookDelivery | None:
        """A new round of the schedule, first attempt due `now`, same webhook id."""
        delivery = await self._session.get(WebhookDelivery, webhook_id, with_for_update=True)
        if delivery is None or delivery.payload is None:
            return delivery  # a row older than 0003 kept no body: nothing to resend
        delivery.state = DeliveryState.PENDING
        delivery.schedule_step = 0
        delivery.next_attempt_at = now
        delivery.updated_at = now
        return delivery

    async def get(self, webhook_id: str) -> WebhookDelivery | None:
        return await self._session.get(WebhookDelivery, webhook_id)

    async def listing(
        self, *, mission_id: uuid.UUID | None = None, failed: bool = False, limit: int = 100
    ) -> list[WebhookDelivery]:
        """Newest first; `failed`: only those that will not be tried again."""
        stmt = select(WebhookDelivery)
        if mission_id is not None:
            stmt = stmt.where(WebhookDelivery.mission_id == mission_id)
        if failed:
            stmt = stmt.where(WebhookDelivery.state == DeliveryState.FAILED)
        stmt = stmt.order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.webhook_id)
        return list((await self._session.execute(stmt.limit(limit))).scalars().all())

    async def attempts(self, webhook_id: str) -> list[WebhookAttempt]:
        stmt = (
            select(WebhookAttempt)
            .where(WebhookAttempt.webhook_id == webhook_id)
            .order_by(WebhookAttempt.number, WebhookAttempt.id)
        )
        return list((await self._session.execute(stmt)).scalars().all())


class DeadLetterReplayRepository(_Repository):
    """Dead letters already replayed, so a second replay skips them."""

    async def replayed(self) -> set[tuple[str, int, int]]:
        rows = (await self._session.execute(select(DeadLetterReplay))).scalars()
        return {(r.dlq_topic, r.dlq_partition, r.dlq_offset) for r in rows}

    async def record(self, topic: str, partition: int, offset: int, event_id: str | None) -> None:
        await self._session.execute(
            insert(DeadLetterReplay)
            .values(dlq_topic=topic, dlq_partition=partition, dlq_offset=offset, event_id=event_id)
            .on_conflict_do_nothing()
        )


class LockRepository(_Repository):
    """Transaction-scoped advisory locks, for work several processes must do only once."""

    async def hold(self, name: str) -> None:
        """Wait for the lock on `name`; it is released when the transaction ends."""
        await self._session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": name})

    async def try_hold(self, name: str) -> bool:
        """Take the lock on `name` if free (False at once if another transaction holds it)."""
        found = await self._session.execute(
            text("SELECT pg_try_advisory_xact_lock(hashtext(:k))"), {"k": name}
        )
        return bool(found.scalar_one())


#: Tables the housekeeping loop prunes: (time column, extra condition). Rows still needed
#: (unpublished outbox rows, pending webhook deliveries) never match.
PRUNABLE: dict[str, tuple[str, str]] = {
    "outbox": ("published_at", "published_at IS NOT NULL"),
    "processed_events": ("processed_at", "TRUE"),
    "idempotency_keys": ("created_at", "state = 'done'"),
    "mission_status_changes": ("at", "TRUE"),
    "webhook_deliveries": ("updated_at", "state <> 'pending'"),
}


class RetentionRepository(_Repository):
    """Deletes rows past their retention in small batches (short locks, no long scans)."""

    async def prune(self, table: str, older_than: datetime, batch: int) -> int:
        column, keep = PRUNABLE[table]  # names from the fixed table above, never from input
        result = await self._session.execute(
            text(
                f"DELETE FROM {table} WHERE ctid = ANY(ARRAY("
                f"SELECT ctid FROM {table} WHERE {keep} AND {column} < :cutoff LIMIT :batch))"
            ),
            {"cutoff": older_than, "batch": batch},
        )
        return int(getattr(result, "rowcount", 0) or 0)

    async def oldest(self, table: str) -> datetime | None:
        column, _keep = PRUNABLE[table]
        found = await self._session.execute(text(f"SELECT min({column}) FROM {table}"))
        value = found.scalar_one_or_none()
        return value if isinstance(value, datetime) else None

    async def size(self, table: str) -> int:
        """Rows in `table` (exact count; for soak runs and operators)."""
        found = await self._session.execute(text(f"SELECT count(*) FROM {table}"))
        return int(found.scalar_one())


class PlanRepository(_Repository):
    """Search plans of a mission, newest first."""

    def add(self, plan: SearchPlan) -> None:
        self._session.add(plan)

    async def get(self, plan_id: uuid.UUID, *, lock: bool = False) -> SearchPlan | None:
        stmt = select(SearchPlan).where(SearchPlan.id == plan_id)
        if lock:
            stmt = stmt.with_for_update()
        return (await self._session.execute(stmt)).scalar_one_or_none()

    async def for_mission(self, mission_id: uuid.UUID, limit: int = 100) -> list[SearchPlan]:
        stmt = (
            select(SearchPlan)
            .where(SearchPlan.mission_id == mission_id)
            .order_by(SearchPlan.created_at.desc(), SearchPlan.id)
            .limit(limit)
        )
        return list((await self._session.execute(stmt)).scalars().all())


class SearchRepository(_Repository):
    """Searches recorded for a mission (nothing found), in the order they were made."""

    def add(self, search: MissionSearch) -> None:
        self._session.add(search)

    async def for_mission(self, mission_id: uuid.UUID) -> list[MissionSearch]:
        stmt = (
            select(MissionSearch)
            .where(MissionSearch.mission_id == mission_id)
            .order_by(MissionSearch.searched_at, MissionSearch.created_at, MissionSearch.id)
        )
        return list((await self._session.execute(stmt)).scalars().all())


class ShardRepository(_Repository):
    """Simulated shards of huge missions, until postprocess merges them."""

    async def record_many(self, rows: list[dict[str, Any]]) -> None:
        """Insert shard rows (`mission_id`, `shard_index`, `shard_count`, `completion`);
        a shard already recorded stays as it was."""
        if rows:
            await self._session.execute(insert(SimulationShard).on_conflict_do_nothing(), rows)

    async def for_mission(self, mission_id: uuid.UUID) -> list[SimulationShard]:
        stmt = (
            select(SimulationShard)
            .where(SimulationShard.mission_id == mission_id)
            .order_by(SimulationShard.shard_index)
        )
        return list((await self._session.execute(stmt)).scalars().all())

    async def forget(self, mission_ids: Iterable[uuid.UUID]) -> None:
        ids = list(mission_ids)
        if ids:
            await self._session.execute(
                delete(SimulationShard).where(SimulationShard.mission_id.in_(ids))
            )
