"""Cut a source to a mission's area and window and write it as CF NetCDF for OpenDrift."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import xarray as xr

from driftline.errors import ForcingGap
from driftline.forcing.catalog import (
    OUTPUT_NAMES,
    BBox,
    ChosenSource,
    component_names,
    coordinate_names,
    open_forcing,
)
from driftline.forcing.plan import subset_bounds

ENCODING = {"zlib": True, "complevel": 4, "dtype": "float32"}
CONSTANT_GRID_DEG = 0.1


def _naive(moment: datetime) -> np.datetime64:
    return np.datetime64(moment.replace(tzinfo=None), "ns")


def subset_to_file(
    chosen: ChosenSource, area: BBox, start: datetime, end: datetime, out_path: Path
) -> Path:
    """Write `chosen`'s variable over `area` (clipped to the source) and `start..end`."""
    box, lo, hi = subset_bounds(area, start, end)
    if chosen.synthetic:
        ds = _constant(chosen, box, lo, hi)
    else:
        assert chosen.location is not None
        with open_forcing(chosen.location) as source:
            ds = _cut(source, chosen, box, lo, hi)
    u_name, v_name = OUTPUT_NAMES[chosen.variable]
    encoding: dict[str, dict[str, object]] = {u_name: dict(ENCODING), v_name: dict(ENCODING)}
    encoding["time"] = {"units": "hours since 1970-01-01 00:00:00", "dtype": "float64"}
    out_path.parent.mkdir(parents=True, exist_ok=True)
    ds.to_netcdf(out_path, encoding=encoding, format="NETCDF4")
    return out_path


def _cut(
    source: xr.Dataset, chosen: ChosenSource, box: BBox, lo: datetime, hi: datetime
) -> xr.Dataset:
    t, la, lo_name = coordinate_names(source)
    names = component_names(source, chosen.variable, chosen.config)
    if names is None:
        raise ForcingGap(f"source '{chosen.name}' has no {chosen.variable} variables")
    times = source[t].values
    first = max(int(np.searchsorted(times, _naive(lo), side="right")) - 1, 0)
    last = min(int(np.searchsorted(times, _naive(hi), side="left")), len(times) - 1)
    lats = source[la].values
    lat_slice = (
        slice(box.lat_min, box.lat_max) if lats[0] < lats[-1] else slice(box.lat_max, box.lat_min)
    )
    cut = (
        source[list(names)]
        .isel({t: slice(first, last + 1)})
        .sel({la: lat_slice, lo_name: slice(box.lon_min, box.lon_max)})
    )
    u_name, v_name = OUTPUT_NAMES[chosen.variable]
    cut = cut.rename({names[0]: u_name, names[1]: v_name, t: "time", la: "lat", lo_name: "lon"})
    cut[u_name].attrs = {"standard_name": u_name, "units": "m s-1"}
    cut[v_name].attrs = {"standard_name": v_name, "units": "m s-1"}
    cut["lat"].attrs = {"standard_name": "latitude", "units": "degrees_north"}
    cut["lon"].attrs = {"standard_name": "longitude", "units": "degrees_east"}
    cut["time"].attrs = {"standard_name": "time"}
    cut.attrs = {"Conventions": "CF-1.8", "source": f"driftline subset of {chosen.name}"}
    return cut.load()


def _constant(chosen: ChosenSource, box: BBox, lo: datetime, hi: datetime) -> xr.Dataset:
    u_value, v_value = chosen.config.values[chosen.variable]
    lats = np.arange(box.lat_min, box.lat_max + CONSTANT_GRID_DEG / 2, CONSTANT_GRID_DEG)
    lons = np.arange(box.lon_min, box.lon_max + CONSTANT_GRID_DEG / 2, CONSTANT_GRID_DEG)
    hours = int((hi - lo) / timedelta(hours=1))
    times = np.array([_naive(lo + timedelta(hours=h)) for h in range(hours + 1)])
    shape = (len(times), len(lats), len(lons))
    u_name, v_name = OUTPUT_NAMES[chosen.variable]
    dims = ("time", "lat", "lon")
    return xr.Dataset(
        {
            u_name: (
                dims,
                np.full(shape, u_value, "float32"),
                {"standard_name": u_name, "units": "m s-1"},
            ),
            v_name: (
                dims,
                np.full(shape, v_value, "float32"),
                {"standard_name": v_name, "units": "m s-1"},
            ),
        },
        coords={
            "time": ("time", times, {"standard_name": "time"}),
            "lat": ("lat", lats, {"standard_name": "latitude", "units": "degrees_north"}),
            "lon": ("lon", lons, {"standard_name": "longitude", "units": "degrees_east"}),
        },
        attrs={"Conventions": "CF-1.8", "source": f"driftline constant {chosen.name} (synthetic)"},
    )
