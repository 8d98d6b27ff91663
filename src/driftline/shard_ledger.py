"""The shard ledger as postprocess reads it: which shards of a huge mission are simulated.

The simulate stage records each shard in the same transaction that emits its
completion; postprocess reads the ledger when a completion arrives (a mission's
completions share one lane, so each read sees every earlier one), merges once all are
there, and its merge empties the ledger in its own transaction.
"""

from __future__ import annotations

import uuid
from typing import Protocol

from driftline.contracts.events import SimulationCompletedV1
from driftline.db.unit_of_work import Database


class ShardLedger(Protocol):
    """The simulated shards of a mission, in shard order (empty once merged)."""

    async def simulated(self, mission_id: uuid.UUID) -> list[SimulationCompletedV1]: ...


class StoredShards:
    """The ledger in PostgreSQL (`simulation_shards`)."""

    def __init__(self, database: Database) -> None:
        self._db = database

    async def simulated(self, mission_id: uuid.UUID) -> list[SimulationCompletedV1]:
        async with self._db.reads() as uow:
            rows = await uow.shards.for_mission(mission_id)
        return [SimulationCompletedV1.model_validate(row.completion) for row in rows]
