"""Plain values of the forcing package: areas, coverage and one catalog entry's config.

No I/O here: the source kinds (`driftline.forcing.sources`) read files and services,
the catalog (`driftline.forcing.catalog`) decides between them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Variable = Literal["current", "wind", "stokes"]


class SourceConfig(BaseModel):
    """One entry of the catalog file, as written (see docs/science.md).

    One flat model for every kind, so the file format has no per-kind shapes: each kind
    checks the fields it needs (`ForcingSource.check`), and `kind` is a plain string so
    an unknown one is reported by the registry with the kinds it knows.
    """

    model_config = ConfigDict(extra="forbid")

    name: str
    kind: str
    variables: list[Variable]
    priority: int = 0
    path: str | None = Field(default=None, description="File, glob, s3://bucket/key or URL.")
    dataset_id: str | None = None
    variable_map: dict[str, tuple[str, str]] = Field(default_factory=dict)
    values: dict[str, tuple[float, float]] = Field(default_factory=dict)
    synthetic_allowed: bool = False


@dataclass(frozen=True)
class BBox:
    """An area in degrees; longitudes in -180..180."""

    lon_min: float
    lat_min: float
    lon_max: float
    lat_max: float

    def contains(self, lon: float, lat: float) -> bool:
        return self.lon_min <= lon <= self.lon_max and self.lat_min <= lat <= self.lat_max

    def intersection(self, other: BBox) -> BBox | None:
        box = BBox(
            max(self.lon_min, other.lon_min),
            max(self.lat_min, other.lat_min),
            min(self.lon_max, other.lon_max),
            min(self.lat_max, other.lat_max),
        )
        return box if box.lon_min < box.lon_max and box.lat_min < box.lat_max else None


@dataclass(frozen=True)
class Coverage:
    """What a gridded source holds: its area, time span and grid spacing."""

    area: BBox
    start: datetime  # aware UTC
    end: datetime
    resolution_deg: float
