"""Stage 4, post-process: particle cloud → density, containment areas, map, summary, exports.

Every product is made for the weighted union of the scenarios and for each scenario.

A huge mission's shards are merged here, once the last of them is simulated
(`shard_ledger`): the merged particle file becomes the mission's `raw/particles.nc`
and everything after is as for any mission.

Products are computed in a worker thread (numpy and matplotlib release the loop; NetCDF
I/O inside holds `NETCDF_LOCK`, so several missions can be post-processed at once) and
stored under `<tenant>/<mission id>/products/…`; the `MissionResult` (artifacts and
summary) is kept on the mission so `GET /results` answers without reading storage.
"""

from __future__ import annotations

import asyncio
import tempfile
from datetime import datetime, timedelta
from pathlib import Path

from driftline.contracts.envelope import Envelope
from driftline.contracts.events import ForcingUsed, ResultsReadyV1, SimulationCompletedV1
from driftline.contracts.missions import MissionCreate, MissionStatus
from driftline.contracts.results import MissionResult, StoredArtifact
from driftline.landmask import LandMask
from driftline.postprocess.products import Products, ScenarioLabel, build_products
from driftline.runtime.stage import Stage, StageOutcome
from driftline.settings import Settings
from driftline.shard_ledger import ShardLedger
from driftline.simulation.shards import merge_particle_files
from driftline.storage.base import ArtifactStore, StoredObject
from driftline.storage.keys import NETCDF, particles_key
from driftline.telemetry import span

#: Containment regions are also drawn at these intervals, for planning search legs.
PLANNING_INTERVAL = timedelta(hours=6)
#: Name under which the simulation's own particle file is listed with the products.
RAW_PARTICLES = "raw/particles.nc"


def planning_times(request: MissionCreate) -> list[datetime]:
    start = request.last_known_position.time
    sign = -1 if request.options.backward else 1
    steps = int(request.duration_hours // 6)
    return [start + sign * k * PLANNING_INTERVAL for k in range(1, steps + 1)]


def artifact_href(base_url: str, mission_id: str, name: str) -> str:
    return f"{base_url.rstrip('/')}/v1/missions/{mission_id}/artifacts/{name}"


async def postprocess(
    event: Envelope[SimulationCompletedV1],
    *,
    settings: Settings,
    storage: ArtifactStore,
    land: LandMask,
    shards: ShardLedger,
) -> StageOutcome:
    """Build and store every SAR product; emit `results.ready` with the summary.

    A shard's completion waits (changes nothing) until every shard is simulated; the
    one that finds them all merges them first.
    """
    data = event.data
    simulated: list[SimulationCompletedV1] = []
    if data.shard is not None:
        simulated = await shards.simulated(data.mission_id)
        if data.shard.index not in {s.shard.index for s in simulated if s.shard}:
            return StageOutcome(status=None)  # merged already, or the mission ended
        if len(simulated) < data.shard.count:
            return StageOutcome(status=None)  # the others are still simulating
    settings.work_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=settings.work_dir) as tmp:
        workdir = Path(tmp)
        particles = workdir / "particles.nc"
        upload: asyncio.Task[StoredObject] | None = None
        if simulated:
            data = await _merge_shards(simulated, workdir / "shards", particles, storage)
            # The merged file is stored while the products are made from it.
            upload = asyncio.create_task(storage.put_file(data.particles_key, particles, NETCDF))
        else:
            await storage.download(data.particles_key, particles)
        try:
            products = await _build(data, particles, workdir / "products", land)
        finally:
            if upload is not None:
                await upload
        stored = await _store(data, products, storage)
    mission_id = str(data.mission_id)
    result = MissionResult(
        summary=products.summary,
        artifacts=[
            _artifact(name, obj, href=artifact_href(settings.public_base_url, mission_id, name))
            for name, obj in stored
        ],
    )
    ready = ResultsReadyV1(
        mission_id=data.mission_id,
        tenant=data.tenant,
        request=data.request,
        artifacts=result.public_artifacts(),
        summary=result.summary,
    )
    return StageOutcome(
        status=MissionStatus.RESULTS_READY,
        emits=[ready],
        result=result,
        shards_merged=bool(simulated),
    )


