"""The forcing catalog: which sources exist, what they cover, and which one a mission uses.

A catalog is a JSON file named by `DRIFTLINE_FORCING_CATALOG` (see docs/science.md):

```json
{"sources": [
  {"name": "norkyst-current", "kind": "netcdf", "path": "/data/norkyst_*.nc",
   "variables": ["current"], "priority": 20},
  {"name": "sample-wind", "kind": "netcdf", "path": "wind.nc", "variables": ["wind"]},
  {"name": "cmems-global", "kind": "copernicusmarine",
   "dataset_id": "cmems_mod_glo_phy_anfc_0.083deg_PT1H-m", "variables": ["current"]},
  {"name": "calm", "kind": "constant", "variables": ["wind"], "values": {"wind": [0, 0]},
   "synthetic_allowed": true, "priority": -10}
]}
```

Variables are found by CF `standard_name`; `variable_map` names them in files that lack
one. Coverage (area, time span, resolution) is read once per file and cached.
"""

from __future__ import annotations

import glob
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Literal

import numpy as np
import xarray as xr
from pydantic import BaseModel, ConfigDict, Field

from driftline.errors import ConfigurationError, ForcingGap, ForcingUnavailable
from driftline.settings import Settings

Variable = Literal["current", "wind", "stokes"]

#: CF standard names of each forcing variable's (east, north) components, in preference order.
STANDARD_NAMES: dict[str, list[tuple[str, str]]] = {
    "current": [
        ("x_sea_water_velocity", "y_sea_water_velocity"),
        ("eastward_sea_water_velocity", "northward_sea_water_velocity"),
        ("surface_eastward_sea_water_velocity", "surface_northward_sea_water_velocity"),
    ],
    "wind": [("x_wind", "y_wind"), ("eastward_wind", "northward_wind")],
    "stokes": [
        ("sea_surface_wave_stokes_drift_x_velocity", "sea_surface_wave_stokes_drift_y_velocity"),
    ],
}
#: The names OpenDrift's generic CF reader recognises, written into every subset.
OUTPUT_NAMES: dict[str, tuple[str, str]] = {v: names[0] for v, names in STANDARD_NAMES.items()}


class SourceConfig(BaseModel):
    """One entry of the catalog file."""

    model_config = ConfigDict(extra="forbid")

    name: str
    kind: Literal["netcdf", "copernicusmarine", "constant"]
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
    area: BBox
    start: datetime  # aware UTC
    end: datetime
    resolution_deg: float


@dataclass(frozen=True)
class ChosenSource:
    """A source picked for one variable, with what it covers."""

    name: str
    variable: str
    config: SourceConfig
    coverage: Coverage | None  # None for constant sources (they cover everything)
    location: str | None  # resolved path/URL for netcdf sources

    @property
    def synthetic(self) -> bool:
        return self.config.kind == "constant"


def _utc(value: np.datetime64) -> datetime:
    seconds = (value - np.datetime64("1970-01-01T00:00:00")) / np.timedelta64(1, "s")
    return datetime.fromtimestamp(float(seconds), UTC)


