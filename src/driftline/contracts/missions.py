"""The mission request a coordinator submits, and the shapes the REST API answers with."""

from __future__ import annotations

import itertools
import math
import uuid
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AnyHttpUrl,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from driftline.contracts.object_types import (
    LISTING_HINT,
    find_object_type,
    object_types,
    similar_keys,
)
from driftline.geo import KM_PER_DEG, cos_lat


class MissionStatus(StrEnum):
    """Where a mission is; the final ones are `completed`, `failed` and `cancelled`."""

    ACCEPTED = "accepted"
    VALIDATED = "validated"
    FORCING_READY = "forcing_ready"
    SIMULATED = "simulated"
    RESULTS_READY = "results_ready"
    HELD = "held"  # a record was dead-lettered: waiting for an operator's replay
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        return self in (MissionStatus.COMPLETED, MissionStatus.FAILED, MissionStatus.CANCELLED)


#: Status reached when each stage's effect commits, with the share of the work done.
STAGE_PROGRESS: dict[MissionStatus, float] = {
    MissionStatus.ACCEPTED: 0.0,
    MissionStatus.VALIDATED: 0.1,
    MissionStatus.FORCING_READY: 0.3,
    MissionStatus.SIMULATED: 0.7,
    MissionStatus.RESULTS_READY: 0.9,
    MissionStatus.COMPLETED: 1.0,
}


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("time must carry a timezone (use Z for UTC)")
    try:
        return value.astimezone(UTC)
    except OverflowError as exc:  # 0001-01-01T00:30+01:00 is before year 1 in UTC
        raise ValueError("time is out of range") from exc


#: A time with a zone, stored in UTC.
UtcTime = Annotated[datetime, AfterValidator(_utc)]


def _storable(value: str) -> str:
    """Text PostgreSQL can store: no NUL character, no lone surrogate."""
    if "\x00" in value:
        raise ValueError("must not contain the NUL character (\\u0000)")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError("must be valid Unicode text (it holds a lone surrogate)") from exc
    return value


