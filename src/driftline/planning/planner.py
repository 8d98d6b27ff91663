"""A search plan from a particle cloud, the searches already made and the units at hand.

1. Weights: every trajectory starts equally likely; each recorded search (nothing found)
   multiplies a trajectory's weight by 1 - POD at its position at that search's time.
2. At the commence time, the afloat particles with their weights are the probability map;
   Stone's optimal allocation of the units' total effort over it gives the bound no plan
   can beat (`optimal_pos`).
3. Each unit, largest effort first, gets the non-overlapping rectangle with the highest
   POS for its effort, and a pattern (track spacing, legs, timed waypoints) over it.
4. The plan's POS and the cumulative POS it would bring are computed per particle.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
from shapely import Polygon

from driftline.contracts.plans import UnitType
from driftline.planning.allocation import optimal_allocation
from driftline.planning.areas import Rectangle, fit_rectangle, split_rectangle
from driftline.planning.bayes import (
    Region,
    SearchedArea,
    pod_of_search,
    update,
    weighted_containment,
)
from driftline.planning.detection import KM_PER_NM, effort_km2, pod, pod_array
from driftline.planning.frame import LocalFrame
from driftline.planning.patterns import Pattern, choose_pattern
from driftline.planning.sweep_width import SweepWidth

#: Cells across the probability grid the optimal allocation runs on.
ALLOCATION_CELLS = 80


@dataclass(frozen=True)
class UnitSpec:
    """A search unit as the coordinator gives it, with its (corrected) sweep width."""

    name: str
    unit_type: UnitType
    speed_kn: float
    time_on_scene_h: float
    sweep: SweepWidth

    @property
    def effort_km2(self) -> float:
        return effort_km2(self.sweep.km, self.speed_kn, self.time_on_scene_h)

    @property
    def speed_kmh(self) -> float:
        return self.speed_kn * KM_PER_NM


@dataclass(frozen=True)
class RecordedSearch:
    """A search that found nothing: when, and what it covered."""

    time: datetime
    areas: list[SearchedArea]


@dataclass(frozen=True)
class Waypoint:
    lon: float
    lat: float
    time: datetime


@dataclass(frozen=True)
class UnitPlan:
    """One unit's area, pattern and figures."""

    unit: UnitSpec
    rectangle: Rectangle  # local frame, km
    corners: list[tuple[float, float]]  # lon, lat; counter-clockwise from the first leg's side
    pattern: Pattern
    waypoints: list[Waypoint]
    effort_km2: float
    coverage: float
    pod: float
    poc: float
    pos: float

    @property
    def area_km2(self) -> float:
        return self.rectangle.area

    def outline(self) -> Polygon:
        return Polygon(self.corners)


@dataclass(frozen=True)
class ProbabilityMap:
    """Afloat particles at one time with their normalised weights (summing to the share
    of the unfound probability that is afloat then)."""

    time: datetime
    lon: np.ndarray
    lat: np.ndarray
    weights: np.ndarray
    containment: dict[int, Region] = field(default_factory=dict)


@dataclass(frozen=True)
class SearchPlan:
    commence: datetime
    units: list[UnitPlan]
    pos: float
    optimal_pos: float
    cumulative_pos_before: float
    cumulative_pos_after: float
    searches_applied: int
    map: ProbabilityMap
    frame: LocalFrame  # the local km frame the rectangles are in
    unassigned: list[str] = field(default_factory=list)  # units no area could be found for


def remaining_weights(
    times: Sequence[datetime],
    lon: np.ndarray,
    lat: np.ndarray,
    searches: Sequence[RecordedSearch],
) -> np.ndarray:
    """Unnormalised weights per trajectory after `searches` (each at its nearest time)."""
    weights = np.full(lon.shape[0], 1.0 / lon.shape[0])
    stamps = np.array([t.timestamp() for t in times])
    for search in searches:
        index = int(np.argmin(np.abs(stamps - search.time.timestamp())))
        weights = update(weights, pod_of_search(lon[:, index], lat[:, index], search.areas))
    return weights


def probability_map(
    moment: datetime, lon: np.ndarray, lat: np.ndarray, weights: np.ndarray
) -> ProbabilityMap:
    """The afloat particles at `moment`, weights normalised over every trajectory."""
    afloat = np.isfinite(lon) & np.isfinite(lat)
    share = weights / float(weights.sum())
    lon, lat, w = lon[afloat], lat[afloat], share[afloat]
    return ProbabilityMap(moment, lon, lat, w, weighted_containment(lon, lat, w))


def plan_search(
    times: Sequence[datetime],
    lon: np.ndarray,
    lat: np.ndarray,
    *,
    commence: datetime,
    units: Sequence[UnitSpec],
    searches: Sequence[RecordedSearch] = (),
) -> SearchPlan:
    """The plan for `units` from `commence`, on the cloud (trajectory, time) in lon/lat."""
    unfound = remaining_weights(times, lon, lat, searches)
    stamps = np.array([t.timestamp() for t in times])
    index = int(np.argmin(np.abs(stamps - commence.timestamp())))
    pmap = probability_map(commence, lon[:, index], lat[:, index], unfound)
    unfound_total = float(unfound.sum())
    frame = LocalFrame.around(pmap.lon, pmap.lat, pmap.weights)
    x, y = frame.to_xy(pmap.lon, pmap.lat)
    plans, unassigned = _assign(frame, x, y, pmap.weights, units, commence)
    detected = np.zeros(x.shape)
    for plan in plans:
        inside = plan.rectangle.contains(x, y)
        detected[inside] = 1 - (1 - detected[inside]) * (1 - plan.pod)
    pos = float(np.sum(pmap.weights * detected))
    total_effort = sum(u.effort_km2 for u in units)
    return SearchPlan(
        commence=commence,
        units=plans,
        pos=pos,
        optimal_pos=_optimal_pos(x, y, pmap.weights, total_effort),
        cumulative_pos_before=1.0 - unfound_total,
        cumulative_pos_after=1.0 - unfound_total * (1.0 - pos),
        searches_applied=len(searches),
        map=pmap,
        frame=frame,
        unassigned=unassigned,
    )


