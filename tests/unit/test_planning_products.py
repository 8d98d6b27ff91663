"""Sweep widths, patterns, searches as recorded, the plan stage and its products."""

from __future__ import annotations

import json
import math
import uuid
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from driftline.contracts.envelope import Envelope, stage_source
from driftline.contracts.events import PlanCompletedV1, PlanRequestedV1
from driftline.contracts.plans import PlanCreate, SearchRecord, UnitType
from driftline.errors import PermanentError
from driftline.planning.areas import Rectangle
from driftline.planning.detection import KM_PER_NM
from driftline.planning.history import recorded_search
from driftline.planning.patterns import PatternKind, choose_pattern, parallel_sweep
from driftline.planning.products import degrees_minutes, position
from driftline.planning.sweep_width import (
    NoSweepWidth,
    corrected_sweep_width,
    object_class,
    sweep_width_table,
)
from driftline.settings import Settings
from driftline.storage.local import LocalArtifactStore
from tests.fakes import write_particles
from workers.plan import STAGE, plan

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def test_sweep_width_table_cites_its_source_and_corrects() -> None:
    assert "IAMSAR" in sweep_width_table()["source"]
    assert object_class("PIW-1") == "person_in_water"
    assert object_class("LIFE-RAFT-DB-10") == "liferaft_4"
    assert object_class("OIL-DRUM") is None
    calm = corrected_sweep_width(
        object_type="LIFE-RAFT-DB-10", unit_type=UnitType.VESSEL, visibility_nm=10
    )
    assert calm.nm == pytest.approx(4.2)
    assert calm.uncorrected_km == pytest.approx(4.2 * KM_PER_NM)
    rough = corrected_sweep_width(
        object_type="LIFE-RAFT-DB-10",
        unit_type=UnitType.VESSEL,
        visibility_nm=7.5,  # between the 5 and 10 NM columns
        wind_kt=20,
        fatigue=True,
    )
    assert rough.nm == pytest.approx((3.2 + 4.2) / 2 * 0.5 * 0.9)  # small object, 15-25 kt
    big = corrected_sweep_width(
        object_type="COASTAL-FREIGHTER", unit_type=UnitType.VESSEL, visibility_nm=10, sea_m=2.0
    )
    assert big.nm == pytest.approx(10.7 * 0.9)
    given = corrected_sweep_width(
        object_type="OIL-DRUM", unit_type=UnitType.HELICOPTER, visibility_nm=5, given_km=0.7
    )
    assert given.km == 0.7 and given.source == "given"
    with pytest.raises(NoSweepWidth):
        corrected_sweep_width(object_type="OIL-DRUM", unit_type=UnitType.VESSEL, visibility_nm=5)


def test_parallel_sweep_fills_the_rectangle_at_the_track_spacing() -> None:
    rect = Rectangle(0.0, 0.0, 10.0, 4.0, 30.0)
    pattern = parallel_sweep(rect, 1.0, speed_kmh=20.0)
    assert pattern.kind is PatternKind.PARALLEL_SWEEP
    assert pattern.legs == 4 and pattern.track_spacing_km == pytest.approx(1.0)
    assert len(pattern.points) == 8
    # 4 legs of 9 km and 3 crossovers of 1 km, at 20 km/h.
    assert pattern.track_length_km == pytest.approx(4 * 9 + 3 * 1)
    assert pattern.points[-1].hours == pytest.approx(39 / 20)
    polygon = rect.polygon()
    from shapely import Point

    assert all(polygon.contains(Point(p.x, p.y)) for p in pattern.points)


def test_small_square_area_gets_an_expanding_square() -> None:
    rect = Rectangle(1.0, 2.0, 3.0, 2.8, 0.0)
    pattern = choose_pattern(rect, sweep_width_km=1.0, coverage=1.0, speed_kmh=10.0)
    assert pattern.kind is PatternKind.EXPANDING_SQUARE
    assert (pattern.points[0].x, pattern.points[0].y) == (1.0, 2.0)  # starts at the datum
    legs = [
        math.hypot(b.x - a.x, b.y - a.y)
        for a, b in zip(pattern.points, pattern.points[1:], strict=False)
    ]
    assert legs[:4] == pytest.approx([1.0, 1.0, 2.0, 2.0])
    long = choose_pattern(Rectangle(0, 0, 30, 5, 0), 1.0, 1.0, 10.0)
    assert long.kind is PatternKind.PARALLEL_SWEEP


def test_degrees_minutes() -> None:
    assert degrees_minutes(60.2057, latitude=True) == "60°12.34'N"
    assert degrees_minutes(4.0535, latitude=False) == "004°03.21'E"
    assert degrees_minutes(-0.5, latitude=False) == "000°30.00'W"
    assert degrees_minutes(59.99999, latitude=True) == "60°00.00'N"
    assert position(-70.25, -33.5) == "33°30.00'S 070°15.00'W"


def test_flown_track_sweeps_a_corridor_at_coverage_one() -> None:
    record = SearchRecord(
        id=uuid.uuid4(),
        searched_at=T0,
        geometry={"type": "LineString", "coordinates": [[4.0, 60.0], [4.3, 60.0]]},
        sweep_width_km=1.0,
    )
    (area,) = recorded_search(record).areas
    assert area.coverage == pytest.approx(1.0, rel=0.01)
    polygon = SearchRecord(
        id=uuid.uuid4(),
        searched_at=T0,
        geometry={"type": "Polygon", "coordinates": [[[4, 60], [4.1, 60], [4.1, 60.1], [4, 60]]]},
        sweep_width_km=2.0,
        track_spacing_km=1.0,
    )
    assert recorded_search(polygon).areas[0].coverage == pytest.approx(2.0)


