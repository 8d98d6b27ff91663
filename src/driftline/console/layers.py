"""The mission layers the console draws that no product carries in a browser's format.

Particles per output time and the probability density live in NetCDF files
(`raw/particles.nc`, `products/density.nc`) a browser cannot read; `mission_layers`
turns the particle file into compact JSON: a sample of the afloat particles at each
output time and the density on the same grid as the density product, sparse (only cells
holding a particle). The GeoJSON products (containment areas, datum track, stranded
points) are drawn as they are and not repeated here.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from driftline.contracts.envelope import rfc3339
from driftline.postprocess.cloud import Cloud, read_cloud
from driftline.postprocess.density import make_grid

#: The particle file's name in a mission's result.
PARTICLES_ARTIFACT = "raw/particles.nc"
#: Enough points for the eye; a 50,000-particle mission would weigh megabytes per frame.
MAX_PARTICLES = 1000
#: Output times sent; a long mission keeps every n-th one (and always the last).
MAX_FRAMES = 97
#: Same cell size as the density product (`build_products`' default).
GRID_RESOLUTION_M = 500.0


def frame_indices(count: int, limit: int = MAX_FRAMES) -> list[int]:
    """At most `limit` evenly strided indices of `count` output times, ending on the last."""
    if count <= limit:
        return list(range(count))
    stride = math.ceil((count - 1) / (limit - 1))
    return sorted({*range(0, count - 1, stride), count - 1})


def particle_sample(total: int, limit: int = MAX_PARTICLES) -> np.ndarray:
    """Indices of at most `limit` particles, evenly spread over the seeding order."""
    if total <= limit:
        return np.arange(total)
    return np.unique(np.linspace(0, total - 1, limit).round().astype(int))


def mission_layers(particles_nc: Path) -> dict[str, Any]:
    """Particles and density per output time, read from a simulation's particle file."""
    return layers_of(read_cloud(particles_nc))


def layers_of(cloud: Cloud) -> dict[str, Any]:
    frames = frame_indices(len(cloud.times))
    sample = particle_sample(cloud.total)
    finite = np.isfinite(cloud.lon) & np.isfinite(cloud.lat)
    density: dict[str, Any] | None = None
    if finite.any():
        grid = make_grid(cloud.lon, cloud.lat, GRID_RESOLUTION_M)
        density = {
            "west": float(grid.lon_edges[0]),
            "east": float(grid.lon_edges[-1]),
            "south": float(grid.lat_edges[0]),
            "north": float(grid.lat_edges[-1]),
            "rows": len(grid.lat_edges) - 1,
            "cols": len(grid.lon_edges) - 1,
            "frames": [
                _sparse(grid.counts(cloud.lon[:, i], cloud.lat[:, i]), cloud.total) for i in frames
            ],
        }
    return {
        "times": [rfc3339(cloud.times[i]) for i in frames],
        "particles_total": cloud.total,
        "particles_shown": int(sample.size),
        "particles": [_positions(cloud, sample, i) for i in frames],
        "density": density,
    }


def _positions(cloud: Cloud, sample: np.ndarray, index: int) -> list[list[float]]:
    lon, lat = cloud.lon[sample, index], cloud.lat[sample, index]
    afloat = np.isfinite(lon) & np.isfinite(lat)
    return [
        [round(float(x), 5), round(float(y), 5)]
        for x, y in zip(lon[afloat], lat[afloat], strict=True)
    ]


def _sparse(counts: np.ndarray, total: int) -> list[list[float]]:
    """[row (from the south), column (from the west), probability] of each occupied cell."""
    rows, cols = np.nonzero(counts)
    return [
        [int(r), int(c), round(float(counts[r, c]) / total, 6)]
        for r, c in zip(rows, cols, strict=True)
    ]
