"""Stage 4, post-process: particle cloud → density, containment areas, map, summary.

Products are computed in a worker thread (numpy and matplotlib release the loop) and
stored under `<tenant>/<mission id>/products/…`; the artifact list and summary are kept
on the mission so `GET /results` answers without reading storage.
"""

from __future__ import annotations

import asyncio
import tempfile
from datetime import datetime, timedelta
from pathlib import Path

from driftline.contracts.envelope import Envelope
from driftline.contracts.events import (
    ArtifactRef,
    MissionSummary,
    ResultsReadyV1,
    SimulationCompletedV1,
)
from driftline.contracts.missions import MissionCreate, MissionStatus
from driftline.postprocess.products import build_products
from driftline.runtime.stage import Stage, StageContext, StageOutcome
from driftline.storage.base import StoredObject

#: Containment regions are also drawn at these intervals, for planning search legs.
PLANNING_INTERVAL = timedelta(hours=6)


def planning_times(request: MissionCreate) -> list[datetime]:
    start = request.last_known_position.time
    sign = -1 if request.options.backward else 1
    steps = int(request.duration_hours // 6)
    return [start + sign * k * PLANNING_INTERVAL for k in range(1, steps + 1)]


def artifact_href(base_url: str, mission_id: str, name: str) -> str:
    return f"{base_url.rstrip('/')}/v1/missions/{mission_id}/artifacts/{name}"


async def postprocess(event: Envelope[SimulationCompletedV1], ctx: StageContext) -> StageOutcome:
    """Build and store every SAR product; emit `results.ready` with the summary."""
    data = event.data
    mission_id = str(data.mission_id)
    prefix = f"{data.tenant}/{mission_id}/"
    ctx.settings.work_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=ctx.settings.work_dir) as tmp:
        workdir = Path(tmp)
        particles = workdir / "particles.nc"
        await ctx.storage.download(data.particles_key, particles)
        forcing_used = [f.model_dump() for f in data.forcing]
        products = await asyncio.to_thread(
            build_products,
            particles,
            workdir / "products",
            forcing_used=forcing_used,
            times=planning_times(data.request),
            title=f"{data.request.name} ({data.request.object_type})",
        )
        stored: list[tuple[str, StoredObject]] = []
        raw = await ctx.storage.head(data.particles_key)
        if raw is not None:
            stored.append(("raw/particles.nc", raw))
        for product in products.artifacts:
            obj = await ctx.storage.put_file(
                prefix + product.name, product.path, product.media_type
            )
            stored.append((product.name, obj))
    base = ctx.settings.public_base_url
    artifacts = [
        ArtifactRef(
            name=name,
            media_type=obj.media_type,
            href=artifact_href(base, mission_id, name),
            bytes=obj.bytes,
            sha256=obj.sha256,
        )
        for name, obj in stored
    ]
    summary = MissionSummary.model_validate(
        {
            **products.summary,
            "forcing": data.forcing,
            "synthetic_forcing": any(f.synthetic for f in data.forcing),
        }
    )
    result = {
        "summary": summary.model_dump(mode="json"),
        "artifacts": [
            {**a.model_dump(mode="json"), "key": obj.key}
            for a, (_name, obj) in zip(artifacts, stored, strict=True)
        ],
    }
    return StageOutcome(
        status=MissionStatus.RESULTS_READY,
        emits=[
            ResultsReadyV1(
                mission_id=data.mission_id,
                tenant=data.tenant,
                request=data.request,
                artifacts=artifacts,
                summary=summary,
            )
        ],
        result=result,
    )


STAGE = Stage(name="postprocess", consumes=SimulationCompletedV1, run=postprocess)
