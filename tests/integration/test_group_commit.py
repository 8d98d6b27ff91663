"""Exactly-once effects committed in groups, on the real PostgreSQL.

Records that lanes hand over together share one check and one commit transaction;
every event is still applied once (a redelivery, or the same event twice in one batch,
changes nothing), a mission that does not exist fails only its own record, and a record
whose commit fails is found and fails alone while the rest of its batch commits.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from driftline.auth import create_api_key
from driftline.contracts.envelope import Envelope, stage_source
from driftline.contracts.events import EventData, MissionRequestedV1, MissionValidatedV1
from driftline.contracts.missions import MissionCreate, MissionStatus, utcnow
from driftline.db.models import Mission
from driftline.db.unit_of_work import Database
from driftline.errors import PermanentError
from driftline.runtime.apply import ExactlyOnce
from driftline.runtime.stage import StageOutcome
from driftline.settings import Settings
from tests.helpers import mission_body

TENANT = "group-commit"
BAD_DETAIL = "cannot be stored: \x00"  # PostgreSQL refuses NUL in text


async def _missions(database: Database, count: int) -> list[Envelope[MissionRequestedV1]]:
    body = MissionCreate.model_validate(mission_body())
    envelopes = []
    async with database.unit_of_work() as uow:
        await create_api_key(uow, TENANT)
    async with database.unit_of_work() as uow:
        for _ in range(count):
            mission_id, now = uuid.uuid4(), utcnow()
            uow.missions.add(
                Mission(
                    id=mission_id,
                    tenant=TENANT,
                    name=body.name,
                    request=body.model_dump(mode="json"),
                    status="accepted",
                    stage="api",
                    progress=0.0,
                    created_at=now,
                    updated_at=now,
                )
            )
            data = MissionRequestedV1(
                mission_id=mission_id, tenant=TENANT, requested_at=now, request=body
            )
            envelopes.append(Envelope(data=data, source=stage_source("api")))
    return envelopes


def _stage(poisoned: set[uuid.UUID]) -> Any:
    async def run(event: Envelope[EventData]) -> StageOutcome:
        data = event.data
        assert isinstance(data, MissionRequestedV1)
        validated = MissionValidatedV1(
            mission_id=data.mission_id,
            tenant=data.tenant,
            request=data.request,
            object_type_id=1,
            object_type_key="PIW-1",
            seed=1,
        )
        detail = BAD_DETAIL if data.mission_id in poisoned else None
        return StageOutcome(status=MissionStatus.VALIDATED, emits=[validated], detail=detail)

    return run


async def _counts(database: Database) -> tuple[int, int, dict[str, int]]:
    async with database.unit_of_work() as uow:
        outbox = await uow.outbox.count()
        processed = await uow.processed.count("g.validate")
        statuses = await uow.missions.count_by_status()
    return outbox, processed, statuses


@pytest.fixture
async def database(settings: Settings) -> Any:
    db = Database(settings)
    yield db
    await db.close()


async def test_a_burst_is_applied_once_in_few_transactions(database: Database) -> None:
    envelopes = await _missions(database, 60)
    effects = ExactlyOnce("validate", "g.validate", database, _stage(set()))

    await asyncio.gather(*(effects.apply(e) for e in envelopes))

    outbox, processed, statuses = await _counts(database)
    assert statuses == {"validated": 60}
    assert processed == 60
    assert outbox == 120  # per mission: mission.validated and its status event
    assert effects.transactions <= 6  # not 120: one check and one commit per batch

    # Redelivered, all at once and with one event twice in the same batch: no effect.
    await asyncio.gather(*(effects.apply(e) for e in [*envelopes, envelopes[0]]))
    assert await _counts(database) == (120, 60, {"validated": 60})
    async with database.unit_of_work() as uow:
        changes = await uow.missions.changes_after(envelopes[0].data.mission_id, 0)
        emitted = await uow.outbox.count(key=envelopes[0].subject)
    assert [c.status for c in changes] == ["validated"]
    assert emitted == 2


async def test_a_record_fails_alone(database: Database) -> None:
    envelopes = await _missions(database, 20)
    poisoned = envelopes[7].data.mission_id
    ghost_data = envelopes[0].data.model_copy(update={"mission_id": uuid.uuid4()})
    ghost = Envelope(data=ghost_data, source=stage_source("api"))
    effects = ExactlyOnce("validate", "g.validate", database, _stage({poisoned}))

    results = await asyncio.gather(
        *(effects.apply(e) for e in [*envelopes, ghost]), return_exceptions=True
    )

    assert isinstance(results[-1], PermanentError)  # no such mission: its own failure
    assert results[7] is not None and not isinstance(results[7], PermanentError)
    assert all(r is None for i, r in enumerate(results[:-1]) if i != 7)
    outbox, processed, statuses = await _counts(database)
    assert statuses == {"validated": 19, "accepted": 1}
    assert processed == 19 and outbox == 38
    async with database.unit_of_work() as uow:
        still = await uow.missions.get(poisoned)
    assert still is not None and still.status == "accepted"
