"""Stage 2, fetch forcing: subset currents and winds to the mission's area and window.

Subsets are stored once under `forcing/<cache key>.nc` and shared by every mission that
needs the same one; a PostgreSQL advisory lock on the key makes concurrent missions
fetch it once.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import structlog
from sqlalchemy import text

from driftline.contracts.envelope import Envelope
from driftline.contracts.events import ForcingReadyV1, ForcingUsed, MissionValidatedV1
from driftline.contracts.missions import MissionStatus
from driftline.db.unit_of_work import Database
from driftline.forcing.catalog import ChosenSource
from driftline.forcing.plan import ForcingPlan, plan_forcing
from driftline.forcing.subset import subset_to_file
from driftline.runtime import metrics
from driftline.runtime.stage import Stage, StageContext, StageOutcome

log = structlog.get_logger("driftline.fetch_forcing")
NETCDF = "application/x-netcdf"


async def fetch_forcing(event: Envelope[MissionValidatedV1], ctx: StageContext) -> StageOutcome:
    """Choose a source per variable, make sure its subset is stored, emit `forcing.ready`."""
    request = event.data.request
    plan = plan_forcing(ctx.service("forcing_catalog"), request)  # ForcingGap if uncovered
    database: Database = ctx.service("database")
    used: list[ForcingUsed] = []
    for variable, chosen in sorted(plan.sources.items()):
        key = f"forcing/{plan.cache_key(chosen)}.nc"
        await _ensure_subset(database, ctx, key, chosen, plan)
        used.append(
            ForcingUsed(variable=variable, source=chosen.name, key=key, synthetic=chosen.synthetic)
        )
    return StageOutcome(
        status=MissionStatus.FORCING_READY,
        emits=[
            ForcingReadyV1(
                mission_id=event.data.mission_id,
                tenant=event.data.tenant,
                request=request,
                object_type_id=event.data.object_type_id,
                seed=event.data.seed,
                forcing=used,
            )
        ],
        detail=", ".join(f"{f.variable}: {f.source}" for f in used),
    )


async def _ensure_subset(
    database: Database, ctx: StageContext, key: str, chosen: ChosenSource, plan: ForcingPlan
) -> None:
    storage = ctx.storage
    if await storage.exists(key):
        return
    async with database.unit_of_work() as uow:
        # Held until this transaction ends: a second mission waits, then finds the file.
        await uow.session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": key})
        if await storage.exists(key):
            return
        ctx.settings.work_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=ctx.settings.work_dir) as tmp:
            out = Path(tmp) / "subset.nc"
            await asyncio.to_thread(subset_to_file, chosen, plan.area, plan.start, plan.end, out)
            await storage.put_file(key, out, NETCDF)
        metrics.FORCING_SUBSETS_FETCHED.labels(chosen.name).inc()
        log.info("forcing.fetched", key=key)


STAGE = Stage(name="fetch_forcing", consumes=MissionValidatedV1, run=fetch_forcing)
