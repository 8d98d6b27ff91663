"""Stage 3, simulate: OpenDrift Leeway in the warm process pool, trajectories to storage.

The event loop only awaits the pool, so Kafka heartbeats continue through long runs.
The raw trajectory file goes under a deterministic key, so a re-run after a crash
overwrites the same object instead of leaving a second result.
"""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path

import structlog

from driftline.contracts.envelope import Envelope
from driftline.contracts.events import ForcingReadyV1, ForcingUsed, SimulationCompletedV1
from driftline.contracts.missions import MissionStatus
from driftline.runtime.stage import Stage, StageOutcome
from driftline.settings import Settings
from driftline.simulation.pool import Simulator
from driftline.simulation.request import simulation_request
from driftline.storage.base import ArtifactStore
from driftline.telemetry import span

log = structlog.get_logger("driftline.simulate")
NETCDF = "application/x-netcdf"


def particles_key(tenant: str, mission_id: str) -> str:
    return f"{tenant}/{mission_id}/raw/particles.nc"


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
        request = replace(
            simulation_request(data, forcing_paths),
            forcing_sources=tuple(f.source for f in data.forcing),
        )
        output = workdir / "particles.nc"
        log.info("simulate.start", mission=str(data.mission_id), particles=request.particles)
        with span("opendrift leeway", particles=request.particles):
            outcome = await pool.run(request, output)
        key = particles_key(data.tenant, str(data.mission_id))
        await storage.put_file(key, output, NETCDF)
    log.info(
        "simulate.done",
        mission=str(data.mission_id),
        active=outcome.active,
        stranded=outcome.stranded,
    )
    return StageOutcome(
        status=MissionStatus.SIMULATED,
        emits=[
            SimulationCompletedV1(
                mission_id=data.mission_id,
                tenant=data.tenant,
                request=data.request,
                particles_key=key,
                particles_total=outcome.particles_total,
                particles_active=outcome.active,
                particles_stranded=outcome.stranded,
                forcing=forcing_with_shares(data.forcing, outcome.forcing_usage),
            )
        ],
        detail=f"{outcome.particles_total} particles, {outcome.stranded} stranded",
    )


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
