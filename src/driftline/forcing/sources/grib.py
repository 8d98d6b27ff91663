"""The `grib` kind: GRIB 1/2 files (GFS, ECMWF and the like) read through cfgrib and ecCodes.

A file may mix levels and parameters (a GFS file holds hundreds of fields): cfgrib
splits it into hypercubes, and the one holding the wanted pair is used. Forecast files
run along `step`; that axis becomes valid time. Longitudes in 0..360 are wrapped to
-180..180. The pair is found by CF standard name (cfgrib sets `eastward_wind` for `10u`),
then by the GRIB short names in `GRIB_SHORT_NAMES`, or named in `variable_map` (cfgrib's
variable names, e.g. `["u10", "v10"]`).

cfgrib writes no index files here (`indexpath=""`): forcing folders may be read-only.
"""

from __future__ import annotations

import glob
import os
import warnings
from datetime import datetime
from functools import lru_cache

import numpy as np
import xarray as xr

from driftline.errors import ForcingGap, ForcingUnavailable
from driftline.forcing.cf import component_names
from driftline.forcing.gridded import coverage_of, cut
from driftline.forcing.model import BBox, Coverage
from driftline.forcing.sources.base import PathSource
from driftline.netcdf_io import NETCDF_LOCK

#: GRIB short names of each variable's (east, north) pair, for parameters without a CF name.
GRIB_SHORT_NAMES: dict[str, list[tuple[str, str]]] = {
    "wind": [("10u", "10v"), ("u10", "v10")],
    "current": [("sve", "svn"), ("uoe", "von"), ("ucurr", "vcurr"), ("ocu", "ocv")],
    "stokes": [("ust", "vst")],
}
#: Open without writing `.idx` files beside the data.
_BACKEND_KWARGS = {"indexpath": ""}


class GribSource(PathSource):
    """Gridded GRIB forcing: one file or a glob of files."""

    kind = "grib"

    def coverage(self) -> Coverage:
        location = self.resolved
        stamp = os.stat(location).st_mtime if os.path.exists(location) else 0.0
        mapping = tuple(sorted(self.config.variable_map.items()))
        return _coverage_cached(location, stamp, self.config.variables[0], mapping)

    def subset(self, variable: str, box: BBox, start: datetime, end: datetime) -> xr.Dataset:
        with NETCDF_LOCK:
            ds, names = grib_pair(self.resolved, variable, self.config.variable_map)
            return cut(
                ds,
                source=self.name,
                variable=variable,
                variable_map={variable: names},
                box=box,
                start=start,
                end=end,
            )


def grib_files(location: str) -> list[str]:
    files = sorted(glob.glob(location)) if any(ch in location for ch in "*?[") else [location]
    if not files or not all(os.path.exists(f) for f in files):
        raise ForcingUnavailable(f"no GRIB file at {location}")
    return files


def grib_pair(
    location: str, variable: str, variable_map: dict[str, tuple[str, str]]
) -> tuple[xr.Dataset, tuple[str, str]]:
    """The hypercube holding `variable`'s pair across the files, on valid time, and the names."""
    pieces: list[xr.Dataset] = []
    names: tuple[str, str] | None = None
    for path in grib_files(location):
        found = _pair_in_file(path, variable, variable_map)
        if found is None:
            raise ForcingGap(f"GRIB file {path} has no {variable} pair")
        ds, names = found
        pieces.append(ds[list(names)])
    assert names is not None
    merged = pieces[0] if len(pieces) == 1 else xr.concat(pieces, dim="time").sortby("time")
    return merged, names


def _pair_in_file(
    path: str, variable: str, variable_map: dict[str, tuple[str, str]]
) -> tuple[xr.Dataset, tuple[str, str]] | None:
    import cfgrib  # ecCodes is loaded on first use, not when Driftline is imported

    try:
        with warnings.catch_warnings():
            # cfgrib's own xr.merge call warns about an xarray default it does not set.
            warnings.simplefilter("ignore", FutureWarning)
            cubes = cfgrib.open_datasets(path, backend_kwargs=_BACKEND_KWARGS)
    except (OSError, ValueError, RuntimeError, EOFError) as exc:
        raise ForcingUnavailable(f"cannot read GRIB {path}: {exc}") from exc
    for cube in cubes:
        names = component_names(cube, variable, variable_map) or _by_short_name(cube, variable)
        if names is not None:
            return on_valid_time(cube), names
    return None


def _by_short_name(ds: xr.Dataset, variable: str) -> tuple[str, str] | None:
    by_short = {ds[name].attrs.get("GRIB_shortName"): str(name) for name in ds.data_vars}
    for u_short, v_short in GRIB_SHORT_NAMES[variable]:
        if u_short in by_short and v_short in by_short:
            return by_short[u_short], by_short[v_short]
    return None


def on_valid_time(ds: xr.Dataset) -> xr.Dataset:
    """A cfgrib hypercube with one `time` axis of valid times and longitudes in -180..180."""
    if "step" in ds.dims and "time" in ds.dims:
        raise ForcingUnavailable(
            "a GRIB source holds several forecast runs; list one run (or an analysis "
            "series) per source"
        )
    if "step" in ds.dims:
        ds = ds.swap_dims({"step": "valid_time"}).drop_vars(["step", "time"], errors="ignore")
        ds = ds.rename({"valid_time": "time"})
    elif "valid_time" in ds.coords:
        ds = ds.drop_vars("valid_time")
    if "time" not in ds.dims:
        ds = ds.expand_dims("time")
    ds["time"].attrs = {"standard_name": "time"}
    lons = np.asarray(ds["longitude"].values)
    if lons.max() > 180:
        wrapped = ((lons + 180) % 360) - 180
        ds = ds.assign_coords(longitude=("longitude", wrapped, ds["longitude"].attrs))
        ds = ds.sortby("longitude")
    return ds


@lru_cache(maxsize=64)
def _coverage_cached(
    location: str, stamp: float, variable: str, mapping: tuple[tuple[str, tuple[str, str]], ...]
) -> Coverage:
    with NETCDF_LOCK:
        ds, _ = grib_pair(location, variable, dict(mapping))
        return coverage_of(ds)
