"""Shared forcing subsets in the artifact store, cut once however many missions need them.

Stored under `forcing/<cache key>.nc`. A PostgreSQL advisory lock on the key makes
concurrent missions (in any worker process) cut a subset once: the second one waits,
then finds the object.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Protocol

import structlog

from driftline.db.unit_of_work import Database
from driftline.forcing.catalog import ChosenSource
from driftline.forcing.plan import ForcingPlan
from driftline.forcing.subset import subset_to_file
from driftline.runtime import metrics
from driftline.storage.base import ArtifactStore
from driftline.storage.keys import NETCDF

log = structlog.get_logger("driftline.forcing")


class ForcingSubsets(Protocol):
    """What fetch_forcing needs: make sure a source's subset for a plan is stored."""

    async def ensure(self, chosen: ChosenSource, plan: ForcingPlan) -> str:
        """The object-store key of the subset, cutting and storing it if missing."""
        ...


def subset_key(chosen: ChosenSource, plan: ForcingPlan) -> str:
    return f"forcing/{plan.cache_key(chosen)}.nc"


class StoredSubsets:
    """Subsets in the artifact store, guarded by a database advisory lock per key."""

    def __init__(self, storage: ArtifactStore, database: Database, work_dir: Path) -> None:
        self._storage = storage
        self._db = database
        self._work_dir = work_dir

    async def ensure(self, chosen: ChosenSource, plan: ForcingPlan) -> str:
        key = subset_key(chosen, plan)
        if await self._storage.exists(key):
            return key
        async with self._db.unit_of_work() as uow:
            # Held until this transaction ends: a second mission waits, then finds the file.
            await uow.locks.hold(key)
            if not await self._storage.exists(key):
                await self._cut(key, chosen, plan)
        return key

    async def _cut(self, key: str, chosen: ChosenSource, plan: ForcingPlan) -> None:
        self._work_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self._work_dir) as tmp:
            out = Path(tmp) / "subset.nc"
            await asyncio.to_thread(subset_to_file, chosen, plan.area, plan.start, plan.end, out)
            await self._storage.put_file(key, out, NETCDF)
        metrics.FORCING_SUBSETS_FETCHED.labels(chosen.name).inc()
        log.info("forcing.fetched", key=key)
