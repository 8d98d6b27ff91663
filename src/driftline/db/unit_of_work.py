"""Engine, sessions and the unit of work: one transaction around each effect."""

from __future__ import annotations

import uuid
from datetime import datetime
from types import TracebackType
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from driftline.contracts.envelope import Envelope, follow, stage_source
from driftline.contracts.events import EventData, MissionFailedV1, MissionStatusV1
from driftline.contracts.missions import STAGE_PROGRESS, MissionStatus, utcnow
from driftline.contracts.topics import topic
from driftline.db.models import Mission, MissionStatusChange, OutboxRecord, ProcessedEvent
from driftline.errors import TransientError
from driftline.settings import Settings

#: Errors meaning "the database is not there right now", mapped to TransientError.
DB_UNAVAILABLE = (OperationalError, InterfaceError, OSError, ConnectionError)


def create_engine(settings: Settings) -> AsyncEngine:
    """The process's one engine; pre-ping so a restarted PostgreSQL is survived."""
    return create_async_engine(
        settings.database_url, pool_pre_ping=True, pool_size=10, max_overflow=10
    )


class DatabaseUnavailable(TransientError):
    """PostgreSQL did not answer."""


class UnitOfWork:
    """A transaction plus the operations stages and the API perform inside it."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], topic_prefix: str) -> None:
        self._sessions = sessions
        self._prefix = topic_prefix
        self.session: AsyncSession

    async def __aenter__(self) -> UnitOfWork:
        self.session = self._sessions()
        await self.session.begin()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if exc_type is None:
                await self.session.commit()
            else:
                await self.session.rollback()
        except DB_UNAVAILABLE as db_exc:
            raise DatabaseUnavailable(f"database unavailable: {db_exc}") from db_exc
        except DBAPIError as db_exc:
            if db_exc.connection_invalidated:
                raise DatabaseUnavailable(f"database connection lost: {db_exc}") from db_exc
            raise
        finally:
            await self.session.close()

    # -- events -------------------------------------------------------------------------

    async def claim_event(self, consumer_group: str, event_id: uuid.UUID) -> bool:
        """Record that `consumer_group` applied `event_id`; False if it already had."""
        stmt = (
            insert(ProcessedEvent)
            .values(consumer_group=consumer_group, event_id=event_id)
            .on_conflict_do_nothing()
            .returning(ProcessedEvent.event_id)
        )
        return (await self.session.execute(stmt)).first() is not None

    async def was_processed(self, consumer_group: str, event_id: uuid.UUID) -> bool:
        stmt = select(ProcessedEvent.event_id).where(
            ProcessedEvent.consumer_group == consumer_group, ProcessedEvent.event_id == event_id
        )
        return (await self.session.execute(stmt)).first() is not None

    def publish(self, envelope: Envelope[Any]) -> None:
        """Queue an event in the outbox; the relay publishes it after commit."""
        self.session.add(
            OutboxRecord(
                topic=topic(self._prefix, envelope.data.topic),
                key=envelope.subject,
                event_id=envelope.id,
                headers={k: v.decode() for k, v in envelope.headers()},
                payload=envelope.value().decode(),
            )
        )

    # -- missions -----------------------------------------------------------------------

    async def get_mission(self, mission_id: uuid.UUID, *, lock: bool = False) -> Mission | None:
        stmt = select(Mission).where(Mission.id == mission_id)
        if lock:
            stmt = stmt.with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def change_status(
        self,
        mission: Mission,
        status: MissionStatus,
        *,
        stage: str,
        cause: Envelope[EventData] | None,
        detail: str | None = None,
        traceparent: str | None = None,
    ) -> None:
        """Move `mission` to `status`, keep its history, and publish the public status event.

        `cause` is the event that led here (a stage's input); None for changes made by
        the API, which then start from the request's `traceparent`.
        """
        now = utcnow()
        progress = STAGE_PROGRESS.get(status, mission.progress)
        mission.status = status.value
        mission.stage = stage
        mission.progress = progress
        mission.updated_at = now
        self.session.add(
            MissionStatusChange(
                mission_id=mission.id,
                status=status.value,
                stage=stage,
                progress=progress,
                detail=detail,
                at=now,
            )
        )
        data = MissionStatusV1(
            mission_id=mission.id,
            tenant=mission.tenant,
            status=status,
            stage=stage,
            progress=progress,
            detail=detail,
            at=now,
        )
        self.publish(_derive(data, cause, stage, traceparent))

    async def fail_mission(
        self,
        mission: Mission,
        *,
        stage: str,
        reason: str,
        detail: str,
        cause: Envelope[EventData] | None,
        traceparent: str | None = None,
    ) -> None:
        """End `mission` as failed with a machine reason and a sentence, publicly."""
        mission.failure_stage = stage
        mission.failure_reason = reason
        mission.failure_detail = detail
        failed = MissionFailedV1(
            mission_id=mission.id,
            tenant=mission.tenant,
            stage=stage,
            reason=reason,
            detail=detail,
            failed_at=utcnow(),
        )
        self.publish(_derive(failed, cause, stage, traceparent))
        await self.change_status(
            mission,
            MissionStatus.FAILED,
            stage=stage,
            cause=cause,
            detail=f"{reason}: {detail}",
            traceparent=traceparent,
        )

    async def outbox_backlog(self) -> int:
        stmt = (
            select(func.count())
            .select_from(OutboxRecord)
            .where(OutboxRecord.published_at.is_(None))
        )
        return int((await self.session.execute(stmt)).scalar_one())

    async def mark_published(self, ids: list[int], at: datetime) -> None:
        await self.session.execute(
            update(OutboxRecord).where(OutboxRecord.id.in_(ids)).values(published_at=at)
        )


def _derive(
    data: EventData, cause: Envelope[EventData] | None, stage: str, traceparent: str | None
) -> Envelope[EventData]:
    if cause is not None:
        return follow(data, cause=cause, stage=stage)
    if traceparent:
        return Envelope(data=data, source=stage_source(stage), traceparent=traceparent)
    return Envelope(data=data, source=stage_source(stage))


class Database:
    """The engine and a factory of units of work, created once per process."""

    def __init__(self, settings: Settings) -> None:
        self.engine = create_engine(settings)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._prefix = settings.topic_prefix

    def unit_of_work(self) -> UnitOfWork:
        return UnitOfWork(self.sessions, self._prefix)

    async def close(self) -> None:
        await self.engine.dispose()
