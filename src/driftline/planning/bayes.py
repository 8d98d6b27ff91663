"""The Bayesian update after an unsuccessful search, and containment on weighted particles.

Each particle is one hypothesis of where the object is, with a weight. A search that
found nothing multiplies each weight by the probability it would have been missed,
1 - POD_i, where POD_i = 1 - exp(-coverage) inside a searched area (at the particle's
position at the time of that search) and 0 outside; renormalised, the weights are the
posterior (Stone 1975, ch. 6). The unnormalised weights keep the record: their sum is
the probability the object is still unfound, so cumulative POS = 1 - that sum.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeAlias

import numpy as np
import shapely
from scipy.ndimage import gaussian_filter
from shapely import MultiPolygon, Polygon, box, union_all
from shapely.geometry.base import BaseGeometry
from shapely.geometry.polygon import orient

from driftline.planning.detection import pod_array
from driftline.planning.frame import LocalFrame

Region: TypeAlias = Polygon | MultiPolygon


@dataclass(frozen=True)
class SearchedArea:
    """An area searched with nothing found: its outline (lon/lat) and the coverage laid."""

    outline: BaseGeometry
    coverage: float


def pod_of_search(lon: np.ndarray, lat: np.ndarray, areas: Sequence[SearchedArea]) -> np.ndarray:
    """Each particle's probability of having been detected by one search of `areas`
    (areas of one search do not multiply: where they overlap the coverages add)."""
    coverage = np.zeros(lon.shape, dtype=float)
    good = np.isfinite(lon) & np.isfinite(lat)
    for area in areas:
        inside = np.zeros(lon.shape, dtype=bool)
        inside[good] = shapely.intersects_xy(area.outline, lon[good], lat[good])
        coverage[inside] += area.coverage
    return pod_array(coverage)


def update(weights: np.ndarray, pod: np.ndarray) -> np.ndarray:
    """Unnormalised posterior weights after an unsuccessful search: w * (1 - POD)."""
    return weights * (1.0 - pod)


def normalised(weights: np.ndarray) -> np.ndarray:
    total = float(weights.sum())
    if total <= 0:
        raise ValueError("no probability left: every hypothesis was searched to certainty")
    return weights / total


def weighted_containment(
    lon: np.ndarray, lat: np.ndarray, weights: np.ndarray, levels: Sequence[int] = (50, 90)
) -> dict[int, Region]:
    """Smallest regions (on a grid of ~100 cells across) holding each share of the weight.

    Cells are ranked by a lightly smoothed weighted density and taken until they hold
    the share, counted on the raw weights; the 50 % region lies inside the 90 % one.
    """
    good = np.isfinite(lon) & np.isfinite(lat) & (weights > 0)
    if not good.any():
        return {}
    lon, lat, w = lon[good], lat[good], weights[good]
    frame = LocalFrame.around(lon, lat, w)
    x, y = frame.to_xy(lon, lat)
    spread = max(float(np.ptp(x)), float(np.ptp(y)), 0.05)
    cell = spread / 100
    ex = np.arange(x.min() - 2 * cell, x.max() + 3 * cell, cell)
    ey = np.arange(y.min() - 2 * cell, y.max() + 3 * cell, cell)
    mass, _, _ = np.histogram2d(x, y, bins=[ex, ey], weights=w)
    order = np.argsort(gaussian_filter(mass, sigma=1.0), axis=None)[::-1]
    cumulative = np.cumsum(mass.ravel()[order])
    total = float(w.sum())
    regions: dict[int, Region] = {}
    for level in levels:
        take = int(np.searchsorted(cumulative, level / 100 * total * (1 - 1e-12))) + 1
        cells = np.unravel_index(order[:take], mass.shape)
        boxes = []
        for i, j in zip(*cells, strict=True):
            lo = frame.point_lonlat(ex[i], ey[j])
            hi = frame.point_lonlat(ex[i + 1], ey[j + 1])
            boxes.append(box(lo[0], lo[1], hi[0], hi[1]))
        regions[level] = _oriented(union_all(boxes))
    return regions


def _oriented(shape: BaseGeometry) -> Region:
    if isinstance(shape, Polygon):
        return orient(shape, 1.0)
    parts = [orient(p, 1.0) for p in getattr(shape, "geoms", []) if isinstance(p, Polygon)]
    return MultiPolygon(parts)


def weight_inside(region: BaseGeometry, lon: np.ndarray, lat: np.ndarray, w: np.ndarray) -> float:
    good = np.isfinite(lon) & np.isfinite(lat)
    inside = np.zeros(lon.shape, dtype=bool)
    inside[good] = shapely.intersects_xy(region, lon[good], lat[good])
    return float(w[inside].sum())


def coverage_of_tracks(length_km: float, sweep_width_km: float, area_km2: float) -> float:
    """Coverage of flown tracks over the area they lie in: W * length / area."""
    return sweep_width_km * length_km / area_km2 if area_km2 > 0 else math.inf
