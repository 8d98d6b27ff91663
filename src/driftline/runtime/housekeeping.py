"""Housekeeping: prunes every table past its retention, in small batches, forever.

Part of the system, not a cron to remember: it runs in every relay process (and alone
as `driftline housekeeping`). Each batch is its own short transaction that first takes
a transaction-level advisory lock, so several housekeepers never delete side by side
and none holds a long lock. Rows pruned and the age of the oldest row per table are
exported as metrics.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog

from driftline.contracts.missions import utcnow
from driftline.db.unit_of_work import Database
from driftline.errors import TransientError
from driftline.retention import RetentionPolicy
from driftline.runtime import metrics
from driftline.runtime.lifecycle import sleep_or_stop
from driftline.settings import Settings

log = structlog.get_logger("driftline.housekeeping")
LOCK = "driftline.housekeeping"


def retention_of(policy: RetentionPolicy) -> dict[str, timedelta]:
    """How long each prunable table keeps its rows."""
    return {
        "outbox": policy.outbox_published,
        "processed_events": policy.processed_events,
        "idempotency_keys": policy.idempotency_keys,
        "mission_status_changes": policy.status_history,
        "webhook_deliveries": policy.webhook_deliveries,
    }


@dataclass
class Housekeeper:
    settings: Settings
    database: Database

    async def run(self, stop: asyncio.Event) -> None:
        """Prune every interval until stopped; a database outage only delays a pass."""
        log.info("housekeeping.started", interval_s=self.settings.housekeeping_interval_s)
        while not stop.is_set():
            try:
                await self.pass_once()
            except TransientError as exc:
                log.warning("housekeeping.retry", error=str(exc))
            await sleep_or_stop(stop, self.settings.housekeeping_interval_s)

    async def pass_once(self) -> dict[str, int]:
        """One pass over every table; returns the rows deleted per table."""
        policy = RetentionPolicy.from_settings(self.settings)
        now = utcnow()
        deleted: dict[str, int] = {}
        for table, keep in retention_of(policy).items():
            deleted[table] = await self._prune(table, now - keep)
            await self._report_oldest(table, now)
        if any(deleted.values()):
            log.info("housekeeping.pruned", **deleted)
        return deleted

    async def _prune(self, table: str, cutoff: datetime) -> int:
        total, batch = 0, self.settings.housekeeping_batch
        while True:
            async with self.database.unit_of_work() as uow:
                if not await uow.locks.try_hold(LOCK):
                    return total  # another housekeeper is at it
                count = await uow.retention.prune(table, cutoff, batch)
            total += count
            metrics.HOUSEKEEPING_PRUNED.labels(table).inc(count)
            if count < batch:
                return total

    async def _report_oldest(self, table: str, now: datetime) -> None:
        async with self.database.unit_of_work() as uow:
            oldest = await uow.retention.oldest(table)
        age = (now - oldest).total_seconds() if oldest is not None else 0.0
        metrics.OLDEST_ROW_AGE.labels(table).set(max(age, 0.0))
