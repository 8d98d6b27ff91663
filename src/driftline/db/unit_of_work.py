"""Engine, sessions and the unit of work: one transaction around each effect.

The unit of work is the one boundary where PostgreSQL meets the rest of Driftline:
repositories hang off it (`uow.missions`, `uow.outbox`, ...), and any connectivity
error raised inside its block leaves it as `DatabaseUnavailable`, so the API answers
503 and the runner pauses instead of spending a record's attempts.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.exc import (
    DBAPIError,
    DisconnectionError,
    InterfaceError,
    OperationalError,
)
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from driftline.contracts.envelope import Envelope, child_traceparent, follow, stage_source
from driftline.contracts.events import EventData, MissionFailedV1, MissionStatusV1
from driftline.contracts.missions import STAGE_PROGRESS, MissionStatus, utcnow
from driftline.contracts.topics import topic
from driftline.db.models import Mission, MissionStatusChange
from driftline.db.repositories import (
    DeadLetterReplayRepository,
    IdempotencyRepository,
    LockRepository,
    MissionRepository,
    OutboxRepository,
    PlanRepository,
    ProcessedEventRepository,
    RetentionRepository,
    SearchRepository,
    ShardRepository,
    TenantRepository,
    WebhookDeliveryRepository,
)
from driftline.errors import DatabaseUnavailable
from driftline.settings import Settings

#: SQLSTATE classes meaning "not there right now": connection exception (08),
#: insufficient resources (53, e.g. too many connections), operator intervention
#: (57, e.g. the server is starting up or shutting down).
_UNAVAILABLE_SQLSTATE_CLASSES = ("08", "53", "57")


def is_unavailable(exc: BaseException) -> bool:
    """Whether `exc` says PostgreSQL cannot be reached (as opposed to a bad statement)."""
    if isinstance(exc, DatabaseUnavailable | OSError | ConnectionError | TimeoutError):
        return True
    if isinstance(exc, OperationalError | InterfaceError):
        return True
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        return _sqlstate(exc.orig).startswith(_UNAVAILABLE_SQLSTATE_CLASSES)
    return _sqlstate(exc).startswith(_UNAVAILABLE_SQLSTATE_CLASSES)


def _sqlstate(exc: BaseException | None) -> str:
    """The SQLSTATE of a driver error, through SQLAlchemy's adapter if wrapped."""
    while exc is not None:
        code = getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None)
        if isinstance(code, str):
            return code
        exc = exc.__cause__
    return ""


FINAL_STATUS_VALUES = frozenset(s.value for s in MissionStatus if s.is_final)


@dataclass(frozen=True)
class Transition:
    """One mission moving on because of one event (a stage's outcome)."""

    mission_id: uuid.UUID
    status: MissionStatus
    stage: str
    cause: Envelope[EventData]
    emits: Sequence[EventData] = ()
    result: dict[str, Any] | None = None  # stored on the mission row
    detail: str | None = None
    completed: bool = False
    span: str = ""  # the `traceparent` of the span it was made in ("" for none)
    #: A simulated shard to record (`ShardRepository.record_many`'s columns but the id).
    shard: dict[str, Any] | None = None
    #: The mission's shards were merged: forget them.
    shards_merged: bool = False


#: What a status event and its history row share.
HISTORY_FIELDS = {"mission_id", "stage", "progress", "detail", "at"}


def create_engine(settings: Settings) -> AsyncEngine:
    """The process's one engine; a pooled connection PostgreSQL has closed (a restart)
    is replaced at checkout, so a restarted PostgreSQL is survived.

    Not SQLAlchemy's `pool_pre_ping`: with asyncpg it costs three round trips (BEGIN,
    ping, ROLLBACK) at every checkout, which is every transaction: half of PostgreSQL's
    transactions were those pings (docs/scaling.md). A connection that breaks without
    asyncpg noticing fails its statement instead, which is `DatabaseUnavailable` (the
    same as PostgreSQL going down mid-transaction) and makes SQLAlchemy renew the pool.
    """
    engine = create_async_engine(settings.database_url, pool_size=10, max_overflow=10)
    event.listen(engine.sync_engine, "checkout", _replace_if_closed)
    return engine