def _request(
    units: list[dict[str, object]], searches: list[SearchRecord] | None = None
) -> Envelope[PlanRequestedV1]:
    mission_id = uuid.uuid4()
    data = PlanRequestedV1(
        mission_id=mission_id,
        tenant="acme",
        plan_id=uuid.uuid4(),
        request=PlanCreate.model_validate(
            {"commence_time": "2024-01-01T01:30:00Z", "units": units}
        ),
        object_type="LIFE-RAFT-DB-10",
        title="Raft adrift",
        particles_key=f"acme/{mission_id}/raw/particles.nc",
        searches=searches or [],
    )
    return Envelope(data=data, source=stage_source("api"))


UNITS: list[dict[str, object]] = [
    {"name": "RESCUE 1", "type": "vessel", "speed_kn": 12, "time_on_scene_h": 2},
    {"name": "HELO 2", "type": "helicopter", "speed_kn": 90, "time_on_scene_h": 1},
]


async def test_plan_stage_stores_products_and_emits_plan_completed(tmp_path: Path) -> None:
    settings = Settings(
        work_dir=tmp_path / "work", artifact_dir=tmp_path / "store", public_base_url="http://x"
    )
    event = _request(UNITS)
    particles = tmp_path / "particles.nc"
    write_particles(particles, n=2000, stranded=0)
    async with LocalArtifactStore(settings.artifact_dir) as storage:
        await storage.put_file(event.data.particles_key, particles, "application/x-netcdf")
        outcome = await plan(event, settings=settings, storage=storage)
        (completed,) = outcome.emits
        assert isinstance(completed, PlanCompletedV1)
        names = [a.name for a in completed.artifacts]
        assert names == ["plan.geojson", "plan.kml", "plan.gpx", "plan.png", "briefing.txt"]
        prefix = f"acme/{event.data.mission_id}/plans/{event.data.plan_id}/"
        geojson = json.loads(await storage.get_bytes(prefix + "plan.geojson"))
        gpx = ET.fromstring(await storage.get_bytes(prefix + "plan.gpx"))
        briefing = (await storage.get_bytes(prefix + "briefing.txt")).decode()
        png = await storage.get_bytes(prefix + "plan.png")

    summary = completed.summary
    assert [a.unit for a in summary.areas] == ["RESCUE 1", "HELO 2"]
    assert summary.pos == pytest.approx(sum(a.pos for a in summary.areas), abs=1e-4)
    assert 0 < summary.pos <= summary.optimal_pos + 1e-6
    assert summary.cumulative_pos_before == 0 and summary.cumulative_pos_after == summary.pos
    areas = [f for f in geojson["features"] if f["properties"]["kind"] == "search area"]
    assert len(areas) == 2 and areas[0]["properties"]["pos"] == round(summary.areas[0].pos, 4)
    routes = gpx.findall("{http://www.topografix.com/GPX/1/1}rte")
    assert len(routes) == 2
    first = routes[0].find("{http://www.topografix.com/GPX/1/1}rtept")
    assert first is not None and float(first.attrib["lat"]) == pytest.approx(
        summary.areas[0].first_waypoint.lat, abs=1e-6
    )
    assert "UNIT RESCUE 1" in briefing and "Track spacing" in briefing and "°" in briefing
    assert degrees_minutes(summary.areas[0].first_waypoint.lat, latitude=True) in briefing
    assert png.startswith(b"\x89PNG")
    assert STAGE.dependencies == ("settings", "storage")


async def test_plan_stage_is_deterministic_and_applies_searches(tmp_path: Path) -> None:
    settings = Settings(work_dir=tmp_path / "work", artifact_dir=tmp_path / "store")
    particles = tmp_path / "particles.nc"
    write_particles(particles, n=1500, stranded=0)
    event = _request(UNITS[:1])
    async with LocalArtifactStore(settings.artifact_dir) as storage:
        await storage.put_file(event.data.particles_key, particles, "application/x-netcdf")
        once = (await plan(event, settings=settings, storage=storage)).emits[0]
        twice = (await plan(event, settings=settings, storage=storage)).emits[0]
        assert isinstance(once, PlanCompletedV1) and isinstance(twice, PlanCompletedV1)
        assert once.summary == twice.summary  # a redelivered request: the very same plan
        area = once.summary.areas[0]
        searched = SearchRecord(
            id=uuid.uuid4(),
            searched_at=T0 + timedelta(hours=1, minutes=30),
            geometry={"type": "Polygon", "coordinates": [[*area.corners, area.corners[0]]]},
            pod=area.pod,
        )
        after = _request(UNITS[:1], [searched])
        after.data.particles_key = event.data.particles_key
        updated = (await plan(after, settings=settings, storage=storage)).emits[0]
    assert isinstance(updated, PlanCompletedV1)
    assert updated.summary.searches_applied == 1
    assert updated.summary.cumulative_pos_before == pytest.approx(area.pos, abs=1e-3)
    assert updated.summary.cumulative_pos_after > updated.summary.cumulative_pos_before


async def test_plan_stage_fails_the_plan_when_particles_are_gone(tmp_path: Path) -> None:
    settings = Settings(work_dir=tmp_path / "work", artifact_dir=tmp_path / "store")
    async with LocalArtifactStore(settings.artifact_dir) as storage:
        with pytest.raises(PermanentError) as info:
            await plan(_request(UNITS), settings=settings, storage=storage)
    assert info.value.reason == "particles_missing"
    assert np.isfinite(1.0)
