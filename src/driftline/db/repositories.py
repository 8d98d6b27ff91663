"""Repositories: the queries of each table, behind the unit of work (`uow.missions`, ...).

Callers never touch the SQLAlchemy session; every statement Driftline runs lives here,
so a schema change has one place to land and the unit of work can map database errors
at a single boundary.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from driftline.contracts.envelope import Envelope
from driftline.db.models import (
    ApiKey,
    DeadLetterReplay,
    IdempotencyKey,
    Mission,
    MissionStatusChange,
    OutboxRecord,
    ProcessedEvent,
    Tenant,
    WebhookDelivery,
)


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
        self._session.add(
            OutboxRecord(
                topic=topic,
                key=envelope.subject,
                event_id=envelope.id,
                headers={k: v.decode() for k, v in envelope.headers()},
                payload=envelope.value().decode(),
            )
        )

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

    async def drop_stale_claim(self, tenant: str, key: str, older_than: datetime) -> None:
        """An in-flight claim whose request died long ago is released."""
        await self._session.execute(
            delete(IdempotencyKey).where(
                IdempotencyKey.tenant == tenant,
                IdempotencyKey.key == key,
                IdempotencyKey.state == "in_flight",
                IdempotencyKey.created_at < older_than,
            )
        )

    async def claim(self, tenant: str, key: str, request_hash: str) -> bool:
        """Claim `key` for a request in flight; False if someone holds or answered it."""
        stmt = (
            insert(IdempotencyKey)
            .values(tenant=tenant, key=key, request_hash=request_hash, state="in_flight")
            .on_conflict_do_nothing()
            .returning(IdempotencyKey.key)
        )
        return (await self._session.execute(stmt)).first() is not None

    async def get(self, tenant: str, key: str) -> IdempotencyKey | None:
        return await self._session.get(IdempotencyKey, (tenant, key))

    async def complete(
        self, tenant: str, key: str, *, mission_id: uuid.UUID, status: int, body: dict[str, Any]
    ) -> None:
        await self._session.execute(
            update(IdempotencyKey)
            .where(IdempotencyKey.tenant == tenant, IdempotencyKey.key == key)
            .values(state="done", mission_id=mission_id, response_status=status, response_body=body)
        )


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


class WebhookDeliveryRepository(_Repository):
    """The outcome of each mission's signed callback."""

    async def record(self, delivery: WebhookDelivery) -> None:
        """Insert or replace (a redelivered event re-sends under the same webhook id)."""
        await self._session.merge(delivery)

    async def get(self, webhook_id: str) -> WebhookDelivery | None:
        return await self._session.get(WebhookDelivery, webhook_id)


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
