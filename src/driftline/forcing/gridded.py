"""Gridded forcing held in an (opened, lazy) xarray dataset: its coverage and its cut.

Every kind that reads a regular latitude/longitude grid (NetCDF files and OPeNDAP URLs,
GRIB, Copernicus Marine) opens its data its own way, then hands the dataset here: the
coverage is read from the coordinates only, and the cut selects the mission's box and
window *before* loading, so a lazy backend (netCDF-C over DAP, cfgrib, Zarr over HTTP)
transfers only that hyperslab.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import numpy as np
import xarray as xr

from driftline.errors import ForcingGap
from driftline.forcing.cf import (
    OUTPUT_NAMES,
    component_names,
    coordinate_names,
    from_datetime64,
    label_output,
    to_datetime64,
)
from driftline.forcing.model import BBox, Coverage

#: Names of vertical dimensions; the surface (index nearest zero) is the one drift needs.
VERTICAL_DIMS = ("depth", "deptht", "depthu", "z", "lev", "level", "elevation")


def coverage_of(ds: xr.Dataset) -> Coverage:
    """Area, time span and grid spacing, from the coordinates alone (no data read)."""
    t, la, lo = coordinate_names(ds)
    times = np.asarray(ds[t].values)
    lats = np.asarray(ds[la].values)
    lons = np.asarray(ds[lo].values)
    resolution = float(np.abs(np.diff(lats[:2]))[0]) if lats.size > 1 else 1.0
    return Coverage(
        area=BBox(float(lons.min()), float(lats.min()), float(lons.max()), float(lats.max())),
        start=from_datetime64(times.min()),
        end=from_datetime64(times.max()),
        resolution_deg=resolution,
    )


def at_surface(ds: xr.Dataset) -> xr.Dataset:
    """`ds` without a vertical axis: the level nearest the surface, lazily."""
    for dim in VERTICAL_DIMS:
        if dim in ds.dims:
            levels = np.abs(np.asarray(ds[dim].values)) if dim in ds.coords else None
            index = int(np.argmin(levels)) if levels is not None else 0
            ds = ds.isel({dim: index}, drop=True)
    return ds


def cut(
    ds: xr.Dataset,
    *,
    source: str,
    variable: str,
    variable_map: Mapping[str, tuple[str, str]],
    box: BBox,
    start: datetime,
    end: datetime,
) -> xr.Dataset:
    """The (east, north) pair of `variable` over `box`, a time step either side, loaded.

    Selection happens on the lazy dataset; only `.load()` at the end reads data.
    """
    t, la, lo = coordinate_names(ds)
    names = component_names(ds, variable, variable_map)
    if names is None:
        raise ForcingGap(f"source '{source}' has no {variable} variables")
    times = ds[t].values
    # One step at or before `start` and one at or after `end`, so readers can interpolate.
    first = max(int(np.searchsorted(times, to_datetime64(start), side="right")) - 1, 0)
    last = min(int(np.searchsorted(times, to_datetime64(end), side="left")), len(times) - 1)
    lats = ds[la].values
    # Latitude may run north to south; `sel` slices must follow the file's order.
    lat_slice = (
        slice(box.lat_min, box.lat_max) if lats[0] < lats[-1] else slice(box.lat_max, box.lat_min)
    )
    selected = (
        at_surface(ds[list(names)])
        .isel({t: slice(first, last + 1)})
        .sel({la: lat_slice, lo: slice(box.lon_min, box.lon_max)})
    )
    u_name, v_name = OUTPUT_NAMES[variable]
    renamed = selected.rename({names[0]: u_name, names[1]: v_name, t: "time", la: "lat", lo: "lon"})
    # Scalar leftovers (a GRIB level, a reference time) are not CF grid coordinates.
    renamed = renamed.drop_vars([c for c in renamed.coords if c not in ("time", "lat", "lon")])
    label_output(renamed, variable, f"driftline subset of {source}")
    # South to north once loaded (GRIB runs north to south): one layout for every subset.
    return renamed.load().sortby("lat")