def _assign(
    frame: LocalFrame,
    x: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
    units: Sequence[UnitSpec],
    commence: datetime,
) -> tuple[list[UnitPlan], list[str]]:
    """Rectangles for the units, none overlapping another: the better (in total POS) of
    one area for all the effort cut into strips per unit, and one area per unit chosen
    in turn (largest effort first). The first wins where the units' efforts are best
    spent on one core; the second where the probability has several lobes."""
    options = [_shared(frame, x, y, w, units, commence), _in_turn(frame, x, y, w, units, commence)]
    return max(options, key=lambda option: _total_pos(option[0], x, y, w))


def _total_pos(plans: Sequence[UnitPlan], x: np.ndarray, y: np.ndarray, w: np.ndarray) -> float:
    missed = np.ones(x.shape)
    for plan in plans:
        missed[plan.rectangle.contains(x, y)] *= 1 - plan.pod
    return float(np.sum(w * (1 - missed)))


def _shared(
    frame: LocalFrame,
    x: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
    units: Sequence[UnitSpec],
    commence: datetime,
) -> tuple[list[UnitPlan], list[str]]:
    """The best area for the units' total effort, cut into one strip per unit."""
    if not units:
        return [], []
    whole = fit_rectangle(x, y, w, sum(u.effort_km2 for u in units))
    if whole is None:
        return [], [u.name for u in units]
    strips = split_rectangle(whole, [u.effort_km2 for u in units])
    plans = [
        _unit_plan(frame, unit, strip, float(w[strip.contains(x, y)].sum()), commence)
        for unit, strip in zip(units, strips, strict=True)
    ]
    return plans, []


def _in_turn(
    frame: LocalFrame,
    x: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
    units: Sequence[UnitSpec],
    commence: datetime,
) -> tuple[list[UnitPlan], list[str]]:
    """One area per unit, largest effort first, each on the probability left."""
    remaining = w.copy()
    taken: list[Polygon] = []
    plans: list[UnitPlan] = []
    unassigned: list[str] = []
    for unit in sorted(units, key=lambda u: u.effort_km2, reverse=True):
        rect = fit_rectangle(x, y, remaining, unit.effort_km2, taken)
        if rect is None:
            unassigned.append(unit.name)
            continue
        inside = rect.contains(x, y)
        plans.append(_unit_plan(frame, unit, rect, float(remaining[inside].sum()), commence))
        remaining[inside] = 0.0
        taken.append(rect.polygon())
    order = {u.name: i for i, u in enumerate(units)}
    plans.sort(key=lambda p: order[p.unit.name])
    return plans, unassigned


def _unit_plan(
    frame: LocalFrame, unit: UnitSpec, rect: Rectangle, poc: float, commence: datetime
) -> UnitPlan:
    coverage = unit.effort_km2 / rect.area
    pattern = choose_pattern(rect, unit.sweep.km, coverage, unit.speed_kmh)
    waypoints = [
        Waypoint(*frame.point_lonlat(p.x, p.y), commence + timedelta(hours=p.hours))
        for p in pattern.points
    ]
    detection = pod(coverage)
    return UnitPlan(
        unit=unit,
        rectangle=rect,
        corners=[frame.point_lonlat(cx, cy) for cx, cy in rect.corners()],
        pattern=pattern,
        waypoints=waypoints,
        effort_km2=unit.effort_km2,
        coverage=coverage,
        pod=detection,
        poc=poc,
        pos=poc * detection,
    )


def _optimal_pos(x: np.ndarray, y: np.ndarray, w: np.ndarray, effort: float) -> float:
    """Stone's bound on the particles' probability grid."""
    if x.size == 0 or effort <= 0:
        return 0.0
    spread = max(float(np.ptp(x)), float(np.ptp(y)), 0.05)
    cell = spread / ALLOCATION_CELLS
    ex = np.arange(x.min() - cell, x.max() + 2 * cell, cell)
    ey = np.arange(y.min() - cell, y.max() + 2 * cell, cell)
    grid, _, _ = np.histogram2d(x, y, bins=[ex, ey], weights=w)
    return optimal_allocation(grid, cell * cell, effort).pos


def pod_per_particle(plan: SearchPlan) -> np.ndarray:
    """Each afloat particle's POD if the plan is carried out (for the map)."""
    x, y = plan.frame.to_xy(plan.map.lon, plan.map.lat)
    coverage = np.zeros(x.shape)
    for unit in plan.units:
        coverage[unit.rectangle.contains(x, y)] += unit.coverage
    return pod_array(coverage)
