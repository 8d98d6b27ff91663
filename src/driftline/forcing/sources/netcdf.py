"""The `netcdf` kind: CF data in a file, a glob of files, an s3:// key or an HTTP/OPeNDAP URL.

Coverage is read once per file and cached until the file changes. Every read holds
`NETCDF_LOCK`: xarray opens lazily, so the lock spans from opening to the last `.values`
or `.load()`, and the callers run in worker threads.
"""

from __future__ import annotations

import glob
import os
from datetime import datetime
from functools import lru_cache

import numpy as np
import xarray as xr

from driftline.errors import ForcingGap, ForcingUnavailable
from driftline.forcing.cf import (
    OUTPUT_NAMES,
    component_names,
    coordinate_names,
    from_datetime64,
    label_output,
    to_datetime64,
)
from driftline.forcing.model import BBox, Coverage
from driftline.forcing.sources.base import ForcingSource
from driftline.netcdf_io import NETCDF_LOCK


class NetcdfSource(ForcingSource):
    """Gridded CF forcing Driftline can open itself."""

    kind = "netcdf"

    def check(self) -> None:
        if not self.config.path:
            raise self.invalid("netcdf needs a path")

    @property
    def resolved(self) -> str:
        """`location`, never None once `check` has passed."""
        location = self.location
        assert location is not None  # guaranteed by check()
        return location

    def coverage(self) -> Coverage:
        return coverage(self.resolved)

    def subset(self, variable: str, box: BBox, start: datetime, end: datetime) -> xr.Dataset:
        with NETCDF_LOCK, open_forcing(self.resolved) as ds:
            return _cut(ds, self, variable, box, start, end)


def open_forcing(location: str) -> xr.Dataset:
    """Open a CF file, glob, s3:// key or URL; unreachable → ForcingUnavailable.

    Callers hold `NETCDF_LOCK` until they are done with the (lazy) dataset.
    """
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


def coverage(location: str) -> Coverage:
    """A file's area, time span and resolution (cached until the file changes)."""
    try:
        # Globs and URLs have no single mtime: they are read once per process.
        stamp = os.stat(location).st_mtime if os.path.exists(location) else 0.0
    except OSError:
        stamp = 0.0
    return _coverage_cached(location, stamp)


def clear_coverage_cache() -> None:
    """Forget every cached coverage (tests; a file replaced within one mtime tick)."""
    _coverage_cached.cache_clear()


@lru_cache(maxsize=256)
def _coverage_cached(location: str, stamp: float) -> Coverage:
    with NETCDF_LOCK, open_forcing(location) as ds:
        t, la, lo = coordinate_names(ds)
        times = ds[t].values
        lats = np.asarray(ds[la].values)
        lons = np.asarray(ds[lo].values)
    resolution = float(np.abs(np.diff(lats[:2]))[0]) if lats.size > 1 else 1.0
    return Coverage(
        area=BBox(float(lons.min()), float(lats.min()), float(lons.max()), float(lats.max())),
        start=from_datetime64(times.min()),
        end=from_datetime64(times.max()),
        resolution_deg=resolution,
    )


def _cut(
    ds: xr.Dataset,
    source: NetcdfSource,
    variable: str,
    box: BBox,
    start: datetime,
    end: datetime,
) -> xr.Dataset:
    """The (east, north) pair of `variable` over `box`, with a time step either side."""
    t, la, lo = coordinate_names(ds)
    names = component_names(ds, variable, source.config.variable_map)
    if names is None:
        raise ForcingGap(f"source '{source.name}' has no {variable} variables")
    times = ds[t].values
    # One step at or before `start` and one at or after `end`, so readers can interpolate.
    first = max(int(np.searchsorted(times, to_datetime64(start), side="right")) - 1, 0)
    last = min(int(np.searchsorted(times, to_datetime64(end), side="left")), len(times) - 1)
    lats = ds[la].values
    # Latitude may run north to south; `sel` slices must follow the file's order.
    lat_slice = (
        slice(box.lat_min, box.lat_max) if lats[0] < lats[-1] else slice(box.lat_max, box.lat_min)
    )
    cut = (
        ds[list(names)]
        .isel({t: slice(first, last + 1)})
        .sel({la: lat_slice, lo: slice(box.lon_min, box.lon_max)})
    )
    u_name, v_name = OUTPUT_NAMES[variable]
    cut = cut.rename({names[0]: u_name, names[1]: v_name, t: "time", la: "lat", lo: "lon"})
    label_output(cut, variable, f"driftline subset of {source.name}")
    return cut.load()
