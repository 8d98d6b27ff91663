"""The `netcdf` kind: CF data in a file, a glob of files, an s3:// key or an OPeNDAP URL.

OPeNDAP / THREDDS URLs (`http(s)://…/dodsC/…`) are opened lazily by xarray through
netCDF-C's DAP client: opening reads the metadata and the coordinate axes, and the cut
(`gridded.cut`) selects the mission's box and window before loading, so only that
hyperslab crosses the wire (measured in tests/integration/test_forcing_opendap.py).

Coverage is read once per file and cached until the file changes. Every read holds
`NETCDF_LOCK`: xarray opens lazily, so the lock spans from opening to the last `.values`
or `.load()`, and the callers run in worker threads.
"""

from __future__ import annotations

import glob
import os
from datetime import datetime
from functools import lru_cache

import xarray as xr

from driftline.errors import ForcingUnavailable
from driftline.forcing.gridded import coverage_of, cut
from driftline.forcing.model import BBox, Coverage
from driftline.forcing.sources.base import PathSource
from driftline.netcdf_io import NETCDF_LOCK


class NetcdfSource(PathSource):
    """Gridded CF forcing Driftline can open itself."""

    kind = "netcdf"

    def coverage(self) -> Coverage:
        return coverage(self.resolved)

    def subset(self, variable: str, box: BBox, start: datetime, end: datetime) -> xr.Dataset:
        try:
            with NETCDF_LOCK, open_forcing(self.resolved) as ds:
                return cut(
                    ds,
                    source=self.name,
                    variable=variable,
                    variable_map=self.config.variable_map,
                    box=box,
                    start=start,
                    end=end,
                )
        except (OSError, RuntimeError) as exc:
            # A server that drops mid-transfer: worth retrying, like one that is down.
            raise ForcingUnavailable(f"source {self.name}: reading failed: {exc}") from exc


def is_remote(location: str) -> bool:
    """An OPeNDAP / HTTP URL (read through netCDF-C's DAP client)."""
    return location.startswith(("http://", "https://", "dap2://", "dap4://"))


def open_forcing(location: str) -> xr.Dataset:
    """Open a CF file, glob, s3:// key or OPeNDAP URL; unreachable → ForcingUnavailable.

    Callers hold `NETCDF_LOCK` until they are done with the (lazy) dataset.
    """
    try:
        if location.startswith("s3://"):
            import s3fs  # optional dependency, only for S3-hosted forcing

            fs = s3fs.S3FileSystem(
                client_kwargs={"endpoint_url": os.environ.get("DRIFTLINE_S3_ENDPOINT_URL")}
            )
            return xr.open_dataset(fs.open(location), engine="h5netcdf")
        if is_remote(location):
            # netCDF4 engine: its DAP client sends each selection as a constraint expression.
            return xr.open_dataset(location, engine="netcdf4")
        if any(ch in location for ch in "*?[") and "://" not in location:
            files = sorted(glob.glob(location))
            if not files:
                raise ForcingUnavailable(f"no files match {location}")
            return xr.open_mfdataset(files, combine="by_coords")
        return xr.open_dataset(location)
    except ForcingUnavailable:
        raise
    except (OSError, ValueError, RuntimeError, ImportError) as exc:
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
        return coverage_of(ds)
