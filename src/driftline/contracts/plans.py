"""Search planning on the wire: the plan and search requests a coordinator sends, and what
the API and the `plan.completed` event answer with."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from driftline.contracts.missions import Link, UtcTime


class UnitType(StrEnum):
    """The kinds of search unit the sweep-width table has columns for."""

    VESSEL = "vessel"
    HELICOPTER = "helicopter"
    FIXED_WING = "fixed_wing"


class SearchUnit(BaseModel):
    """A unit available for the search; its sweep width is given or looked up."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=40, description="Call sign, e.g. `RESCUE 1`.")
    type: UnitType
    speed_kn: float = Field(gt=0, le=400, description="Search speed, knots.")
    time_on_scene_h: float = Field(gt=0, le=24, description="Hours of searching on scene.")
    sweep_width_km: float | None = Field(
        None, gt=0, le=100, description="Corrected sweep width; omitted: from the IAMSAR table."
    )
    visibility_nm: float = Field(10.0, gt=0, le=30, description="Meteorological visibility.")
    wind_kn: float = Field(0.0, ge=0, le=100, description="Wind speed (weather correction).")
    sea_m: float = Field(0.0, ge=0, le=20, description="Significant wave height.")
    fatigue: bool = Field(False, description="Crew fatigue expected (sweep width x 0.9).")


class PlanCreate(BaseModel):
    """`POST /v1/missions/{id}/plans`: when the search commences and with which units."""

    model_config = ConfigDict(extra="forbid")

    commence_time: UtcTime = Field(
        description="Search commence time, within the mission's simulated window."
    )
    units: list[SearchUnit] = Field(
        default_factory=list,
        max_length=12,
        description="Units to plan for; none: only the updated probability map.",
    )

    @field_validator("units")
    @classmethod
    def _unique_names(cls, units: list[SearchUnit]) -> list[SearchUnit]:
        names = [u.name for u in units]
        if len(set(names)) != len(names):
            raise ValueError("unit names must be unique within a plan")
        return units


GeometryType = Literal["Polygon", "MultiPolygon", "LineString", "MultiLineString"]


class SearchGeometry(BaseModel):
    """A GeoJSON geometry (RFC 7946, lon/lat): areas searched, or tracks flown."""

    type: GeometryType
    coordinates: list[Any]

    @model_validator(mode="after")
    def _valid(self) -> SearchGeometry:
        from shapely.geometry import shape

        try:
            geometry = shape(self.model_dump())
            valid = not geometry.is_empty and geometry.is_valid
        except Exception as exc:  # any failure to read user coordinates is bad input
            raise ValueError(f"not a valid GeoJSON {self.type}") from exc
        if not valid:
            raise ValueError(f"the {self.type} is empty or not valid (self-intersecting?)")
        return self


class SearchCreate(BaseModel):
    """`POST /v1/missions/{id}/searches`: what was searched, with nothing found.

    Either `geometry` (areas with `track_spacing_km` or `pod`, or flown tracks), or
    `plan_id` and `unit` for an area searched as planned.
    """

    model_config = ConfigDict(extra="forbid")

    searched_at: UtcTime = Field(description="When the search was made (its middle).")
    unit: str | None = Field(None, max_length=40)
    geometry: SearchGeometry | None = None
    sweep_width_km: float | None = Field(None, gt=0, le=100)
    track_spacing_km: float | None = Field(None, gt=0, le=100)
    pod: float | None = Field(None, ge=0, lt=1, description="Achieved POD over the areas.")
    plan_id: uuid.UUID | None = None

    @model_validator(mode="after")
    def _enough(self) -> SearchCreate:
        if self.geometry is None:
            if self.plan_id is None or self.unit is None:
                raise ValueError("give the geometry searched, or plan_id and unit")
            return self
        if self.geometry.type.endswith("LineString"):
            if self.sweep_width_km is None:
                raise ValueError("flown tracks need the sweep_width_km used")
        elif self.pod is None and (self.sweep_width_km is None or self.track_spacing_km is None):
            raise ValueError("areas need pod, or sweep_width_km and track_spacing_km")
        return self


class SearchRecord(BaseModel):
    """A recorded search, as the plan stage applies it."""

    id: uuid.UUID
    searched_at: datetime
    unit: str | None = None
    geometry: SearchGeometry
    sweep_width_km: float | None = None
    track_spacing_km: float | None = None
    pod: float | None = None


class PlanStatus(StrEnum):
    REQUESTED = "requested"
    COMPLETED = "completed"
    FAILED = "failed"
    HELD = "held"


class Waypoint(BaseModel):
    lat: float
    lon: float
    time: datetime


class PlanArea(BaseModel):
    """One unit's search area and its figures."""

    unit: str
    unit_type: UnitType
    pattern: Literal["parallel_sweep", "expanding_square"]
    corners: list[list[float]] = Field(description="[lon, lat] of the four corners.")
    heading_deg: float = Field(description="True heading of the legs (0-180).")
    sweep_width_km: float
    sweep_width_source: str
    track_spacing_km: float
    legs: int
    track_length_km: float
    area_km2: float
    effort_km2: float
    coverage: float
    pod: float
    poc: float = Field(description="Probability of containment of the area.")
    pos: float
    first_waypoint: Waypoint


class PlanSummary(BaseModel):
    """The plan's figures (public, in `plan.completed` and the API)."""

    commence_time: datetime
    pos: float = Field(description="Probability of success of this plan (sum of the areas').")
    optimal_pos: float = Field(description="Stone's optimal-allocation bound for the effort.")
    cumulative_pos_before: float
    cumulative_pos_after: float = Field(description="If this plan is carried out, finding nothing.")
    searches_applied: int
    areas: list[PlanArea]
    unassigned_units: list[str] = Field(default_factory=list)
    containment_km2: dict[str, float] = Field(
        default_factory=dict, description="Areas of the 50/90 % regions on the updated weights."
    )


class PlanArtifact(BaseModel):
    """A product of a plan as clients see it (the same fields as a mission's artifacts)."""

    name: str
    media_type: str
    href: str
    bytes: int
    sha256: str


class StoredPlanArtifact(PlanArtifact):
    key: str


class PlanResult(BaseModel):
    """What the plan stage stores on the plan row."""

    summary: PlanSummary
    artifacts: list[StoredPlanArtifact]


class PlanAccepted(BaseModel):
    id: uuid.UUID
    status: PlanStatus
    links: dict[str, Link]


class PlanPublic(BaseModel):
    id: uuid.UUID
    mission_id: uuid.UUID
    status: PlanStatus
    request: PlanCreate
    created_at: datetime
    completed_at: datetime | None = None
    failure: str | None = None
    summary: PlanSummary | None = None
    artifacts: list[PlanArtifact] = Field(default_factory=list)
    links: dict[str, Link]


class PlanPage(BaseModel):
    items: list[PlanPublic]


class SearchPublic(BaseModel):
    id: uuid.UUID
    mission_id: uuid.UUID
    searched_at: datetime
    unit: str | None = None
    geometry: SearchGeometry
    sweep_width_km: float | None = None
    track_spacing_km: float | None = None
    pod: float | None = None
    plan_id: uuid.UUID | None = None
    map_update_plan_id: uuid.UUID = Field(
        description="The plan (without units) that redraws the map on the updated weights."
    )
    created_at: datetime


class SearchPage(BaseModel):
    items: list[SearchPublic]
    cumulative_pos: float | None = Field(
        None, description="After every recorded search, from the latest completed plan."
    )
