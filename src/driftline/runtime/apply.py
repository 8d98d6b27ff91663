"""Exactly-once effects: a stage's outcome, its processed-event id and its emitted events
commit in one PostgreSQL transaction, so a redelivered event changes nothing.

The stage itself runs outside any transaction (a simulation may take minutes); the
claim of the event id is made in the transaction that stores the outcome, and a
competing consumer that committed first simply wins.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from driftline.contracts.envelope import Envelope, active_traceparent
from driftline.contracts.events import EventData
from driftline.contracts.missions import MissionStatus
from driftline.db.unit_of_work import Database, Transition, is_unavailable
from driftline.errors import PermanentError
from driftline.runtime import metrics
from driftline.runtime.batching import Batcher
from driftline.runtime.stage import BoundStage, StageOutcome
from driftline.telemetry import span

log = structlog.get_logger("driftline.apply")

FINAL_STATUSES = frozenset(s.value for s in MissionStatus if s.is_final)


@dataclass(frozen=True)
class Committed:
    """A record's outcome waiting for its batch's transaction, with the `traceparent` of
    its commit span (the events it emits continue that span's trace)."""

    envelope: Envelope[EventData]
    outcome: StageOutcome
    span: str  # "" outside any span


def shard_row(completion: EventData | None) -> dict[str, Any] | None:
    """The ledger row of a simulated shard (its completion event carries its place)."""
    shard = getattr(completion, "shard", None)
    if completion is None or shard is None:
        return None
    return {
        "shard_index": shard.index,
        "shard_count": shard.count,
        "completion": completion.model_dump(mode="json"),
    }


class ExactlyOnce:
    """Applies one stage's events to the database at most once per consumer group.

    Lanes call `apply` concurrently; the early check and the commit of records that
    arrive together are grouped (`Batcher`): one transaction checks them all, one
    commits them all. A batch that fails is retried one record per transaction, so a
    record's failure is its own and never another's.
    """

    def __init__(
        self,
        stage: str,
        group: str,
        database: Database,
        run: BoundStage,
        *,
        max_batch: int = 500,
    ) -> None:
        self._stage = stage
        self._group = group
        self._db = database
        self._run = run
        self._checks: Batcher[Envelope[EventData], bool] = Batcher(
            self._check_many, max_batch=max_batch
        )
        self._commits: Batcher[Committed, None] = Batcher(self._commit_many, max_batch=max_batch)

    async def apply(self, envelope: Envelope[EventData]) -> None:
        """Run the stage unless done already or the mission is final; commit the outcome."""
        if not await self._checks.submit(envelope):
            return
        with span(f"{self._stage} run"):
            outcome = await self._run(envelope)
        with span(f"{self._stage} commit", emitted=len(outcome.emits)):
            await self._commits.submit(Committed(envelope, outcome, active_traceparent() or ""))

    async def close(self, timeout_s: float = 10.0) -> None:
        """Let the check and commit in flight finish (bounded: a batch cut short rolls
        back, and its records, never acknowledged, are redelivered)."""
        await self._checks.close(timeout_s)
        await self._commits.close(timeout_s)

    @property
    def transactions(self) -> int:
        """Units of work the checks and commits took (batches, not records)."""
        return self._checks.batches + self._commits.batches

    # -- the commit ---------------------------------------------------------------------

    async def _commit_many(self, items: Sequence[Committed]) -> list[BaseException | None]:
        """Outcome, processed-event id and emitted events of every item: one transaction."""
        try:
            await self._commit_together(items)
            return [None] * len(items)
        except Exception as exc:
            if len(items) == 1 or is_unavailable(exc):
                return [exc] * len(items)
        results: list[BaseException | None] = []
        for item in items:  # find whose the failure is: one transaction each
            try:
                await self._commit_together([item])
                results.append(None)
            except Exception as exc:
                results.append(exc)
        return results

    async def _commit_together(self, items: Sequence[Committed]) -> None:
        async with self._db.unit_of_work() as uow:
            claimed = await uow.processed.claim_many(self._group, [i.envelope.id for i in items])
            transitions = []
            for item in items:
                envelope, outcome = item.envelope, item.outcome
                if envelope.id not in claimed:
                    continue  # another consumer committed it first; ours is discarded
                claimed.discard(envelope.id)  # the same event twice in a batch: applied once
                if outcome.status is None:
                    continue  # nothing to change: the claim alone
                result = outcome.result
                transitions.append(
                    Transition(
                        mission_id=envelope.data.mission_id,
                        status=outcome.status,
                        stage=self._stage,
                        cause=envelope,
                        emits=outcome.emits,
                        result=None if result is None else result.model_dump(mode="json"),
                        detail=outcome.detail,
                        completed=outcome.completed,
                        span=item.span,
                        shard=shard_row(outcome.shard),
                        shards_merged=outcome.shards_merged,
                    )
                )
            await uow.transition_many(transitions)

    # -- the early check ----------------------------------------------------------------

    async def _check_many(
        self, envelopes: Sequence[Envelope[EventData]]
    ) -> list[bool | BaseException]:
        """Per envelope: False if already applied or its mission is final (then claimed,
        recorded), True if the stage must run, PermanentError if there is no mission."""
        results: list[bool | BaseException] = []
        async with self._db.unit_of_work() as uow:
            done = await uow.processed.applied(self._group, [e.id for e in envelopes])
            statuses = await uow.missions.statuses(e.data.mission_id for e in envelopes)
            final = []
            for envelope in envelopes:
                mission_id = envelope.data.mission_id
                status = statuses.get(mission_id)
                if envelope.id in done:
                    results.append(False)
                elif status is None:
                    results.append(
                        PermanentError("unknown_mission", f"mission {mission_id} does not exist")
                    )
                elif status not in FINAL_STATUSES:
                    results.append(True)
                else:
                    final.append(envelope)
                    results.append(False)
            if final:
                await uow.processed.claim_many(self._group, [e.id for e in final])
        for envelope in final:
            log.info("runner.skip_final", stage=self._stage, mission=envelope.subject)
        return results

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
