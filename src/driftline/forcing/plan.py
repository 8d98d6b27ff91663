"""What forcing a mission needs: its seed area, the padded subset area and the time window.

Also the cache key of a subset: missions whose rounded area and window match share one
stored file.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from driftline.contracts.missions import MissionCreate
from driftline.forcing.catalog import BBox, Catalog, ChosenSource
from driftline.geo import km_to_deg_lat, km_to_deg_lon

#: Fastest plausible drift (current plus leeway), m/s: bounds how far an object can go.
MAX_DRIFT_SPEED_MS = 1.2
#: Extra time either side of the window so readers can interpolate at its edges.
TIME_MARGIN = timedelta(hours=1)
#: Subset areas and windows are rounded outward to this grid so nearby missions share them.
AREA_GRID_DEG = 0.5
WINDOW_GRID_H = 6


@dataclass(frozen=True)
class ForcingPlan:
    """The sources chosen for a mission and the area and window to cut from them.

    `layers` holds, per variable, the ordered sources OpenDrift consults (preferred
    first, fallbacks after); usually one.
    """

    seed_area: BBox
    area: BBox  # seed area padded by the drift bound
    start: datetime
    end: datetime
    layers: dict[str, list[ChosenSource]]

    @property
    def sources(self) -> dict[str, ChosenSource]:
        """The preferred source of each variable (the first of its layers)."""
        return {variable: stack[0] for variable, stack in self.layers.items()}

    def ordered(self) -> list[ChosenSource]:
        """Every layer, variables in name order, each variable's sources best first."""
        return [chosen for _, stack in sorted(self.layers.items()) for chosen in stack]

    def cache_key(self, chosen: ChosenSource) -> str:
        """Deterministic key of (source, area, window): same inputs → same stored subset."""
        return cache_key(chosen, self.area, self.start, self.end)


def drift_bound_km(duration_hours: float, max_speed_ms: float = MAX_DRIFT_SPEED_MS) -> float:
    """How far an object can drift in `duration_hours`, plus a fixed 10 km margin."""
    return max_speed_ms * duration_hours * 3.6 + 10.0


def _pad(box: BBox, km: float) -> BBox:
    """`box` grown by `km` on every side, clipped to the globe."""
    dlat = km_to_deg_lat(km)
    dlon = km_to_deg_lon(km, (box.lat_min + box.lat_max) / 2)
    return BBox(
        max(box.lon_min - dlon, -180),
        max(box.lat_min - dlat, -90),
        min(box.lon_max + dlon, 180),
        min(box.lat_max + dlat, 90),
    )


def simulation_window(request: MissionCreate) -> tuple[datetime, datetime]:
    """First and last instant the simulation touches (seeding through the end of the run)."""
    lkp = request.last_known_position
    duration = timedelta(hours=request.duration_hours)
    if request.options.backward:
        return lkp.time - duration, lkp.time
    return lkp.time, lkp.time + duration


def seed_area(request: MissionCreate) -> BBox:
    """Where particles are seeded: the position(s) padded by three times their radius."""
    points = [request.last_known_position]
    if request.end_position is not None:
        points.append(request.end_position)
    radius_km = max(p.radius_m for p in points) / 1000 * 3  # 3 sigma of a Gaussian radius
    box = BBox(
        min(p.lon for p in points),
        min(p.lat for p in points),
        max(p.lon for p in points),
        max(p.lat for p in points),
    )
    return _pad(box, radius_km)


def plan_forcing(catalog: Catalog, request: MissionCreate) -> ForcingPlan:
    """Choose the sources and the subset for `request`; raises ForcingGap when uncovered."""
    start, end = simulation_window(request)
    seeds = seed_area(request)
    area = _pad(seeds, drift_bound_km(request.duration_hours))
    layers = catalog.choose(
        {"current", "wind"}, seeds, start, end, preferred=request.forcing.model_dump(), reach=area
    )
    return ForcingPlan(
        seed_area=seeds,
        area=area,
        start=start - TIME_MARGIN,
        end=end + TIME_MARGIN,
        layers=layers,
    )


def _round_out(box: BBox) -> BBox:
    g = AREA_GRID_DEG
    return BBox(
        math.floor(box.lon_min / g) * g,
        math.floor(box.lat_min / g) * g,
        math.ceil(box.lon_max / g) * g,
        math.ceil(box.lat_max / g) * g,
    )


def _floor_hours(moment: datetime, hours: int) -> datetime:
    base = moment.replace(minute=0, second=0, microsecond=0)
    return base - timedelta(hours=base.hour % hours)


def subset_bounds(area: BBox, start: datetime, end: datetime) -> tuple[BBox, datetime, datetime]:
    """The rounded area and window actually cut (a superset of what was asked)."""
    lo = _floor_hours(start, WINDOW_GRID_H)
    hi = _floor_hours(end, WINDOW_GRID_H)
    if hi < end:
        hi += timedelta(hours=WINDOW_GRID_H)
    return _round_out(area), lo, hi


def cache_key(chosen: ChosenSource, area: BBox, start: datetime, end: datetime) -> str:
    """`<source>-<variable>-<digest>`; the digest changes when the source's data may have."""
    box, lo, hi = subset_bounds(area, start, end)
    identity = {
        "source": chosen.name,
        "variable": chosen.variable,
        "location": chosen.location,
        "values": chosen.config.values.get(chosen.variable),
        "source_end": chosen.coverage.end.isoformat() if chosen.coverage else None,
        "area": [box.lon_min, box.lat_min, box.lon_max, box.lat_max],
        "window": [lo.isoformat(), hi.isoformat()],
    }
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:20]
    return f"{chosen.name}-{chosen.variable}-{digest}"
