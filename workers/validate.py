"""Stage 1, validate: can this mission be simulated at all? Fail early, in plain words."""

from __future__ import annotations

from driftline.contracts.envelope import Envelope
from driftline.contracts.events import MissionRequestedV1, MissionValidatedV1
from driftline.contracts.missions import MissionCreate, MissionStatus
from driftline.errors import InvalidMission
from driftline.forcing.catalog import Catalog
from driftline.forcing.plan import plan_forcing
from driftline.landmask import LandMask
from driftline.runtime.stage import Stage, StageOutcome
from driftline.settings import Settings
from driftline.simulation.leeway import resolve_object_type, seed_from_mission_id


def _where(lat: float, lon: float) -> str:
    return f"{abs(lat):.4f}{'N' if lat >= 0 else 'S'} {abs(lon):.4f}{'E' if lon >= 0 else 'W'}"


def check_limits(request: MissionCreate, settings: Settings) -> None:
    if request.particles > settings.max_particles:
        raise InvalidMission(
            "too_many_particles",
            f"{request.particles} particles requested; this deployment allows at most "
            f"{settings.max_particles}.",
        )
    if request.duration_hours > settings.max_duration_hours:
        raise InvalidMission(
            "duration_too_long",
            f"{request.duration_hours} h requested; at most {settings.max_duration_hours} h.",
        )


def check_at_sea(request: MissionCreate, land: LandMask) -> None:
    for label, position in (
        ("last known position", request.last_known_position),
        ("end position", request.end_position),
    ):
        if position is not None and land.contains(position.lon, position.lat):
            raise InvalidMission(
                "position_on_land",
                f"The {label} {_where(position.lat, position.lon)} is on land; "
                "check the coordinates (latitude first, decimal degrees).",
            )


async def validate(
    event: Envelope[MissionRequestedV1],
    *,
    settings: Settings,
    catalog: Catalog,
    land: LandMask,
) -> StageOutcome:
    """Check object type, limits, sea position and forcing coverage; emit `validated`."""
    request = event.data.request
    category = resolve_object_type(request.object_type)
    check_limits(request, settings)
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
    return StageOutcome(
        status=MissionStatus.VALIDATED,
        emits=[validated],
        detail=f"object {category.key}; forcing {sources}",
    )


STAGE = Stage(name="validate", consumes=MissionRequestedV1, run=validate)
