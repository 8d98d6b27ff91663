"""Land for the console's map, from the same GSHHG shapes that strand particles.

roaring-landmask ships the full-resolution GSHHG polygons OpenDrift's landmask is built
from; they are read once per process (about 5 s and 150 MB of coordinates), then served
for one map view at a time: the polygons meeting the view are clipped to it and
simplified to about one screen pixel at the view's zoom, so a world view and a harbour
view cost about the same. Coarser copies of the whole set (simplified once, small
islands dropped) answer the zoomed-out views, where clipping full resolution would be
slow. Views are snapped outwards to the map's 256-pixel tile grid and the answers kept
in a small cache, so panning mostly re-uses them.
"""

from __future__ import annotations

import json
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely

#: Pixels of one map tile (Leaflet's); a view is snapped outwards to whole tiles.
TILE_PX = 256
MIN_ZOOM, MAX_ZOOM = 0, 18
#: Tolerance (degrees) of the precomputed copies and the smallest polygon (square
#: degrees) each keeps; full resolution (0.0) serves the zoomed-in views.
TIERS: tuple[tuple[float, float], ...] = ((0.1, 0.05), (0.02, 0.002), (0.004, 0.0001), (0.0, 0.0))
CACHED_VIEWS = 256


@dataclass(frozen=True)
class View:
    """A map view snapped to the tile grid of its zoom level."""

    west: float
    south: float
    east: float
    north: float
    zoom: int

    @property
    def tolerance(self) -> float:
        """Degrees of about one screen pixel at this zoom (of longitude, the coarser axis)."""
        return 360.0 / (TILE_PX * 2**self.zoom)

    @classmethod
    def snapped(cls, bbox: tuple[float, float, float, float], zoom: int) -> View:
        """`bbox` (west, south, east, north) grown to whole tiles and clamped to the globe."""
        west, south, east, north = bbox
        if not all(math.isfinite(v) for v in bbox) or west >= east or south >= north:
            raise ValueError("bbox must be finite west,south,east,north with west < east")
        zoom = min(max(zoom, MIN_ZOOM), MAX_ZOOM)
        step = 360.0 / 2**zoom
        return cls(
            west=max(-180.0, math.floor(west / step) * step),
            south=max(-90.0, math.floor(south / step) * step),
            east=min(180.0, math.ceil(east / step) * step),
            north=min(90.0, math.ceil(north / step) * step),
            zoom=zoom,
        )


class _Tier:
    """One copy of the land polygons with its spatial index."""

    def __init__(self, polygons: np.ndarray, tolerance: float) -> None:
        self.polygons = polygons
        self.tolerance = tolerance
        self.tree = shapely.STRtree(polygons)


class Coastline:
    """GSHHG land, loaded on first use (or by `preload`) and served per view."""

    def __init__(self, cache_size: int = CACHED_VIEWS) -> None:
        self._lock = threading.Lock()
        self._full: np.ndarray | None = None
        self._tiers: dict[float, _Tier] = {}
        self._cache: OrderedDict[View, bytes] = OrderedDict()
        self._cache_size = cache_size
        self._preloading = False

    def preload(self) -> None:
        """Read the shapes in a background thread (once), so the first view comes sooner."""
        with self._lock:
            if self._preloading:
                return
            self._preloading = True
        threading.Thread(target=self._full_polygons, name="console-coastline", daemon=True).start()

    def geojson(self, view: View) -> bytes:
        """The land of `view` as a GeoJSON FeatureCollection (UTF-8 bytes)."""
        with self._lock:
            cached = self._cache.get(view)
            if cached is not None:
                self._cache.move_to_end(view)
                return cached
        body = json.dumps(self._collection(view), separators=(",", ":")).encode()
        with self._lock:
            self._cache[view] = body
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return body

    def _collection(self, view: View) -> dict[str, Any]:
        tier = self._tier_for(view.tolerance)
        box = shapely.box(view.west, view.south, view.east, view.north)
        found = tier.polygons[tier.tree.query(box, predicate="intersects")]
        clipped = shapely.clip_by_rect(found, view.west, view.south, view.east, view.north)
        if view.tolerance > 2 * tier.tolerance:
            clipped = shapely.simplify(clipped, view.tolerance, preserve_topology=False)
        kept = clipped[~shapely.is_empty(clipped) & (shapely.area(clipped) > 0)]
        # Coordinates finer than a tenth of a pixel carry nothing but bytes.
        digits = min(6, max(1, math.ceil(-math.log10(view.tolerance / 10))))
        polygons = shapely.set_precision(kept, 10.0**-digits, mode="pointwise")
        land = shapely.multipolygons(shapely.get_parts(polygons[~shapely.is_empty(polygons)]))
        geometry = json.loads(shapely.to_geojson(land))
        return {
            "type": "FeatureCollection",
            "features": [
                {
                    "type": "Feature",
                    "geometry": geometry,
                    "properties": {"source": "GSHHG (full resolution)", "zoom": view.zoom},
                }
            ],
            "bbox": [view.west, view.south, view.east, view.north],
        }

    def _tier_for(self, tolerance: float) -> _Tier:
        """The coarsest copy still finer than `tolerance`."""
        for tier_tolerance, min_area in TIERS:
            if tier_tolerance <= tolerance:
                return self._tier(tier_tolerance, min_area)
        return self._tier(0.0, 0.0)

    def _tier(self, tolerance: float, min_area: float) -> _Tier:
        with self._lock:
            tier = self._tiers.get(tolerance)
        if tier is not None:
            return tier
        full = self._full_polygons()
        if tolerance == 0.0:
            polygons = full
        else:
            kept = full[shapely.area(full) > min_area]
            simplified = shapely.simplify(kept, tolerance, preserve_topology=False)
            polygons = simplified[~shapely.is_empty(simplified)]
        tier = _Tier(polygons, tolerance)
        with self._lock:
            return self._tiers.setdefault(tolerance, tier)

    def _full_polygons(self) -> np.ndarray:
        with _LOADING:
            if self._full is None:
                from roaring_landmask import LandmaskProvider, Shapes

                shapes = shapely.from_wkb(Shapes.wkb(LandmaskProvider.Gshhg))
                self._full = shapely.get_parts(shapes)
            return self._full


_LOADING = threading.Lock()
