"""Gridded probability density of a particle cloud, and its CF NetCDF product.

The density NetCDF is written under `NETCDF_LOCK` (netCDF4/HDF5 are not thread-safe);
the histogram itself is computed outside it so concurrent missions still overlap.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from driftline.geo import KM_PER_DEG
from driftline.netcdf_io import NETCDF_LOCK
from driftline.postprocess.cloud import Cloud


@dataclass(frozen=True)
class Grid:
    lon_edges: np.ndarray
    lat_edges: np.ndarray

    @property
    def lon_centres(self) -> np.ndarray:
        return (self.lon_edges[:-1] + self.lon_edges[1:]) / 2

    @property
    def lat_centres(self) -> np.ndarray:
        return (self.lat_edges[:-1] + self.lat_edges[1:]) / 2

    def counts(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """Particle counts per cell, shape (lat, lon): what `np.histogram2d` counts (the
        last bin closed), by index and `bincount`, several times faster on big clouds."""
        good = np.isfinite(lon) & np.isfinite(lat)
        col, row = _bin(self.lon_edges, lon[good]), _bin(self.lat_edges, lat[good])
        inside = (col >= 0) & (row >= 0)
        nx, ny = self.lon_edges.size - 1, self.lat_edges.size - 1
        flat = np.bincount(row[inside] * nx + col[inside], minlength=nx * ny)
        return flat.reshape(ny, nx).astype("float64")


def _bin(edges: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Each value's bin in `edges` (left-closed, the last bin closed on both sides), -1
    outside."""
    index = np.searchsorted(edges, values, side="right") - 1
    index[values == edges[-1]] = edges.size - 2
    index[(index < 0) | (index > edges.size - 2)] = -1
    return index


def make_grid(lon: np.ndarray, lat: np.ndarray, resolution_m: float, max_cells: int = 400) -> Grid:
    """A regular lon/lat grid of ~`resolution_m` cells over every finite position."""
    lon_ok, lat_ok = lon[np.isfinite(lon)], lat[np.isfinite(lat)]
    mid_lat = float(np.mean(lat_ok)) if lat_ok.size else 0.0
    dlat = resolution_m / 1000 / KM_PER_DEG
    dlon = dlat / max(math.cos(math.radians(mid_lat)), 0.05)
    lo = (float(lon_ok.min()) - 2 * dlon, float(lon_ok.max()) + 2 * dlon)
    la = (float(lat_ok.min()) - 2 * dlat, float(lat_ok.max()) + 2 * dlat)
    # Keep the grid tractable for very spread clouds: coarsen rather than explode.
    scale = max(1.0, (lo[1] - lo[0]) / dlon / max_cells, (la[1] - la[0]) / dlat / max_cells)
    dlon, dlat = dlon * scale, dlat * scale
    return Grid(np.arange(lo[0], lo[1] + dlon, dlon), np.arange(la[0], la[1] + dlat, dlat))


PROBABILITY_ATTRS = {
    "long_name": "probability that the object is in the cell",
    "units": "1",
    "comment": "sums over a time step to the fraction of particles afloat",
}
ENCODING: dict[str, dict[str, Any]] = {
    "probability": {"zlib": True, "complevel": 4},
    "scenario_probability": {"zlib": True, "complevel": 4},
    "time": {"units": "hours since 1970-01-01 00:00:00", "dtype": "float64"},
}


SCENARIO_ATTRS = {
    "long_name": "probability that the object is in the cell and its scenario is the true one",
    "units": "1",
    "comment": "the scenarios' layers sum to `probability`; a scenario's layer sums over a "
    "time step to its share of the particles afloat (its weight when all are afloat)",
}


def write_density(cloud: Cloud, grid: Grid, path: Path, scenario_names: Sequence[str] = ()) -> None:
    """Probability per cell and output time; each time's cells sum to the fraction afloat.

    With several scenarios, `scenario_probability` holds each one's part of it.
    """
    ds = density_dataset(cloud, grid, scenario_names)
    with NETCDF_LOCK:
        ds.to_netcdf(path, encoding={k: v for k, v in ENCODING.items() if k in ds.variables})


def probability(
    cloud: Cloud,
    grid: Grid,
    particles: np.ndarray | None = None,
    steps: Sequence[int] | None = None,
) -> np.ndarray:
    """(time, lat, lon) share of all the cloud's particles in each cell: the weighted union
    (each particle weighs 1 / total, since particles were divided by weight). `steps`:
    only those output times (default every one)."""
    lon = cloud.lon if particles is None else cloud.lon[particles]
    lat = cloud.lat if particles is None else cloud.lat[particles]
    chosen = range(len(cloud.times)) if steps is None else steps
    return np.stack([grid.counts(lon[:, i], lat[:, i]) / cloud.total for i in chosen]).astype(
        "float32"
    )


def density_dataset(cloud: Cloud, grid: Grid, scenario_names: Sequence[str] = ()) -> xr.Dataset:
    """The density as an in-memory CF dataset (no file I/O)."""
    times = np.array([np.datetime64(t.replace(tzinfo=None), "ns") for t in cloud.times])
    variables: dict[str, Any] = {
        "probability": (("time", "lat", "lon"), probability(cloud, grid), PROBABILITY_ATTRS)
    }
    coords: dict[str, Any] = {}
    if len(scenario_names) > 1:
        which = cloud.scenarios()
        layers = [probability(cloud, grid, which == k) for k in range(len(scenario_names))]
        variables["scenario_probability"] = (
            ("scenario", "time", "lat", "lon"),
            np.stack(layers),
            SCENARIO_ATTRS,
        )
        coords["scenario"] = ("scenario", list(scenario_names), {"long_name": "scenario name"})
    return xr.Dataset(
        variables,
        coords={
            **coords,
            "time": ("time", times, {"standard_name": "time"}),
            "lat": (
                "lat",
                grid.lat_centres,
                {"standard_name": "latitude", "units": "degrees_north"},
            ),
            "lon": (
                "lon",
                grid.lon_centres,
                {"standard_name": "longitude", "units": "degrees_east"},
            ),
        },
        attrs={"Conventions": "CF-1.8", "title": "Driftline probability density"},
    )