def _fmt(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")


def coordinate_names(ds: xr.Dataset) -> tuple[str, str, str]:
    """(time, lat, lon) coordinate names, by standard_name, axis or usual names."""

    def find(standard: str, usual: tuple[str, ...]) -> str:
        for name in list(ds.coords) + list(ds.variables):
            if ds[name].attrs.get("standard_name") == standard:
                return str(name)
        for name in usual:
            if name in ds.variables:
                return name
        raise ForcingUnavailable(f"no {standard} coordinate in forcing file")

    return (
        find("time", ("time", "t")),
        find("latitude", ("lat", "latitude", "y")),
        find("longitude", ("lon", "longitude", "x")),
    )


def component_names(ds: xr.Dataset, variable: str, config: SourceConfig) -> tuple[str, str] | None:
    """The (east, north) variable names of `variable` in `ds`, or None."""
    if variable in config.variable_map:
        u, v = config.variable_map[variable]
        return (u, v) if u in ds and v in ds else None
    by_standard = {ds[name].attrs.get("standard_name"): str(name) for name in ds.data_vars}
    for u_std, v_std in STANDARD_NAMES[variable]:
        if u_std in by_standard and v_std in by_standard:
            return by_standard[u_std], by_standard[v_std]
    return None


def open_forcing(location: str) -> xr.Dataset:
    """Open a CF file, glob, s3:// key or URL; unreachable → ForcingUnavailable."""
    try:
        if location.startswith("s3://"):
            import s3fs  # optional dependency, only for S3-hosted forcing

            fs = s3fs.S3FileSystem(
                client_kwargs={"endpoint_url": os.environ.get("DRIFTLINE_S3_ENDPOINT_URL")}
            )
            return xr.open_dataset(fs.open(location), engine="h5netcdf")
        if any(ch in location for ch in "*?[") and "://" not in location:
            files = sorted(glob.glob(location))
            if not files:
                raise ForcingUnavailable(f"no files match {location}")
            return xr.open_mfdataset(files, combine="by_coords")
        return xr.open_dataset(location)
    except ForcingUnavailable:
        raise
    except (OSError, ValueError, ImportError) as exc:
        raise ForcingUnavailable(f"cannot open forcing {location}: {exc}") from exc


@lru_cache(maxsize=256)
def _coverage_cached(location: str, stamp: float) -> Coverage:
    with open_forcing(location) as ds:
        t, la, lo = coordinate_names(ds)
        times = ds[t].values
        lats = np.asarray(ds[la].values)
        lons = np.asarray(ds[lo].values)
        resolution = float(np.abs(np.diff(lats[:2]))[0]) if lats.size > 1 else 1.0
        return Coverage(
            area=BBox(float(lons.min()), float(lats.min()), float(lons.max()), float(lats.max())),
            start=_utc(times.min()),
            end=_utc(times.max()),
            resolution_deg=resolution,
        )


def coverage(location: str) -> Coverage:
    """A source's area, time span and resolution (cached until the file changes)."""
    try:
        stamp = os.stat(location).st_mtime if os.path.exists(location) else 0.0
    except OSError:
        stamp = 0.0
    return _coverage_cached(location, stamp)


class Catalog:
    """The configured sources and the rule that picks one per variable."""

    def __init__(self, sources: list[SourceConfig], base_dir: Path | None = None) -> None:
        names = [s.name for s in sources]
        if len(names) != len(set(names)):
            raise ConfigurationError("forcing catalog: source names must be unique")
        for source in sources:
            if source.kind == "netcdf" and not source.path:
                raise ConfigurationError(f"forcing source {source.name}: netcdf needs a path")
            if source.kind == "constant" and not source.synthetic_allowed:
                raise ConfigurationError(
                    f"forcing source {source.name}: constant forcing is synthetic; set "
                    "synthetic_allowed: true to allow it"
                )
            if source.kind == "copernicusmarine" and not source.dataset_id:
                raise ConfigurationError(f"forcing source {source.name}: needs dataset_id")
        self.sources = sources
        self.base_dir = base_dir

    @classmethod
    def from_file(cls, path: Path) -> Catalog:
        try:
            raw = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ConfigurationError(f"cannot read forcing catalog {path}: {exc}") from exc
        sources = [SourceConfig.model_validate(s) for s in raw.get("sources", [])]
        return cls(sources, base_dir=path.parent)

    @classmethod
    def from_settings(cls, settings: Settings) -> Catalog:
        if settings.forcing_catalog is None:
            raise ConfigurationError(
                "no forcing catalog configured: set DRIFTLINE_FORCING_CATALOG (see "
                "docs/science.md; `driftline forcing sample` makes sample data)"
            )
        return cls.from_file(settings.forcing_catalog)

    def location(self, source: SourceConfig) -> str | None:
        if source.path is None:
            return None
        if "://" in source.path or os.path.isabs(source.path) or self.base_dir is None:
            return source.path
        return str(self.base_dir / source.path)

    def _coverage(self, source: SourceConfig) -> Coverage | None:
        if source.kind == "constant":
            return None
        if source.kind == "copernicusmarine":
            raise ForcingUnavailable(
                f"source {source.name}: Copernicus Marine is not reachable from here "
                "(needs the copernicusmarine package, credentials and internet)"
            )
        location = self.location(source)
        assert location is not None
        return coverage(location)

    def choose(
        self,
        need: set[str],
        area: BBox,
        start: datetime,
        end: datetime,
        preferred: dict[str, str | None] | None = None,
    ) -> dict[str, ChosenSource]:
        """Per variable, the best source covering the seed area and the whole window.

        Best = highest priority, then finest resolution. Raises ForcingGap naming the
        sources and the uncovered span when none covers.
        """
        chosen: dict[str, ChosenSource] = {}
        for variable in sorted(need):
            wanted = (preferred or {}).get(variable)
            candidates = [
                s
                for s in self.sources
                if variable in s.variables and (wanted is None or s.name == wanted)
            ]
            if wanted and not candidates:
                raise ForcingGap(f"no {variable} source named {wanted!r} in the forcing catalog")
            reasons: list[str] = []
            usable: list[tuple[int, float, ChosenSource]] = []
            for source in candidates:
                try:
                    cov = self._coverage(source)
                except ForcingUnavailable as exc:
                    reasons.append(str(exc))
                    continue
                gap = _gap(cov, area, start, end)
                if gap:
                    reasons.append(f"{variable} source '{source.name}' {gap}")
                    continue
                resolution = cov.resolution_deg if cov else float("inf")
                usable.append(
                    (
                        -source.priority,
                        resolution,
                        ChosenSource(source.name, variable, source, cov, self.location(source)),
                    )
                )
            if not usable:
                detail = "; ".join(reasons) or f"no source in the catalog provides {variable}"
                raise ForcingGap(
                    f"No {variable} forcing covers this mission "
                    f"({_fmt(start)} to {_fmt(end)}): {detail}."
                )
            usable.sort(key=lambda item: (item[0], item[1]))
            chosen[variable] = usable[0][2]
        return chosen


def _gap(cov: Coverage | None, area: BBox, start: datetime, end: datetime) -> str | None:
    """Why `cov` does not serve the mission, in words, or None if it does."""
    if cov is None:
        return None
    if start < cov.start:
        return f"starts {_fmt(cov.start)} but the mission needs from {_fmt(start)}"
    if end > cov.end:
        return f"ends {_fmt(cov.end)} but the mission needs until {_fmt(end)}"
    if not (
        cov.area.contains(area.lon_min, area.lat_min)
        and cov.area.contains(area.lon_max, area.lat_max)
    ):
        return (
            f"covers lon {cov.area.lon_min:.2f}..{cov.area.lon_max:.2f}, lat "
            f"{cov.area.lat_min:.2f}..{cov.area.lat_max:.2f}, not the seed area"
        )
    return None
