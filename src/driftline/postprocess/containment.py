"""Containment regions: the smallest areas holding 50, 90 and 95 % of the afloat particles.

Containment polygons are highest-density regions, not hulls: grid cells are ranked by a
smoothed density and taken until they hold the wanted share of the afloat particles
(counted on the raw particles, so "90 %" really holds at least 90 %). The 50 % region is
a prefix of the 90 % one in that ranking, so it always lies inside it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, TypeAlias

import numpy as np
from pyproj import Geod
from scipy.ndimage import gaussian_filter
from shapely import MultiPolygon, Polygon, box, union_all
from shapely.geometry.polygon import orient

from driftline.geo import KM_PER_DEG
from driftline.postprocess.cloud import Cloud
from driftline.postprocess.density import Grid, make_grid

LEVELS = (50, 90, 95)
GEOD = Geod(ellps="WGS84")

Region: TypeAlias = Polygon | MultiPolygon
#: Regions keyed by (output time, level), in time then level order.
TimedRegions: TypeAlias = dict[tuple[datetime, int], Region]


def containment_over_time(
    cloud: Cloud, indices: Iterable[int], resolution_m: float
) -> TimedRegions:
    """Containment regions of the afloat particles at each given output time index."""
    return {
        (cloud.times[index], level): shape
        for index in sorted(set(indices))
        for level, shape in containment(
            cloud.lon[:, index], cloud.lat[:, index], resolution_m
        ).items()
    }


def containment(
    lon: np.ndarray, lat: np.ndarray, resolution_m: float, levels: Sequence[int] = LEVELS
) -> dict[int, Region]:
    """Smallest regions (on a fine grid) holding each share of the given afloat positions."""
    good = np.isfinite(lon) & np.isfinite(lat)
    lon, lat = lon[good], lat[good]
    if lon.size == 0:
        return {}
    spread_m = max(float(np.std(lat)) * KM_PER_DEG * 1000, 1.0)
    cell_m = max(min(resolution_m, spread_m / 8), 20.0)
    grid = make_grid(lon, lat, cell_m, max_cells=300)
    counts = grid.counts(lon, lat)
    order = np.argsort(gaussian_filter(counts, sigma=1.5), axis=None)[::-1]
    cumulative = np.cumsum(counts.ravel()[order])
    regions: dict[int, Region] = {}
    for level in levels:
        needed = math.ceil(level / 100 * lon.size)
        take = int(np.searchsorted(cumulative, needed)) + 1
        regions[level] = _cells_region(grid, np.unravel_index(order[:take], counts.shape))
    return regions


def _cells_region(grid: Grid, cells: tuple[np.ndarray, ...]) -> Region:
    """The union of the given (lat index, lon index) cells."""
    boxes = [
        box(grid.lon_edges[j], grid.lat_edges[i], grid.lon_edges[j + 1], grid.lat_edges[i + 1])
        for i, j in zip(*cells, strict=True)
    ]
    return oriented(union_all(boxes))


def oriented(shape: Any) -> Region:
    """Counter-clockwise exteriors (RFC 7946 right-hand rule)."""
    if isinstance(shape, Polygon):
        return orient(shape, 1.0)
    if isinstance(shape, MultiPolygon):
        return MultiPolygon([orient(p, 1.0) for p in shape.geoms])
    polygons = [orient(p, 1.0) for p in getattr(shape, "geoms", []) if isinstance(p, Polygon)]
    return MultiPolygon(polygons)


def polygons(shape: Region) -> list[Polygon]:
    """The polygons of a region, whether it is one or several."""
    return list(shape.geoms) if isinstance(shape, MultiPolygon) else [shape]


def area_km2(shape: Region) -> float:
    return abs(GEOD.geometry_area_perimeter(shape)[0]) / 1e6
