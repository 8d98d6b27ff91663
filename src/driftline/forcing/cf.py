"""CF conventions as Driftline reads and writes them: variable names, coordinates, times.

Sources are found by CF `standard_name`, and every file Driftline writes (subsets,
sample forcing) uses the names OpenDrift's generic CF reader recognises, so this module
is the one place that knows both sides. Writing holds `NETCDF_LOCK` (see
`driftline.netcdf_io`): it is called from worker threads.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import xarray as xr

from driftline.errors import ForcingUnavailable
from driftline.netcdf_io import NETCDF_LOCK

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

CONVENTIONS = "CF-1.8"
VELOCITY_UNITS = "m s-1"
DIMS = ("time", "lat", "lon")
TIME_ATTRS = {"standard_name": "time"}
LAT_ATTRS = {"standard_name": "latitude", "units": "degrees_north"}
LON_ATTRS = {"standard_name": "longitude", "units": "degrees_east"}
#: float32 and zlib: subsets are stored and shipped, and float32 is ample for velocities.
ENCODING = {"zlib": True, "complevel": 4, "dtype": "float32"}
TIME_ENCODING = {"units": "hours since 1970-01-01 00:00:00", "dtype": "float64"}


def to_datetime64(moment: datetime) -> np.datetime64:
    """An aware UTC datetime as the naive datetime64[ns] NetCDF time axes hold."""
    return np.datetime64(moment.replace(tzinfo=None), "ns")


def from_datetime64(value: np.datetime64) -> datetime:
    """A NetCDF time value as an aware UTC datetime."""
    seconds = (value - np.datetime64("1970-01-01T00:00:00")) / np.timedelta64(1, "s")
    return datetime.fromtimestamp(float(seconds), UTC)


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


def component_names(
    ds: xr.Dataset, variable: str, variable_map: Mapping[str, tuple[str, str]]
) -> tuple[str, str] | None:
    """The (east, north) variable names of `variable` in `ds`, or None.

    An explicit `variable_map` entry wins, for files without standard names.
    """
    if variable in variable_map:
        u, v = variable_map[variable]
        return (u, v) if u in ds and v in ds else None
    by_standard = {ds[name].attrs.get("standard_name"): str(name) for name in ds.data_vars}
    for u_std, v_std in STANDARD_NAMES[variable]:
        if u_std in by_standard and v_std in by_standard:
            return by_standard[u_std], by_standard[v_std]
    return None


def label_output(cut: xr.Dataset, variable: str, source: str) -> xr.Dataset:
    """Replace the attributes of a renamed cut (output names, time/lat/lon) with CF ones.

    The source's own attributes are dropped on purpose: OpenDrift must see exactly the
    standard names it expects, whatever the producer wrote.
    """
    u_name, v_name = OUTPUT_NAMES[variable]
    cut[u_name].attrs = {"standard_name": u_name, "units": VELOCITY_UNITS}
    cut[v_name].attrs = {"standard_name": v_name, "units": VELOCITY_UNITS}
    cut["lat"].attrs = dict(LAT_ATTRS)
    cut["lon"].attrs = dict(LON_ATTRS)
    cut["time"].attrs = dict(TIME_ATTRS)
    cut.attrs = {"Conventions": CONVENTIONS, "source": source}
    return cut


def vector_dataset(
    names: tuple[str, str],
    standard_names: tuple[str, str],
    components: tuple[np.ndarray, np.ndarray],
    axes: tuple[np.ndarray, np.ndarray, np.ndarray],
    **attrs: str,
) -> xr.Dataset:
    """A CF dataset of one (u, v) vector on a (time, lat, lon) grid; `axes` in that order."""
    times, lats, lons = axes
    return xr.Dataset(
        {
            name: (DIMS, data.astype("float32"), {"standard_name": std, "units": VELOCITY_UNITS})
            for name, std, data in zip(names, standard_names, components, strict=True)
        },
        coords={
            "time": ("time", times, dict(TIME_ATTRS)),
            "lat": ("lat", lats, dict(LAT_ATTRS)),
            "lon": ("lon", lons, dict(LON_ATTRS)),
        },
        attrs={"Conventions": CONVENTIONS, **attrs},
    )


def write_netcdf(ds: xr.Dataset, path: Path) -> Path:
    """Write `ds` as compressed NETCDF4, atomically (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    encoding: dict[str, dict[str, object]] = {str(name): dict(ENCODING) for name in ds.data_vars}
    encoding["time"] = dict(TIME_ENCODING)
    tmp = path.with_suffix(".tmp.nc")
    with NETCDF_LOCK:
        ds.to_netcdf(tmp, encoding=encoding, format="NETCDF4")
    tmp.replace(path)
    return path
