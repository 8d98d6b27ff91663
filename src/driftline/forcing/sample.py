"""Synthetic but realistic CF forcing, so the demo and the tests need no internet.

* current: a semi-diurnal (M2) tidal ellipse plus a slowly drifting mesoscale eddy and a
  weak residual flow, magnitudes of 0.1-0.6 m/s as on a shelf sea;
* wind: a 6-12 m/s wind whose direction veers through the period, as a front passes.

Also `write_constant_forcing` for analytic validation (uniform fields).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import xarray as xr

M2_PERIOD_H = 12.42
ENCODING = {"zlib": True, "complevel": 4, "dtype": "float32"}


@dataclass(frozen=True)
class SampleForcing:
    current_path: Path
    wind_path: Path


def _grid(
    lat: float, lon: float, start: datetime, hours: int, half_extent_deg: float, step_deg: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    lats = np.arange(lat - half_extent_deg, lat + half_extent_deg + step_deg / 2, step_deg)
    # Longitudes span more degrees at high latitude so the box is roughly square in km.
    lon_half = half_extent_deg / max(np.cos(np.radians(lat)), 0.2)
    lons = np.arange(lon - lon_half, lon + lon_half + step_deg / 2, step_deg)
    naive = start.replace(tzinfo=None)
    times = np.array([np.datetime64(naive + timedelta(hours=h), "ns") for h in range(hours + 1)])
    return lats, lons, times


def _dataset(
    names: tuple[str, str],
    standard_names: tuple[str, str],
    u: np.ndarray,
    v: np.ndarray,
    lats: np.ndarray,
    lons: np.ndarray,
    times: np.ndarray,
    title: str,
) -> xr.Dataset:
    dims = ("time", "lat", "lon")
    ds = xr.Dataset(
        {
            names[0]: (
                dims,
                u.astype("float32"),
                {"standard_name": standard_names[0], "units": "m s-1"},
            ),
            names[1]: (
                dims,
                v.astype("float32"),
                {"standard_name": standard_names[1], "units": "m s-1"},
            ),
        },
        coords={
            "time": ("time", times, {"standard_name": "time"}),
            "lat": ("lat", lats, {"standard_name": "latitude", "units": "degrees_north"}),
            "lon": ("lon", lons, {"standard_name": "longitude", "units": "degrees_east"}),
        },
        attrs={"Conventions": "CF-1.8", "title": title, "source": "driftline synthetic"},
    )
    return ds


def _write(ds: xr.Dataset, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    encoding: dict[str, dict[str, object]] = {str(name): dict(ENCODING) for name in ds.data_vars}
    encoding["time"] = {"units": "hours since 1970-01-01 00:00:00", "dtype": "float64"}
    tmp = path.with_suffix(".tmp.nc")
    ds.to_netcdf(tmp, encoding=encoding, format="NETCDF4")
    tmp.replace(path)
    return path


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
    lats, lons, times = _grid(lat, lon, start, hours, half_extent_deg, resolution_deg)
    t_h = (times - times[0]) / np.timedelta64(1, "h")
    tt, yy, xx = np.meshgrid(t_h, lats, lons, indexing="ij")

    # Tide: an ellipse, major axis NE-SW, 0.35 m/s, phase slowly varying in space.
    phase = 2 * np.pi * tt / M2_PERIOD_H + 0.3 * (xx - lon)
    tide_u = 0.35 * np.cos(phase) * np.cos(np.radians(45)) - 0.12 * np.sin(phase) * 0.7
    tide_v = 0.35 * np.cos(phase) * np.sin(np.radians(45)) + 0.12 * np.sin(phase) * 0.7
    # Eddy: cyclonic, radius ~25 km, 0.25 m/s at its rim, drifting slowly west.
    km_per_deg_lat = 111.2
    km_per_deg_lon = 111.2 * np.cos(np.radians(lat))
    cx = lon + 0.25 - 0.004 * tt
    cy = lat - 0.15
    dx = (xx - cx) * km_per_deg_lon
    dy = (yy - cy) * km_per_deg_lat
    r = np.hypot(dx, dy)
    rim = 25.0
    speed = 0.25 * (r / rim) * np.exp(0.5 * (1 - (r / rim) ** 2))
    eddy_u = -speed * dy / np.maximum(r, 1e-6)
    eddy_v = speed * dx / np.maximum(r, 1e-6)
    current = _dataset(
        ("u", "v"),
        ("x_sea_water_velocity", "y_sea_water_velocity"),
        tide_u + eddy_u + 0.05,
        tide_v + eddy_v + 0.08,
        lats,
        lons,
        times,
        "Driftline sample current: M2 tide + eddy + residual",
    )
    # Wind: veering from south-westerly to north-westerly over 48 h, 6-12 m/s, gusty.
    direction_from = np.radians(225 + 90 * np.clip(tt / 48.0, 0, 1))
    wind_speed = 9 + 3 * np.sin(2 * np.pi * tt / 30.0) + 0.5 * np.sin(0.8 * (yy - lat))
    wind = _dataset(
        ("x_wind", "y_wind"),
        ("x_wind", "y_wind"),
        -wind_speed * np.sin(direction_from),
        -wind_speed * np.cos(direction_from),
        lats,
        lons,
        times,
        "Driftline sample wind: veering frontal passage",
    )
    return SampleForcing(
        current_path=_write(current, out_dir / "current.nc"),
        wind_path=_write(wind, out_dir / "wind.nc"),
    )


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
    lats, lons, times = _grid(lat, lon, start, hours, half_extent_deg, resolution_deg)
    shape = (len(times), len(lats), len(lons))
    return SampleForcing(
        current_path=_write(
            _dataset(
                ("u", "v"),
                ("x_sea_water_velocity", "y_sea_water_velocity"),
                np.full(shape, current[0]),
                np.full(shape, current[1]),
                lats,
                lons,
                times,
                "constant current",
            ),
            out_dir / "current.nc",
        ),
        wind_path=_write(
            _dataset(
                ("x_wind", "y_wind"),
                ("x_wind", "y_wind"),
                np.full(shape, wind[0]),
                np.full(shape, wind[1]),
                lats,
                lons,
                times,
                "constant wind",
            ),
            out_dir / "wind.nc",
        ),
    )
