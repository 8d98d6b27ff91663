"""The soak's stages: the real runner around synthetic stage functions that emit valid
events of the real contracts with tiny data (no OpenDrift); notify is the real one."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from typing import Any

from driftline.bootstrap import stage_dependencies
from driftline.contracts.envelope import Envelope
from driftline.contracts.events import (
    Centroid,
    ForcingReadyV1,
    ForcingUsed,
    MissionRequestedV1,
    MissionSummary,
    MissionValidatedV1,
    ResultsReadyV1,
    SimulationCompletedV1,
)
from driftline.contracts.missions import MissionStatus
from driftline.contracts.results import MissionResult, StoredArtifact
from driftline.db.unit_of_work import Database
from driftline.retention import RetentionPolicy
from driftline.runtime.lifecycle import stop_on_signals
from driftline.runtime.runner import StageRunner
from driftline.runtime.stage import Stage, StageOutcome
from driftline.settings import Settings
from driftline.simulation.leeway import resolve_object_type, seed_from_mission_id
from driftline.storage.base import ArtifactStore
from workers import notify
from workers.postprocess import RAW_PARTICLES, artifact_href
from workers.simulate import NETCDF, particles_key

TINY_PARTICLES = b"CDF\x01 soak run: no trajectories\n"
TINY_SHA256 = hashlib.sha256(TINY_PARTICLES).hexdigest()


async def validate_synthetic(event: Envelope[MissionRequestedV1]) -> StageOutcome:
    data = event.data
    category = resolve_object_type(data.request.object_type)
    validated = MissionValidatedV1(
        mission_id=data.mission_id,
        tenant=data.tenant,
        request=data.request,
        object_type_id=category.id,
        object_type_key=category.key,
        seed=seed_from_mission_id(str(data.mission_id)),
    )
    return StageOutcome(status=MissionStatus.VALIDATED, emits=[validated])


async def fetch_forcing_synthetic(event: Envelope[MissionValidatedV1]) -> StageOutcome:
    data = event.data
    used = ForcingUsed(variable="current", source="soak", key="forcing/soak.nc", synthetic=True)
    ready = ForcingReadyV1(
        mission_id=data.mission_id,
        tenant=data.tenant,
        request=data.request,
        object_type_id=data.object_type_id,
        seed=data.seed,
        forcing=[used],
    )
    return StageOutcome(status=MissionStatus.FORCING_READY, emits=[ready])


async def simulate_synthetic(
    event: Envelope[ForcingReadyV1], *, storage: ArtifactStore
) -> StageOutcome:
    """Stores one tiny object under the real deterministic key (the bucket grows per mission)."""
    data = event.data
    key = particles_key(data.tenant, str(data.mission_id))
    await storage.put_bytes(key, TINY_PARTICLES, NETCDF)
    completed = SimulationCompletedV1(
        mission_id=data.mission_id,
        tenant=data.tenant,
        request=data.request,
        particles_key=key,
        particles_total=data.request.particles,
        particles_active=data.request.particles,
        particles_stranded=0,
        forcing=data.forcing,
    )
    return StageOutcome(status=MissionStatus.SIMULATED, emits=[completed])


async def postprocess_synthetic(
    event: Envelope[SimulationCompletedV1], *, settings: Settings
) -> StageOutcome:
    data = event.data
    mission_id = str(data.mission_id)
    raw = StoredArtifact(
        name=RAW_PARTICLES,
        media_type=NETCDF,
        href=artifact_href(settings.public_base_url, mission_id, RAW_PARTICLES),
        bytes=len(TINY_PARTICLES),
        sha256=TINY_SHA256,
        key=data.particles_key,
    )
    where = data.request.last_known_position
    summary = MissionSummary(
        particles_total=data.particles_total,
        particles_active=data.particles_active,
        particles_stranded=data.particles_stranded,
        fraction_afloat=1.0,
        centroid=Centroid(lat=where.lat, lon=where.lon),
        area_km2={"50": 1.0, "90": 4.0, "95": 6.0},
        forcing=data.forcing,
        synthetic_forcing=True,
    )
    result = MissionResult(summary=summary, artifacts=[raw])
    ready = ResultsReadyV1(
        mission_id=data.mission_id,
        tenant=data.tenant,
        request=data.request,
        artifacts=result.public_artifacts(),
        summary=summary,
    )
    return StageOutcome(status=MissionStatus.RESULTS_READY, emits=[ready], result=result)


SOAK_STAGES: dict[str, Stage[Any]] = {
    stage.name: stage
    for stage in (
        Stage(name="validate", consumes=MissionRequestedV1, run=validate_synthetic),
        Stage(name="fetch_forcing", consumes=MissionValidatedV1, run=fetch_forcing_synthetic),
        Stage(name="simulate", consumes=ForcingReadyV1, run=simulate_synthetic),
        Stage(name="postprocess", consumes=SimulationCompletedV1, run=postprocess_synthetic),
        notify.STAGE,  # real: the public event and the webhook delivery are bookkeeping
    )
}


async def serve_stages(settings: Settings, names: Sequence[str]) -> None:
    """The stages process: the real runner around the synthetic stages, until SIGTERM."""
    RetentionPolicy.from_settings(settings).check()
    stop = stop_on_signals()
    stages = [SOAK_STAGES[name] for name in names]
    database = Database(settings)
    try:
        async with stage_dependencies(settings, database, stages) as dependencies:
            runners = [StageRunner(s, settings, database, dependencies) for s in stages]
            await asyncio.gather(*(runner.run(stop) for runner in runners))
    finally:
        await database.close()
