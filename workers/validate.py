"""Stage 1, validate: can this mission be simulated at all? Fail early, in plain words."""

from __future__ import annotations

from itertools import pairwise

from driftline.contracts.envelope import Envelope
from driftline.contracts.events import MissionRequestedV1, MissionValidatedV1
from driftline.contracts.missions import MissionCreate, MissionStatus, Scenario
from driftline.errors import InvalidMission
from driftline.forcing.catalog import Catalog
from driftline.forcing.plan import plan_forcing
from driftline.landmask import LandMask
from driftline.missions import too_many_particles
from driftline.runtime.stage import Stage, StageOutcome
from driftline.settings import Settings, particle_limit
from driftline.simulation.leeway import (
    LeewayCategory,
    resolve_object_type,
    seed_from_mission_id,
)


def _where(lat: float, lon: float) -> str:
    return f"{abs(lat):.4f}{'N' if lat >= 0 else 'S'} {abs(lon):.4f}{'E' if lon >= 0 else 'W'}"


def check_limits(request: MissionCreate, settings: Settings, tenant: str) -> None:
    limit = particle_limit(settings, tenant)
    if request.particles > limit:
        raise InvalidMission("too_many_particles", too_many_particles(request.particles, limit))
    if request.duration_hours > settings.max_duration_hours:
        raise InvalidMission(
            "duration_too_long",
            f"{request.duration_hours} h requested; at most {settings.max_duration_hours} h.",
        )


def check_at_sea(request: MissionCreate, land: LandMask) -> None:
    """Positions must be at sea; an area or a track must reach the sea somewhere (a voyage
    leaves from a harbour; its particles seeded on land strand at once and are counted)."""
    several = request.scenarios is not None
    for scenario in request.scenario_list():
        whose = f" of scenario {scenario.name!r}" if several else ""
        for label, position in (
            ("last known position", scenario.last_known_position),
            ("end position", scenario.end_position),
        ):
            if position is not None and land.contains(position.lon, position.lat):
                raise InvalidMission(
                    "position_on_land",
                    f"The {label}{whose} {_where(position.lat, position.lon)} is on land; "
                    "check the coordinates (latitude first, decimal degrees).",
                )
        samples = _shape_samples(scenario)
        if samples and all(land.contains(lon, lat) for lon, lat in samples):
            shape = "area" if scenario.area is not None else "track"
            raise InvalidMission(
                "position_on_land",
                f"The {shape}{whose} lies entirely on land; check the coordinates "
                "(GeoJSON is [longitude, latitude]).",
            )


def _shape_samples(scenario: Scenario) -> list[tuple[float, float]]:
    """Points spread over an area (vertices and an inner point) or a track (points, legs)."""
    if scenario.area is not None:
        from shapely import Polygon

        exterior, *holes = scenario.area.geometry.coordinates
        inner = Polygon(exterior, holes).representative_point()
        return [*exterior, (inner.x, inner.y)]
    if scenario.track is not None:
        points = [(p.lon, p.lat) for p in scenario.track]
        middles = [((a[0] + b[0]) / 2, (a[1] + b[1]) / 2) for a, b in pairwise(points)]
        return points + middles
    return []


def check_object_types(request: MissionCreate) -> list[LeewayCategory]:
    """Each scenario's Leeway category (InvalidMission with hints for an unknown one)."""
    return [resolve_object_type(s.object_type) for s in request.scenario_list()]


async def validate(
    event: Envelope[MissionRequestedV1],
    *,
    settings: Settings,
    catalog: Catalog,
    land: LandMask,
) -> StageOutcome:
    """Check object types, limits, sea positions and forcing coverage; emit `validated`.

    With scenarios, the forcing is planned for the derived `last_known_position`, whose
    area holds every scenario's seed positions, so coverage is checked for all of them.
    """
    request = event.data.request
    category = resolve_object_type(request.object_type)
    categories = check_object_types(request)
    check_limits(request, settings, event.data.tenant)
    check_at_sea(request, land)
    plan = plan_forcing(catalog, request)  # raises ForcingGap
    validated = MissionValidatedV1(
        mission_id=event.data.mission_id,
        tenant=event.data.tenant,
        request=request,
        object_type_id=category.id,
        object_type_key=category.key,
        seed=seed_from_mission_id(str(event.data.mission_id)),
    )
    sources = ", ".join(f"{v}: {c.name}" for v, c in sorted(plan.sources.items()))
    objects = ", ".join(dict.fromkeys(c.key for c in categories))
    return StageOutcome(
        status=MissionStatus.VALIDATED,
        emits=[validated],
        detail=f"{_scenarios(request)}object {objects}; forcing {sources}",
    )


def _scenarios(request: MissionCreate) -> str:
    if request.scenarios is None:
        return ""
    return f"{len(request.scenarios)} scenarios; "


STAGE = Stage(name="validate", consumes=MissionRequestedV1, run=validate)
