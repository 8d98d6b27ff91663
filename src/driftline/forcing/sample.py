"""Synthetic but realistic CF forcing, so the demo and the tests need no internet.

* current: a semi-diurnal (M2) tidal ellipse plus a slowly drifting mesoscale eddy and a
  weak residual flow, magnitudes of 0.1-0.6 m/s as on a shelf sea;
* wind: a 6-12 m/s wind whose direction veers through the period, as a front passes.

Also `write_constant_forcing` for analytic validation (uniform fields). Files are
written with the same CF names and encoding as subsets (`driftline.forcing.cf`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import xarray as xr

from driftline.forcing.cf import to_datetime64, vector_dataset, write_netcdf
from driftline.geo import KM_PER_DEG

M2_PERIOD_H = 12.42
CURRENT_NAMES = ("u", "v")
CURRENT_STANDARD_NAMES = ("x_sea_water_velocity", "y_sea_water_velocity")
WIND_NAMES = ("x_wind", "y_wind")

Axes = tuple[np.ndarray, np.ndarray, np.ndarray]  # (times, lats, lons)


@dataclass(frozen=True)
class SampleForcing:
    current_path: Path
    wind_path: Path


def _grid(
    lat: float, lon: float, start: datetime, hours: int, half_extent_deg: float, step_deg: float
) -> Axes:
    lats = np.arange(lat - half_extent_deg, lat + half_extent_deg + step_deg / 2, step_deg)
    # Longitudes span more degrees at high latitude so the box is roughly square in km.
    lon_half = half_extent_deg / max(np.cos(np.radians(lat)), 0.2)
    lons = np.arange(lon - lon_half, lon + lon_half + step_deg / 2, step_deg)
    times = np.array([to_datetime64(start + timedelta(hours=h)) for h in range(hours + 1)])
    return times, lats, lons


def write_sample_forcing(
    out_dir: Path,
    *,
    lat: float,
    lon: float,
    start: datetime,
    hours: int,
    half_extent_deg: float = 1.5,
    resolution_deg: float = 0.05,
) -> SampleForcing:
    """Write `current.nc` and `wind.nc` (hourly, CF) centred on `lat`, `lon` from `start`."""
    axes = _grid(lat, lon, start, hours, half_extent_deg, resolution_deg)
    times, lats, lons = axes
    t_h = (times - times[0]) / np.timedelta64(1, "h")
    mesh = np.meshgrid(t_h, lats, lons, indexing="ij")
    current = vector_dataset(
        CURRENT_NAMES,
        CURRENT_STANDARD_NAMES,
        _tide_eddy_current(mesh, lat, lon),
        axes,
        title="Driftline sample current: M2 tide + eddy + residual",
        source="driftline synthetic",
    )
    wind = vector_dataset(
        WIND_NAMES,
        WIND_NAMES,
        _veering_wind(mesh, lat),
        axes,
        title="Driftline sample wind: veering frontal passage",
        source="driftline synthetic",
    )
    return SampleForcing(
        current_path=write_netcdf(current, out_dir / "current.nc"),
        wind_path=write_netcdf(wind, out_dir / "wind.nc"),
    )


def write_sample_catalog(
    out_dir: Path, *, lat: float = 60.0, lon: float = 4.0, start: datetime, hours: int
) -> Path:
    """The sample pair plus `catalog.json` naming them (relative paths: the folder moves)."""
    sample = write_sample_forcing(out_dir, lat=lat, lon=lon, start=start, hours=hours)
    sources = [
        {
            "name": f"sample-{variable}",
            "kind": "netcdf",
            "path": path.name,
            "variables": [variable],
            "priority": 10,
        }
        for variable, path in (("current", sample.current_path), ("wind", sample.wind_path))
    ]
    catalog = out_dir / "catalog.json"
    catalog.write_text(json.dumps({"sources": sources}, indent=2) + "\n")
    return catalog


def _tide_eddy_current(
    mesh: Sequence[np.ndarray], lat: float, lon: float
) -> tuple[np.ndarray, np.ndarray]:
    """(u, v) of an M2 tide, a drifting eddy and a weak residual, on a (t, lat, lon) mesh."""
    tt, yy, xx = mesh
    # Tide: an ellipse, major axis NE-SW, 0.35 m/s, phase slowly varying in space.
    phase = 2 * np.pi * tt / M2_PERIOD_H + 0.3 * (xx - lon)
    tide_u = 0.35 * np.cos(phase) * np.cos(np.radians(45)) - 0.12 * np.sin(phase) * 0.7
    tide_v = 0.35 * np.cos(phase) * np.sin(np.radians(45)) + 0.12 * np.sin(phase) * 0.7
    # Eddy: cyclonic, radius ~25 km, 0.25 m/s at its rim, drifting slowly west.
    km_per_deg_lon = KM_PER_DEG * np.cos(np.radians(lat))
    cx = lon + 0.25 - 0.004 * tt
    cy = lat - 0.15
    dx = (xx - cx) * km_per_deg_lon
    dy = (yy - cy) * KM_PER_DEG
    r = np.hypot(dx, dy)
    rim = 25.0
    speed = 0.25 * (r / rim) * np.exp(0.5 * (1 - (r / rim) ** 2))
    eddy_u = -speed * dy / np.maximum(r, 1e-6)
    eddy_v = speed * dx / np.maximum(r, 1e-6)
    return tide_u + eddy_u + 0.05, tide_v + eddy_v + 0.08


def _veering_wind(mesh: Sequence[np.ndarray], lat: float) -> tuple[np.ndarray, np.ndarray]:
    """(u, v) of a gusty 6-12 m/s wind veering from south-west to north-west over 48 h."""
    tt, yy, _ = mesh
    direction_from = np.radians(225 + 90 * np.clip(tt / 48.0, 0, 1))
    wind_speed = 9 + 3 * np.sin(2 * np.pi * tt / 30.0) + 0.5 * np.sin(0.8 * (yy - lat))
    return -wind_speed * np.sin(direction_from), -wind_speed * np.cos(direction_from)


def write_constant_forcing(
    out_dir: Path,
    *,
    lat: float,
    lon: float,
    start: datetime,
    hours: int,
    current: tuple[float, float] = (0.0, 0.0),
    wind: tuple[float, float] = (0.0, 0.0),
    half_extent_deg: float = 2.0,
    resolution_deg: float = 0.1,
) -> SampleForcing:
    """Uniform current and wind (u, v in m/s) over a box: analytic drift has a known answer."""
    axes = _grid(lat, lon, start, hours, half_extent_deg, resolution_deg)
    return SampleForcing(
        current_path=write_netcdf(
            _uniform(axes, CURRENT_NAMES, CURRENT_STANDARD_NAMES, current, "constant current"),
            out_dir / "current.nc",
        ),
        wind_path=write_netcdf(
            _uniform(axes, WIND_NAMES, WIND_NAMES, wind, "constant wind"), out_dir / "wind.nc"
        ),
    )


def _uniform(
    axes: Axes,
    names: tuple[str, str],
    standard_names: tuple[str, str],
    uv: tuple[float, float],
    title: str,
) -> xr.Dataset:
    shape = tuple(len(axis) for axis in axes)
    return vector_dataset(
        names,
        standard_names,
        (np.full(shape, uv[0]), np.full(shape, uv[1])),
        axes,
        title=title,
        source="driftline synthetic",
    )
