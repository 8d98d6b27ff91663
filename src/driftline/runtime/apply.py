"""Exactly-once effects: a stage's outcome, its processed-event id and its emitted events
commit in one PostgreSQL transaction, so a redelivered event changes nothing.

The stage itself runs outside any transaction (a simulation may take minutes); the
claim of the event id is made in the transaction that stores the outcome, and a
competing consumer that committed first simply wins.
"""

from __future__ import annotations

import structlog

from driftline.contracts.envelope import Envelope, follow
from driftline.contracts.events import EventData
from driftline.contracts.missions import MissionStatus, utcnow
from driftline.db.unit_of_work import Database
from driftline.errors import PermanentError
from driftline.runtime import metrics
from driftline.runtime.stage import BoundStage, StageOutcome
from driftline.telemetry import span

log = structlog.get_logger("driftline.apply")

FINAL_STATUSES = frozenset(s.value for s in MissionStatus if s.is_final)


class ExactlyOnce:
    """Applies one stage's events to the database at most once per consumer group."""

    def __init__(self, stage: str, group: str, database: Database, run: BoundStage) -> None:
        self._stage = stage
        self._group = group
        self._db = database
        self._run = run

    async def apply(self, envelope: Envelope[EventData]) -> None:
        """Run the stage unless done already or the mission is final; commit the outcome."""
        if not await self._needs_work(envelope):
            return
        with span(f"{self._stage} run"):
            outcome = await self._run(envelope)
        with span(f"{self._stage} commit", emitted=len(outcome.emits)):
            await self._commit(envelope, outcome)

    async def _commit(self, envelope: Envelope[EventData], outcome: StageOutcome) -> None:
        """Outcome, processed-event id and emitted events (outbox rows): one transaction."""
        async with self._db.unit_of_work() as uow:
            if not await uow.processed.claim(self._group, envelope.id):
                return  # another consumer committed it first; ours is discarded
            mission = await uow.missions.get(envelope.data.mission_id, lock=True)
            if mission is None or mission.status in FINAL_STATUSES:
                return
            for data in outcome.emits:
                uow.publish(follow(data, cause=envelope, stage=self._stage))
            if outcome.result is not None:
                mission.result = outcome.result.model_dump(mode="json")
            if outcome.completed:
                mission.completed_at = utcnow()
            await uow.change_status(
                mission, outcome.status, stage=self._stage, cause=envelope, detail=outcome.detail
            )

    async def _needs_work(self, envelope: Envelope[EventData]) -> bool:
        """False for an event already applied, or for a mission already final (recorded)."""
        mission_id = envelope.data.mission_id
        async with self._db.unit_of_work() as uow:
            if await uow.processed.contains(self._group, envelope.id):
                return False
            mission = await uow.missions.get(mission_id)
            if mission is None:
                raise PermanentError("unknown_mission", f"mission {mission_id} does not exist")
            if mission.status not in FINAL_STATUSES:
                return True
            await uow.processed.claim(self._group, envelope.id)
        log.info("runner.skip_final", stage=self._stage, mission=str(mission_id))
        return False

    async def hold(self, envelope: Envelope[EventData], why: str) -> None:
        """Mark the mission held: its record went to the dead-letter topic (not claimed,
        so a replay applies it and moves the mission on)."""
        async with self._db.unit_of_work() as uow:
            mission = await uow.missions.get(envelope.data.mission_id, lock=True)
            if mission is None or mission.status in FINAL_STATUSES:
                return
            await uow.change_status(
                mission,
                MissionStatus.HELD,
                stage=self._stage,
                cause=envelope,
                detail=why,
                new_occurrence=True,
            )
        metrics.MISSIONS_HELD.labels(self._stage).inc()
        log.warning("runner.mission_held", stage=self._stage, mission=envelope.subject)

    async def fail(self, envelope: Envelope[EventData], exc: PermanentError) -> None:
        """Fail the mission publicly with the error's reason, once."""
        async with self._db.unit_of_work() as uow:
            if not await uow.processed.claim(self._group, envelope.id):
                return
            mission = await uow.missions.get(envelope.data.mission_id, lock=True)
            if mission is None or mission.status in FINAL_STATUSES:
                return
            await uow.fail_mission(
                mission, stage=self._stage, reason=exc.reason, detail=exc.detail, cause=envelope
            )
        metrics.MISSIONS_FAILED.labels(self._stage, exc.reason).inc()
        log.info(
            "runner.mission_failed", stage=self._stage, mission=envelope.subject, reason=exc.reason
        )
