"""Stage `plan` (beside the pipeline, on completed missions): a search plan from the
mission's particle cloud, the searches already recorded and the units at hand.

The particle file is read at the plan's commence time (the nearest output time); the
recorded searches each update the trajectories' weights at their own time (Bayes), so
the plan works on the probability that is still unfound. Products are stored under
`<tenant>/<mission>/plans/<plan id>/` (deterministic keys: a re-run overwrites); the
plan row, the processed-event claim and `plan.completed` commit together
(`plans.PlanEffects`), and a redelivered request changes nothing.
"""

from __future__ import annotations

import asyncio
import tempfile
from dataclasses import dataclass
from pathlib import Path

from driftline.contracts.envelope import Envelope
from driftline.contracts.events import ArtifactRef, PlanCompletedV1, PlanRequestedV1
from driftline.contracts.missions import MissionStatus, utcnow
from driftline.contracts.plans import PlanArea, PlanSummary, Waypoint
from driftline.errors import ArtifactNotFound, PermanentError
from driftline.planning.bayes import Region
from driftline.planning.history import recorded_search
from driftline.planning.planner import SearchPlan, UnitPlan, UnitSpec, plan_search
from driftline.planning.products import PLAN_PRODUCTS, unit_figures
from driftline.planning.sweep_width import corrected_sweep_width
from driftline.plans import PlanEffects, plan_artifact_href, plan_prefix
from driftline.postprocess.cloud import read_cloud
from driftline.postprocess.containment import area_km2
from driftline.runtime.stage import Stage, StageOutcome
from driftline.settings import Settings
from driftline.storage.base import ArtifactStore


@dataclass(frozen=True)
class PlanFiles:
    summary: PlanSummary
    files: list[tuple[str, str, Path]]  # name, media type, path


async def plan(
    event: Envelope[PlanRequestedV1], *, settings: Settings, storage: ArtifactStore
) -> StageOutcome:
    """Make the plan, store its products, emit `plan.completed`."""
    data = event.data
    settings.work_dir.mkdir(parents=True, exist_ok=True)
    prefix = plan_prefix(data.tenant, data.mission_id, data.plan_id)
    with tempfile.TemporaryDirectory(dir=settings.work_dir) as tmp:
        particles = Path(tmp) / "particles.nc"
        try:
            await storage.download(data.particles_key, particles)
        except ArtifactNotFound as exc:
            raise PermanentError(
                "particles_missing", "the mission's particle file is no longer stored"
            ) from exc
        made = await asyncio.to_thread(make_plan, data, particles, Path(tmp) / "products")
        artifacts = []
        for name, media_type, path in made.files:
            stored = await storage.put_file(prefix + name, path, media_type)
            href = plan_artifact_href(settings.public_base_url, data.mission_id, data.plan_id, name)
            artifacts.append(
                ArtifactRef(
                    name=name,
                    media_type=media_type,
                    href=href,
                    bytes=stored.bytes,
                    sha256=stored.sha256,
                )
            )
    completed = PlanCompletedV1(
        mission_id=data.mission_id,
        tenant=data.tenant,
        plan_id=data.plan_id,
        completed_at=utcnow(),
        summary=made.summary,
        artifacts=artifacts,
    )
    # The mission stays completed; PlanEffects never changes its status.
    return StageOutcome(status=MissionStatus.COMPLETED, emits=[completed])


def make_plan(data: PlanRequestedV1, particles_nc: Path, out_dir: Path) -> PlanFiles:
    """The plan and its product files (numpy, shapely and matplotlib: run in a thread)."""
    cloud = read_cloud(particles_nc)
    units = [
        UnitSpec(
            name=unit.name,
            unit_type=unit.type,
            speed_kn=unit.speed_kn,
            time_on_scene_h=unit.time_on_scene_h,
            sweep=corrected_sweep_width(
                object_type=data.object_type,
                unit_type=unit.type,
                visibility_nm=unit.visibility_nm,
                wind_kt=unit.wind_kn,
                sea_m=unit.sea_m,
                fatigue=unit.fatigue,
                given_km=unit.sweep_width_km,
            ),
        )
        for unit in data.request.units
    ]
    result = plan_search(
        cloud.times,
        cloud.lon,
        cloud.lat,
        commence=data.request.commence_time,
        units=units,
        searches=[recorded_search(s) for s in data.searches],
    )
    if result.map.lon.size == 0:
        raise PermanentError(
            "nothing_afloat", "no particle is afloat at the commence time: nothing to search"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    files = []
    for product in PLAN_PRODUCTS:
        path = out_dir / product.name
        product.write(result, path, data.title)
        files.append((product.name, product.media_type, path))
    return PlanFiles(summary(result), files)


def summary(result: SearchPlan) -> PlanSummary:
    return PlanSummary(
        commence_time=result.commence,
        pos=round(result.pos, 6),
        optimal_pos=round(result.optimal_pos, 6),
        cumulative_pos_before=round(result.cumulative_pos_before, 6),
        cumulative_pos_after=round(result.cumulative_pos_after, 6),
        searches_applied=result.searches_applied,
        areas=[_area(unit) for unit in result.units],
        unassigned_units=result.unassigned,
        containment_km2={
            str(level): round(_km2(region), 3) for level, region in result.map.containment.items()
        },
    )


def _km2(region: Region) -> float:
    return float(area_km2(region))


def _area(unit: UnitPlan) -> PlanArea:
    figures = unit_figures(unit)
    first = unit.waypoints[0]
    return PlanArea(
        **figures,
        corners=[[round(lon, 6), round(lat, 6)] for lon, lat in unit.corners],
        first_waypoint=Waypoint(lat=first.lat, lon=first.lon, time=first.time),
    )


STAGE = Stage(name="plan", consumes=PlanRequestedV1, run=plan, effects=PlanEffects)
