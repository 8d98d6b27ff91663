"""Stage 2, fetch forcing: subset currents and winds to the mission's area and window.

Where the preferred source does not cover everything, its fallbacks are subset too.

Subsets are shared by every mission that needs the same one (`forcing.store`).
"""

from __future__ import annotations

from driftline.contracts.envelope import Envelope
from driftline.contracts.events import ForcingReadyV1, ForcingUsed, MissionValidatedV1
from driftline.contracts.missions import MissionStatus
from driftline.forcing.catalog import Catalog
from driftline.forcing.plan import plan_forcing
from driftline.forcing.store import ForcingSubsets
from driftline.runtime.stage import Stage, StageOutcome


async def fetch_forcing(
    event: Envelope[MissionValidatedV1], *, catalog: Catalog, subsets: ForcingSubsets
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
    return StageOutcome(status=MissionStatus.FORCING_READY, emits=[ready], detail=detail)


STAGE = Stage(name="fetch_forcing", consumes=MissionValidatedV1, run=fetch_forcing)
