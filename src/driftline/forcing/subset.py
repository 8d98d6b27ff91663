"""Cut a chosen source to a mission's area and window and write it as CF NetCDF for OpenDrift.

Called through `asyncio.to_thread`, several missions at once: the source's reads and
the write each hold `NETCDF_LOCK` (netCDF4/HDF5 are not thread-safe).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from driftline.forcing.catalog import BBox, ChosenSource
from driftline.forcing.cf import write_netcdf
from driftline.forcing.plan import subset_bounds


def subset_to_file(
    chosen: ChosenSource, area: BBox, start: datetime, end: datetime, out_path: Path
) -> Path:
    """Write `chosen`'s variable over `area` (clipped to the source) and `start..end`.

    The area and window are first rounded outward (`subset_bounds`), so missions that
    share a cache key get the same file.
    """
    box, lo, hi = subset_bounds(area, start, end)
    ds = chosen.source.subset(chosen.variable, box, lo, hi)
    return write_netcdf(ds, out_path)
