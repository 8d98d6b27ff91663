"""Stage 3, simulate: OpenDrift Leeway in the warm process pool, trajectories to storage.

The event loop only awaits the pool, so Kafka heartbeats continue through long runs.
The raw trajectory file goes under a deterministic key, so a re-run after a crash
overwrites the same object instead of leaving a second result.

A shard of a huge mission simulates its slice only; its outcome records it in the
mission's shard ledger, and postprocess merges once every shard is there.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import structlog

from driftline.contracts.envelope import Envelope
from driftline.contracts.events import ForcingReadyV1, ForcingUsed, SimulationCompletedV1
from driftline.contracts.missions import MissionStatus
from driftline.runtime.stage import Stage, StageOutcome
from driftline.settings import Settings
from driftline.simulation.pool import Simulator
from driftline.simulation.request import simulation_request
from driftline.simulation.shards import shard_request
from driftline.storage.base import ArtifactStore
from driftline.storage.keys import NETCDF, particles_key, shard_particles_key
from driftline.telemetry import span

log = structlog.get_logger("driftline.simulate")


async def simulate(
    event: Envelope[ForcingReadyV1],
    *,
    settings: Settings,
    storage: ArtifactStore,
    pool: Simulator,
) -> StageOutcome:
    """Download the forcing subsets, run Leeway, store the trajectories, emit `completed`."""
    data = event.data
    settings.work_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=settings.work_dir) as tmp:
        workdir = Path(tmp)
        forcing_paths = []
        for index, forcing in enumerate(data.forcing):
            path = workdir / f"forcing-{index}-{forcing.variable}.nc"
            await storage.download(forcing.key, path)
            forcing_paths.append(path)
        request = simulation_request(data, forcing_paths)
        mission = str(data.mission_id)
        key = particles_key(data.tenant, mission)
        if data.shard is not None:
            request = shard_request(request, data.shard)
            key = shard_particles_key(data.tenant, mission, data.shard)
        output = workdir / "particles.nc"
        log.info("simulate.start", mission=mission, particles=request.particles, shard=_which(data))
        with span("opendrift leeway", particles=request.particles):
            outcome = await pool.run(request, output)
        await storage.put_file(key, output, NETCDF)
    log.info(
        "simulate.done",
        mission=mission,
        active=outcome.active,
        stranded=outcome.stranded,
        shard=_which(data),
    )
    completed = SimulationCompletedV1(
        mission_id=data.mission_id,
        tenant=data.tenant,
        request=data.request,
        particles_key=key,
        particles_total=outcome.particles_total,
        particles_active=outcome.active,
        particles_stranded=outcome.stranded,
        forcing=forcing_with_shares(data.forcing, outcome.forcing_usage),
        shard=data.shard,
    )
    detail = f"{outcome.particles_total} particles, {outcome.stranded} stranded"
    if data.shard is None:
        return StageOutcome(status=MissionStatus.SIMULATED, emits=[completed], detail=detail)
    # The mission is simulated when its last shard is: until the merge it stays
    # `forcing_ready`, each shard saying so in the status detail.
    return StageOutcome(
        status=MissionStatus.FORCING_READY,
        emits=[completed],
        detail=f"shard {data.shard.index + 1} of {data.shard.count} simulated: {detail}",
        shard=completed,
    )


def _which(data: ForcingReadyV1) -> str | None:
    return None if data.shard is None else f"{data.shard.index + 1}/{data.shard.count}"


def forcing_with_shares(
    forcing: list[ForcingUsed], usage: dict[str, dict[str, int]]
) -> list[ForcingUsed]:
    """Each layer with the particle-steps it served and its share of its variable's total.

    A variable nothing was counted for (a simulator that does not count) is left as is.
    """
    shared = []
    for layer in forcing:
        served = usage.get(layer.variable, {})
        total = sum(served.values())
        if not total:
            shared.append(layer)
            continue
        steps = served.get(layer.source, 0)
        shared.append(layer.model_copy(update={"particle_steps": steps, "share": steps / total}))
    return shared


STAGE = Stage(name="simulate", consumes=ForcingReadyV1, run=simulate)