def _replace_if_closed(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """A checkout handler: the pool retries with a new connection on DisconnectionError."""
    if dbapi_connection.driver_connection.is_closed():
        raise DisconnectionError("PostgreSQL closed this pooled connection")


class UnitOfWork:
    """A transaction, its repositories and the mission state changes made inside it."""

    missions: MissionRepository
    outbox: OutboxRepository
    processed: ProcessedEventRepository
    idempotency: IdempotencyRepository
    tenants: TenantRepository
    webhooks: WebhookDeliveryRepository
    replays: DeadLetterReplayRepository
    locks: LockRepository
    retention: RetentionRepository
    plans: PlanRepository
    searches: SearchRepository

    def __init__(self, sessions: async_sessionmaker[AsyncSession], topic_prefix: str) -> None:
        self._sessions = sessions
        self._prefix = topic_prefix

    async def __aenter__(self) -> UnitOfWork:
        session = self._session = self._sessions()
        self.missions = MissionRepository(session)
        self.outbox = OutboxRepository(session)
        self.processed = ProcessedEventRepository(session)
        self.idempotency = IdempotencyRepository(session)
        self.tenants = TenantRepository(session)
        self.webhooks = WebhookDeliveryRepository(session)
        self.replays = DeadLetterReplayRepository(session)
        self.locks = LockRepository(session)
        self.retention = RetentionRepository(session)
        self.plans = PlanRepository(session)
        self.searches = SearchRepository(session)
        self.shards = ShardRepository(session)
        return self

    async def __aexit__(self, _type: object, exc: BaseException | None, _tb: object) -> None:
        try:
            if exc is None:
                await self._session.commit()
            else:
                await self._session.rollback()
        except Exception as end_exc:
            if is_unavailable(end_exc):
                raise DatabaseUnavailable(f"database unavailable: {end_exc}") from end_exc
            raise
        finally:
            await self._session.close()
        if exc is not None and not isinstance(exc, DatabaseUnavailable) and is_unavailable(exc):
            raise DatabaseUnavailable(f"database unavailable: {exc}") from exc

    async def ping(self) -> None:
        """One round trip; raises DatabaseUnavailable (on exit) when PostgreSQL is down."""
        await self._session.execute(text("SELECT 1"))

    # -- events -------------------------------------------------------------------------

    def publish(self, envelope: Envelope[Any]) -> None:
        """Queue an event in the outbox; the relay publishes it after commit."""
        self.outbox.add(topic(self._prefix, envelope.data.topic), envelope)

    # -- mission state ------------------------------------------------------------------

    async def change_status(
        self,
        mission: Mission,
        status: MissionStatus,
        *,
        stage: str,
        cause: Envelope[EventData] | None,
        detail: str | None = None,
        traceparent: str | None = None,
        new_occurrence: bool = False,
        span: str | None = None,
    ) -> None:
        """Move `mission` to `status`, keep its history, and publish the public status event.

        `cause` is the event that led here (a stage's input); None for changes made by
        the API, which then start from the request's `traceparent`. The status event's id
        derives from the cause, so a re-run emits the same id; `new_occurrence` gives it a
        fresh one instead, for a change the same cause can make more than once (held, then
        held again after a replay that fails again). `span` is the `traceparent` of the
        span the change is made in, when that is not the current one (a batched commit).
        """
        now = utcnow()
        progress = STAGE_PROGRESS.get(status, mission.progress)
        mission.status = status.value
        mission.stage = stage
        mission.progress = progress
        mission.status_detail = detail
        mission.updated_at = now
        data = MissionStatusV1(
            mission_id=mission.id,
            tenant=mission.tenant,
            status=status,
            stage=stage,
            progress=progress,
            detail=detail,
            at=now,
        )
        self.missions.record_change(
            MissionStatusChange(**data.model_dump(include=HISTORY_FIELDS), status=status.value)
        )
        envelope = _derive(data, cause, stage, traceparent, span)
        self.publish(replace(envelope, id=uuid.uuid4()) if new_occurrence else envelope)
        if status.is_final:  # shards still waiting for a merge that will never come
            await self.shards.forget([mission.id])

    async def transition_many(self, transitions: Sequence[Transition]) -> int:
        """Apply several stage outcomes at once: what `change_status` does for each, with
        a few statements in all (lock, history, outbox, update) instead of ORM objects.
        Missions that are gone or already final are left alone. Returns how many moved."""
        states = await self.missions.lock_states(t.mission_id for t in transitions)
        events: list[tuple[str, Envelope[Any]]] = []
        history: list[dict[str, Any]] = []
        updates: list[dict[str, Any]] = []
        shards: list[dict[str, Any]] = []
        merged: list[uuid.UUID] = []
        for change in transitions:
            state = states.get(change.mission_id)
            if state is None or state.status in FINAL_STATUS_VALUES:
                continue
            if change.shard is not None:
                shards.append({**change.shard, "mission_id": change.mission_id})
            if change.shards_merged or change.status.is_final:
                merged.append(change.mission_id)
            cause, stage, span = change.cause, change.stage, change.span
            for data in change.emits:
                events.append(
                    self._addressed(follow_from(data, cause=cause, stage=stage, span=span))
                )
            now = utcnow()
            progress = STAGE_PROGRESS.get(change.status, state.progress)
            status = MissionStatusV1(
                mission_id=change.mission_id,
                tenant=state.tenant,
                status=change.status,
                stage=stage,
                progress=progress,
                detail=change.detail,
                at=now,
            )
            history.append(
                {**status.model_dump(include=HISTORY_FIELDS), "status": change.status.value}
            )
            events.append(self._addressed(follow_from(status, cause=cause, stage=stage, span=span)))
            update: dict[str, Any] = {
                "mission_id": change.mission_id,
                "status": change.status.value,
                "stage": stage,
                "progress": progress,
                "detail": change.detail,
                "at": now,
            }
            if change.result is not None:
                update["result"] = change.result
            if change.completed:
                update["completed_at"] = now
            updates.append(update)
            state.status, state.progress = change.status.value, progress  # twice in a batch
        await self.missions.record_changes(history)
        await self.outbox.add_many(events)
        await self.missions.update_states(updates)
        await self.shards.record_many(shards)
        await self.shards.forget(merged)
        return len(updates)

    def _addressed(self, envelope: Envelope[Any]) -> tuple[str, Envelope[Any]]:
        return topic(self._prefix, envelope.data.topic), envelope

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


def follow_from(
    data: EventData, *, cause: Envelope[EventData], stage: str, span: str
) -> Envelope[EventData]:
    """`follow`, continuing the span whose `traceparent` is `span` rather than the current
    one (a batched commit runs outside its records' spans); "" for none: then a child of
    the cause, as `follow` does outside any span."""
    return replace(
        follow(data, cause=cause, stage=stage),
        traceparent=span or child_traceparent(cause.traceparent),
    )


def _derive(
    data: EventData,
    cause: Envelope[EventData] | None,
    stage: str,
    traceparent: str | None,
    span: str | None = None,
) -> Envelope[EventData]:
    if cause is not None and span is not None:
        return follow_from(data, cause=cause, stage=stage, span=span)
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
        autocommit = self.engine.execution_options(isolation_level="AUTOCOMMIT")
        self._read_sessions = async_sessionmaker(autocommit, expire_on_commit=False)
        self._prefix = settings.topic_prefix

    def unit_of_work(self) -> UnitOfWork:
        return UnitOfWork(self.sessions, self._prefix)

    def reads(self) -> UnitOfWork:
        """A unit of work for one read (an API key, a mission): no BEGIN and COMMIT
        round trips around it; each statement sees what was committed when it ran.
        Never for writes (they would not be atomic)."""
        return UnitOfWork(self._read_sessions, self._prefix)

    async def close(self) -> None:
        await self.engine.dispose()