async def _merge_shards(
    simulated: list[SimulationCompletedV1], workdir: Path, merged: Path, storage: ArtifactStore
) -> SimulationCompletedV1:
    """The shards' trajectories as one particle file (`merged`, to be stored as the
    mission's own); the completion of the whole mission (counts summed, forcing shares
    recomputed)."""
    first = simulated[0]
    paths = [workdir / f"shard-{s.shard.index:04d}.nc" for s in simulated if s.shard]
    await asyncio.gather(
        *(storage.download(s.particles_key, p) for s, p in zip(simulated, paths, strict=True))
    )
    with span("merge shards", shards=len(paths)):
        await asyncio.to_thread(merge_particle_files, paths, merged)
    return first.model_copy(
        update={
            "particles_key": particles_key(first.tenant, str(first.mission_id)),
            "particles_total": sum(s.particles_total for s in simulated),
            "particles_active": sum(s.particles_active for s in simulated),
            "particles_stranded": sum(s.particles_stranded for s in simulated),
            "forcing": merged_forcing([s.forcing for s in simulated]),
            "shard": None,
        }
    )


def merged_forcing(per_shard: list[list[ForcingUsed]]) -> list[ForcingUsed]:
    """Each layer's particle-steps summed over the shards, shares recomputed per variable."""
    layers = per_shard[0]
    steps = [sum(shard[i].particle_steps or 0 for shard in per_shard) for i in range(len(layers))]
    if not any(steps):
        return layers
    totals: dict[str, int] = {}
    for layer, served in zip(layers, steps, strict=True):
        totals[layer.variable] = totals.get(layer.variable, 0) + served
    return [
        layer.model_copy(
            update={
                "particle_steps": served,
                "share": served / totals[layer.variable] if totals[layer.variable] else None,
            }
        )
        for layer, served in zip(layers, steps, strict=True)
    ]


async def _build(
    data: SimulationCompletedV1, particles: Path, out_dir: Path, land: LandMask
) -> Products:
    """Write the products of the particle file `particles` into `out_dir`."""
    return await asyncio.to_thread(
        build_products,
        particles,
        out_dir,
        forcing=data.forcing,
        times=planning_times(data.request),
        title=mission_title(data.request),
        land=land,
        scenarios=scenario_labels(data.request),
    )


def mission_title(request: MissionCreate) -> str:
    if request.scenarios is None:
        return f"{request.name} ({request.object_type})"
    return f"{request.name} ({len(request.scenarios)} scenarios)"


def scenario_labels(request: MissionCreate) -> list[ScenarioLabel]:
    """The scenarios in request order (the particle file's `origin_marker`), weights
    summing to 1."""
    scenarios = request.scenario_list()
    total = sum(s.weight for s in scenarios)
    return [ScenarioLabel(s.name, s.weight / total) for s in scenarios]


async def _store(
    data: SimulationCompletedV1, products: Products, storage: ArtifactStore
) -> list[tuple[str, StoredObject]]:
    """Store the products under the mission's prefix; the raw particle file comes first."""
    prefix = f"{data.tenant}/{data.mission_id}/"
    stored: list[tuple[str, StoredObject]] = []
    raw = await storage.head(data.particles_key)
    if raw is not None:
        stored.append((RAW_PARTICLES, raw))
    for product in products.artifacts:
        obj = await storage.put_file(prefix + product.name, product.path, product.media_type)
        stored.append((product.name, obj))
    return stored


def _artifact(name: str, obj: StoredObject, *, href: str) -> StoredArtifact:
    return StoredArtifact(
        name=name,
        media_type=obj.media_type,
        href=href,
        bytes=obj.bytes,
        sha256=obj.sha256,
        key=obj.key,
    )


STAGE = Stage(name="postprocess", consumes=SimulationCompletedV1, run=postprocess)
