"""The mission request a coordinator submits, and the shapes the REST API answers with."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AnyHttpUrl,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from driftline.contracts.object_types import (
    LISTING_HINT,
    find_object_type,
    object_types,
    similar_keys,
)


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


class MissionCreate(BaseModel):
    """The request body of `POST /v1/missions` (docs/api.md; the contract: docs/contract.md)."""

    model_config = ConfigDict(extra="forbid")

    name: Text = Field(min_length=1, max_length=200)
    object_type: Annotated[str | int, BeforeValidator(_known_object_type)] = Field(
        description="Leeway object key (case-insensitive) or numeric id; "
        "GET /v1/object-types lists them.",
        json_schema_extra=_object_type_schema,
    )
    last_known_position: Position
    end_position: Position | None = None
    duration_hours: float = Field(default=24, gt=0, le=240)
    particles: int = Field(default=1000, ge=10, le=50_000)
    forcing: ForcingChoice = Field(default_factory=ForcingChoice)
    callback_url: AnyHttpUrl | None = None
    external_ref: Text | None = Field(default=None, max_length=200)
    options: SimulationOptions = Field(default_factory=SimulationOptions)

    @model_validator(mode="after")
    def _end_after_start(self) -> MissionCreate:
        end = self.end_position
        if end is not None and end.time < self.last_known_position.time:
            raise ValueError("end_position.time must not be before last_known_position.time")
        return self


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
