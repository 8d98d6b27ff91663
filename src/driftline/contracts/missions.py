"""The mission request a coordinator submits, and the shapes the REST API answers with."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, field_validator, model_validator


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
    return value.astimezone(UTC)


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

    current: str | None = None
    wind: str | None = None


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
    """The request body of `POST /v1/missions` (see DESIGN.md)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    object_type: Annotated[str | int, Field(description="Leeway object key or numeric id.")]
    last_known_position: Position
    end_position: Position | None = None
    duration_hours: float = Field(default=24, gt=0, le=240)
    particles: int = Field(default=1000, ge=10, le=50_000)
    forcing: ForcingChoice = Field(default_factory=ForcingChoice)
    callback_url: AnyHttpUrl | None = None
    external_ref: str | None = Field(default=None, max_length=200)
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


class MissionPage(BaseModel):
    """One page of `GET /v1/missions`, newest first."""

    items: list[MissionPublic]
    next_cursor: str | None


def utcnow() -> datetime:
    """The current time, timezone-aware UTC (the only kind Driftline stores)."""
    return datetime.now(UTC)
