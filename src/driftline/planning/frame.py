"""A local flat frame in kilometres around a reference point (east x, north y).

Search areas span tens of kilometres: an equirectangular projection about their centre
is accurate to well under a percent there, and keeps rectangles rectangular.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from driftline.geo import KM_PER_DEG, cos_lat


@dataclass(frozen=True)
class LocalFrame:
    """Kilometres east and north of (`lon0`, `lat0`)."""

    lon0: float
    lat0: float

    @property
    def _kx(self) -> float:
        return KM_PER_DEG * cos_lat(self.lat0)

    def to_xy(self, lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return (np.asarray(lon) - self.lon0) * self._kx, (np.asarray(lat) - self.lat0) * KM_PER_DEG

    def to_lonlat(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.lon0 + np.asarray(x) / self._kx, self.lat0 + np.asarray(y) / KM_PER_DEG

    def point_lonlat(self, x: float, y: float) -> tuple[float, float]:
        lon, lat = self.to_lonlat(np.array(x), np.array(y))
        return float(lon), float(lat)

    @classmethod
    def around(cls, lon: np.ndarray, lat: np.ndarray, weights: np.ndarray) -> LocalFrame:
        """Centred on the weighted mean position."""
        total = float(weights.sum())
        if total <= 0 or not math.isfinite(total):
            return cls(float(np.mean(lon)), float(np.mean(lat)))
        return cls(float(np.dot(lon, weights) / total), float(np.dot(lat, weights) / total))
