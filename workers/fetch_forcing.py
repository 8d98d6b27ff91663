"""Stage 2, fetch forcing: subset currents and winds to the mission's area and window.

Where the preferred source does not cover everything, its fallbacks are subset too.

Subsets are shared by every mission that needs the same one (`forcing.store`). A mission
with more particles than the shard size leaves as several `forcing.ready` records, one
per shard, spread over the simulate workers (`simulation.shards`).
"""

from __future__ import annotations

from driftline.contracts.envelope import Envelope
from driftline.contracts.events import ForcingReadyV1, ForcingUsed, MissionValidatedV1
from driftline.contracts.missions import MissionStatus
from driftline.forcing.catalog import Catalog
from driftline.forcing.plan import plan_forcing
from driftline.forcing.store import ForcingSubsets
from driftline.runtime.stage import Stage, StageOutcome
from driftline.settings import Settings
from driftline.simulation.shards import plan_shards


async def fetch_forcing(
    event: Envelope[MissionValidatedV1],
    *,
    settings: Settings,
    catalog: Catalog,
    subsets: ForcingSubsets,
) -> StageOutcome:
    """Choose the sources per variable, make sure their subsets are stored, emit `forcing.ready`.

    `forcing` lists every layer in the order OpenDrift must consult them: per variable,
    the preferred source first, then its fallbacks.
    """
    data = event.data
    plan = plan_forcing(catalog, data.request)  # ForcingGap if uncovered
    used = [
        ForcingUsed(
            variable=chosen.variable,
            source=chosen.name,
            key=await subsets.ensure(chosen, plan),
            synthetic=chosen.synthetic,
        )
        for chosen in plan.ordered()
    ]
    ready = ForcingReadyV1(
        mission_id=data.mission_id,
        tenant=data.tenant,
        request=data.request,
        object_type_id=data.object_type_id,
        seed=data.seed,
        forcing=used,
    )
    detail = ", ".join(f"{f.variable}: {f.source}" for f in used)
    shards = plan_shards(
        data.mission_id,
        scenario_particles=data.request.scenario_particles(),
        seed=data.seed,
        shard_size=settings.shard_particles,
        partitions=settings.shard_topic_partitions,
    )
    if not shards:
        return StageOutcome(status=MissionStatus.FORCING_READY, emits=[ready], detail=detail)
    return StageOutcome(
        status=MissionStatus.FORCING_READY,
        emits=[ready.model_copy(update={"shard": shard}) for shard in shards],
        detail=f"{detail}; {len(shards)} shards of up to {settings.shard_particles:,} particles",
    )


STAGE = Stage(name="fetch_forcing", consumes=MissionValidatedV1, run=fetch_forcing)