#: Free text from a coordinator, checked so it can be stored as it is.
Text = Annotated[str, AfterValidator(_storable)]


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _known_object_type(value: object) -> object:
    """Refuse what is no Leeway category at once (a JSON `true` is not the id 1); keep
    the canonical form (the key as OpenDrift spells it, or the id as a number), so the
    stored request and the events carrying it match the published schema."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError(f"must be a Leeway object key (text) or numeric id; {LISTING_HINT}")
    if isinstance(value, str):
        _storable(value)
    found = find_object_type(value)
    if found is None:
        hints = similar_keys(value) if isinstance(value, str) else []
        suggestion = f" (did you mean {', '.join(hints)}?)" if hints else ""
        raise ValueError(
            f"{_short(value)} is not an OpenDrift Leeway object type{suggestion}; {LISTING_HINT}"
        )
    if isinstance(value, int) or (value.strip().isascii() and value.strip().isdigit()):
        return found.id
    return found.key


def _object_type_schema(schema: dict[str, Any]) -> None:
    """Document the valid values (read from the shipped table when the schema is built)."""
    categories = object_types()
    schema["anyOf"] = [
        {"type": "string", "enum": [c.key for c in categories]},
        {"type": "integer", "minimum": 1, "maximum": len(categories)},
    ]


class Position(BaseModel):
    """A position at a time, with its uncertainty radius."""

    model_config = ConfigDict(extra="forbid")

    lat: float = Field(ge=-90, le=90, description="Latitude, degrees north (WGS84).")
    lon: float = Field(ge=-180, le=180, description="Longitude, degrees east (WGS84).")
    time: datetime = Field(description="RFC 3339 time with a zone, e.g. 2024-01-01T12:00:00Z.")
    radius_m: float = Field(
        default=0.0, ge=0, le=100_000, description="Position uncertainty, metres."
    )

    @field_validator("time")
    @classmethod
    def _zoned(cls, value: datetime) -> datetime:
        return _utc(value)


class ForcingChoice(BaseModel):
    """Optional names of catalog sources to use instead of the automatic choice."""

    model_config = ConfigDict(extra="forbid")

    current: Text | None = Field(default=None, max_length=200)
    wind: Text | None = Field(default=None, max_length=200)


class SimulationOptions(BaseModel):
    """Expert knobs with defaults a coordinator never needs to touch."""

    model_config = ConfigDict(extra="forbid")

    radius_mode: Literal["gaussian", "uniform"] = "gaussian"
    backward: bool = False
    release_window_hours: float | None = Field(default=None, gt=0, le=72)
    time_step_s: int = Field(default=600, ge=60, le=3600)
    output_step_s: int = Field(default=1800, ge=300, le=21600)
    capsizing: bool = Field(
        default=False, description="OpenDrift's wind-driven capsizing (reduces leeway)."
    )


#: Scenarios one mission may weigh against each other (SAROPS and SARMAP offer a handful).
MAX_SCENARIOS = 8
#: The schema's ceiling on particles; each deployment (and tenant) sets its own limit below.
MAX_PARTICLES = 1_000_000
#: Fewest particles a scenario may get: below this its own containment areas mean nothing.
MIN_SCENARIO_PARTICLES = 10
#: Widest spread of the seed positions of one mission (3 x the envelope's largest radius).
MAX_ENVELOPE_RADIUS_M = 100_000.0

ObjectTypeField = Annotated[str | int, BeforeValidator(_known_object_type)]


class TrackPoint(BaseModel):
    """A position the object passed through at a time (a voyage's departure, waypoints, arrival)."""

    model_config = ConfigDict(extra="forbid")

    lat: float = Field(ge=-90, le=90, description="Latitude, degrees north (WGS84).")
    lon: float = Field(ge=-180, le=180, description="Longitude, degrees east (WGS84).")
    time: datetime = Field(description="RFC 3339 time with a zone.")

    @field_validator("time")
    @classmethod
    def _zoned(cls, value: datetime) -> datetime:
        return _utc(value)


class SeedPolygon(BaseModel):
    """A GeoJSON Polygon (RFC 7946): an exterior ring, then holes; [lon, lat] pairs."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["Polygon"]
    coordinates: list[list[tuple[float, float]]] = Field(min_length=1, max_length=20)

    @field_validator("coordinates")
    @classmethod
    def _rings(cls, rings: list[list[tuple[float, float]]]) -> list[list[tuple[float, float]]]:
        from shapely import Polygon as ShapelyPolygon

        for ring in rings:
            if not 4 <= len(ring) <= 1000:
                raise ValueError("each ring needs 4 to 1000 positions (the first repeated last)")
            if ring[0] != ring[-1]:
                raise ValueError("each ring must end where it starts (RFC 7946)")
            for lon, lat in ring:
                if not (-180 <= lon <= 180 and -90 <= lat <= 90):
                    raise ValueError(f"[{lon}, {lat}] is not a [longitude, latitude] pair")
        shape = ShapelyPolygon(rings[0], rings[1:])
        if not shape.is_valid or shape.area == 0:
            raise ValueError("the polygon crosses itself or has no area")
        return rings


class SeedArea(BaseModel):
    """An area the object is somewhere in (a reported area), at a time."""

    model_config = ConfigDict(extra="forbid")

    geometry: SeedPolygon
    time: datetime = Field(description="When the object was somewhere in the area.")

    @field_validator("time")
    @classmethod
    def _zoned(cls, value: datetime) -> datetime:
        return _utc(value)


class Scenario(BaseModel):
    """One hypothesis of what drifts and from where, with its likelihood.

    Exactly one of `last_known_position` (optionally with `end_position`: line/cone
    seeding), `area` (uniformly within a polygon) or `track` (a voyage: the object was
    lost at an unknown time between the first and last point, somewhere on the track).
    """

    model_config = ConfigDict(extra="forbid")

    name: Text = Field(min_length=1, max_length=100)
    weight: float = Field(
        gt=0,
        le=1000,
        description="Relative likelihood; a scenario gets weight / (sum of weights) of "
        "the particles.",
    )
    object_type: ObjectTypeField = Field(
        description="Leeway object key (case-insensitive) or numeric id.",
        json_schema_extra=_object_type_schema,
    )
    last_known_position: Position | None = None
    end_position: Position | None = None
    area: SeedArea | None = None
    track: list[TrackPoint] | None = Field(default=None, min_length=2, max_length=200)

    @model_validator(mode="after")
    def _one_shape(self) -> Scenario:
        given = [self.last_known_position, self.area, self.track]
        if sum(shape is not None for shape in given) != 1:
            raise ValueError("give exactly one of last_known_position, area or track")
        if self.end_position is not None:
            if self.last_known_position is None:
                raise ValueError("end_position goes with last_known_position")
            if self.end_position.time < self.last_known_position.time:
                raise ValueError("end_position.time must not be before last_known_position.time")
        if self.track is not None:
            times = [point.time for point in self.track]
            if any(b < a for a, b in itertools.pairwise(times)):
                raise ValueError("track times must not go backwards")
            if times[0] == times[-1]:
                raise ValueError("a track needs a departure before its arrival")
        return self

    @property
    def start(self) -> datetime:
        """The first time an object of this scenario may be adrift."""
        if self.area is not None:
            return self.area.time
        if self.track is not None:
            return self.track[0].time
        assert self.last_known_position is not None
        return self.last_known_position.time

    @property
    def end(self) -> datetime:
        """The last time an object of this scenario may still be released."""
        if self.track is not None:
            return self.track[-1].time
        if self.end_position is not None:
            return self.end_position.time
        return self.start

    def seed_points(self) -> list[tuple[float, float, float]]:
        """(lon, lat, radius in metres) of every position the seeding starts from."""
        if self.area is not None:
            return [(lon, lat, 0.0) for lon, lat in self.area.geometry.coordinates[0]]
        if self.track is not None:
            return [(p.lon, p.lat, 0.0) for p in self.track]
        positions = [self.last_known_position, self.end_position]
        return [(p.lon, p.lat, p.radius_m) for p in positions if p is not None]


def particles_per_scenario(total: int, weights: list[float]) -> list[int]:
    """`total` split by weight, largest remainders first: off by less than one particle."""
    exact = [total * w / sum(weights) for w in weights]
    counts = [math.floor(x) for x in exact]
    by_remainder = sorted(range(len(exact)), key=lambda i: counts[i] - exact[i])
    for i in by_remainder[: total - sum(counts)]:
        counts[i] += 1
    return counts


def seed_envelope(scenarios: list[Scenario]) -> Position:
    """A position whose 3-sigma box holds every scenario's seed points, at the first seed time.

    With scenarios it stands in `last_known_position`, so whatever plans the forcing from
    the top-level position (area and window) covers every scenario.
    """
    points = [point for scenario in scenarios for point in scenario.seed_points()]
    lons, lats = [p[0] for p in points], [p[1] for p in points]
    lon = (min(lons) + max(lons)) / 2
    lat = (min(lats) + max(lats)) / 2
    reach_km = max(
        max(abs(p[1] - lat) * KM_PER_DEG, abs(p[0] - lon) * KM_PER_DEG * cos_lat(lat))
        + 3 * p[2] / 1000
        for p in points
    )
    radius_m = float(math.ceil(reach_km * 1000 / 3))
    if radius_m > MAX_ENVELOPE_RADIUS_M:
        raise ValueError(
            f"the scenarios' seed positions spread over {reach_km:.0f} km from their centre; "
            f"one mission covers at most {3 * MAX_ENVELOPE_RADIUS_M / 1000:.0f} km: "
            "submit far-apart hypotheses as separate missions"
        )
    return Position(lat=lat, lon=lon, time=min(s.start for s in scenarios), radius_m=radius_m)


class MissionCreate(BaseModel):
    """The request body of `POST /v1/missions` (docs/api.md; the contract: docs/contract.md).

    Either one scenario at the top level (`object_type`, `last_known_position`, optional
    `end_position`: the original body, still valid), or weighted `scenarios`. With
    scenarios, `object_type` (the heaviest scenario's) and `last_known_position` (a
    circle around every seed position at the first seed time: the forcing is planned
    for it) are filled in and may be omitted.
    """

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "anyOf": [
                {"required": ["object_type", "last_known_position"]},
                {"required": ["scenarios"]},
            ]
        },
    )

    name: Text = Field(min_length=1, max_length=200)
    # Both default to None only until `_consistent` fills them from the scenarios (the
    # wrap validator requires them without scenarios): readers always see a value.
    object_type: ObjectTypeField = Field(  # type: ignore[assignment]
        default=None,
        description="Leeway object key (case-insensitive) or numeric id; "
        "GET /v1/object-types lists them. Required unless `scenarios` is given.",
        json_schema_extra=_object_type_schema,
    )
    last_known_position: Position = Field(  # type: ignore[assignment]
        default=None,
        description="Required unless `scenarios` is given (then it is derived: the "
        "first seed time, and a radius whose 3-sigma box holds every scenario).",
    )
    end_position: Position | None = None
    scenarios: list[Scenario] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_SCENARIOS,
        description="Weighted hypotheses; particles are divided by weight and every "
        "product is made for their union and for each one.",
    )
    duration_hours: float = Field(default=24, gt=0, le=240)
    particles: int = Field(
        default=1000,
        ge=10,
        le=MAX_PARTICLES,
        description="Particles to simulate. A deployment allows fewer (50,000 unless its "
        "operator says otherwise, per tenant); a mission above the shard size is "
        "simulated in shards by the simulate workers together.",
    )
    forcing: ForcingChoice = Field(default_factory=ForcingChoice)
    callback_url: AnyHttpUrl | None = None
    external_ref: Text | None = Field(default=None, max_length=200)
    options: SimulationOptions = Field(default_factory=SimulationOptions)

    @model_validator(mode="wrap")
    @classmethod
    def _single_or_scenarios(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        """Without scenarios, the single-scenario fields are required, as they always were;
        with them, the derived fields are filled in. Each refusal names its field."""
        if isinstance(data, dict) and data.get("scenarios") is None:
            missing = [
                InitErrorDetails(type="missing", loc=(name,), input=data)
                for name in ("object_type", "last_known_position")
                if data.get(name) is None
            ]
            if missing:
                raise ValidationError.from_exception_data(cls.__name__, missing)
        request = handler(data)
        if isinstance(request, MissionCreate) and request.scenarios is not None:
            problems = request._derive_from_scenarios(request.scenarios)
            if problems:
                raise ValidationError.from_exception_data(
                    cls.__name__,
                    [
                        InitErrorDetails(
                            # The text goes in the context: a name may hold braces.
                            type=PydanticCustomError(
                                "scenarios_conflict", "{reason}", {"reason": message}
                            ),
                            loc=loc,
                            input=data,
                        )
                        for loc, message in problems
                    ],
                )
        return request

    @model_validator(mode="after")
    def _end_after_start(self) -> MissionCreate:
        end = self.end_position
        if self.scenarios is None and end is not None and end.time < self.last_known_position.time:
            raise ValueError("end_position.time must not be before last_known_position.time")
        return self

    def _derive_from_scenarios(
        self, scenarios: list[Scenario]
    ) -> list[tuple[tuple[str | int, ...], str]]:
        """Fill `last_known_position` and `object_type` in; what is wrong, by field."""
        problems: list[tuple[tuple[str | int, ...], str]] = []
        if self.end_position is not None:
            problems.append((("end_position",), "with scenarios, each carries its own"))
        if self.options.backward:
            problems.append(
                (("options", "backward"), "a backward run takes the single-scenario body")
            )
        if len({s.name for s in scenarios}) != len(scenarios):
            problems.append((("scenarios",), "scenario names must differ"))
        try:
            envelope = seed_envelope(scenarios)
        except ValueError as exc:
            return [*problems, (("scenarios",), str(exc))]
        heaviest = max(scenarios, key=lambda s: s.weight)
        given = self.model_fields_set
        # A stored request carries the derived values: they must come back the same.
        if "last_known_position" in given and self.last_known_position not in (None, envelope):
            problems.append((("last_known_position",), "with scenarios, omit it: it is derived"))
        if "object_type" in given and self.object_type not in (None, heaviest.object_type):
            problems.append((("object_type",), "with scenarios, omit it: each has its own"))
        self.last_known_position = envelope
        self.object_type = heaviest.object_type
        run_end = envelope.time + timedelta(hours=self.duration_hours)
        counts = particles_per_scenario(self.particles, [s.weight for s in scenarios])
        for index, (scenario, count) in enumerate(zip(scenarios, counts, strict=True)):
            if scenario.end >= run_end:
                problems.append(
                    (
                        ("scenarios", index),
                        f"scenario {scenario.name!r} may release its object at "
                        f"{scenario.end:%Y-%m-%d %H:%M}Z, after the run ends "
                        f"({run_end:%Y-%m-%d %H:%M}Z): lengthen duration_hours",
                    )
                )
            if count < MIN_SCENARIO_PARTICLES:
                problems.append(
                    (
                        ("scenarios", index, "weight"),
                        f"scenario {scenario.name!r} would get {count} particles (fewer "
                        f"than {MIN_SCENARIO_PARTICLES}): raise particles or its weight",
                    )
                )
        return problems

    def scenario_list(self) -> list[Scenario]:
        """The mission's scenarios; the single-scenario body is one scenario of weight 1."""
        if self.scenarios is not None:
            return list(self.scenarios)
        return [
            Scenario(
                name="last known position",
                weight=1.0,
                object_type=self.object_type,
                last_known_position=self.last_known_position,
                end_position=self.end_position,
            )
        ]

    def scenario_particles(self) -> list[int]:
        """Particles per scenario (in `scenario_list` order), divided by weight."""
        return particles_per_scenario(self.particles, [s.weight for s in self.scenario_list()])


class Link(BaseModel):
    href: str


class MissionAccepted(BaseModel):
    """The 202 answer to a new mission."""

    id: uuid.UUID
    status: MissionStatus
    links: dict[str, Link]


class FailureInfo(BaseModel):
    stage: str
    reason: str
    detail: str


class MissionPublic(BaseModel):
    """A mission as its tenant sees it."""

    id: uuid.UUID
    name: str
    external_ref: str | None
    status: MissionStatus
    stage: str
    progress: float
    detail: str | None = Field(
        default=None, description="Why the mission is in its status (e.g. what holds it)."
    )
    request: dict[str, Any]
    failure: FailureInfo | None
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None
    links: dict[str, Link]


class StatusChange(BaseModel):
    """One status change of a mission: the `data` of an SSE `status` event."""

    status: MissionStatus
    stage: str
    progress: float
    detail: str | None
    at: datetime


class MissionPage(BaseModel):
    """One page of `GET /v1/missions`, newest first."""

    items: list[MissionPublic]
    next_cursor: str | None


def utcnow() -> datetime:
    """The current time, timezone-aware UTC (the only kind Driftline stores)."""
    return datetime.now(UTC)
