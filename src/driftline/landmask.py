"""The GSHHG full-resolution landmask, exact, memory-mapped and shared by every process.

OpenDrift strands particles on GSHHG's full-resolution shorelines (roaring-landmask).
Loading roaring-landmask costs 1.1 GB and ~10 s in every process that does it, and
validation (is the position at sea?) and the PNG map's coastline need only a few of its
answers. So the same polygons are turned once (`build`, in a child process, cached under
`.driftline/landmask/`) into flat arrays that every process memory-maps read-only: the
pages are the operating system's page cache, shared, and a process holds only those it
touches (a few MB for a mission).

The structure, on a grid of 1/60 degree cells (about 1.9 km):

* one bit per cell: whether the cell's centre is on land (GDAL's centre rule);
* the *coastal* cells, those that an edge of a polygon may cross (sorted ids), with
  the edges of each (indices into the vertex array) and the exact land state of the
  cell's centre (shapely, GEOS);
* the vertices, float64 as GSHHG gives them.

A point in a cell that no edge crosses is on land exactly when the cell's centre is. In
a coastal cell, the segment from the point to the centre crosses the shoreline an odd
number of times exactly when the two differ (the segment stays inside the cell, so only
that cell's edges can cross it). Same polygons, same answers as roaring-landmask
(`tests/unit/test_landmask.py` compares them), without its memory.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import subprocess
import sys
import threading
from functools import lru_cache
from pathlib import Path
from typing import Protocol

import numpy as np

from driftline.settings import PROJECT_ROOT


class LandMask(Protocol):
    """Where land is (roaring-landmask's interface: longitude first)."""

    def contains(self, lon: float, lat: float) -> bool: ...

    def contains_many(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray: ...


#: Grid resolution: cells per degree.
PER_DEGREE = 60
WIDTH, HEIGHT = 360 * PER_DEGREE, 180 * PER_DEGREE
#: Bump when the files' layout changes: a new folder is built beside the old one.
FORMAT = "gshhg-f-v1"
ARRAYS = ("bits", "coastal", "offsets", "edges", "centre", "xy")
_ORIGIN = np.array([180.0, 90.0])  # lon/lat + this: degrees from the grid's corner
_LAST = np.array([WIDTH - 1, HEIGHT - 1])
#: Edges whose bounding box spans at most this many cells each way are indexed by it.
_SHORT = 3
#: Points per chunk of the crossing test (bounds the temporary arrays).
_CHUNK_PAIRS = 2_000_000


def cache_dir() -> Path:
    """Where the built arrays live (DRIFTLINE_LANDMASK_DIR overrides, e.g. a shared volume)."""
    configured = os.environ.get("DRIFTLINE_LANDMASK_DIR")
    base = Path(configured) if configured else PROJECT_ROOT / ".driftline" / "landmask"
    return base / FORMAT


# -- building ------------------------------------------------------------------------------


def build(target: Path) -> None:
    """Build the arrays from roaring-landmask's GSHHG polygons into `target` (~1 GB of
    memory for a minute; run in a child process so no long-lived process keeps it)."""
    import rasterio.features
    import shapely
    from affine import Affine
    from roaring_landmask import LandmaskProvider, Shapes

    land = shapely.from_wkb(Shapes.wkb(LandmaskProvider.Gshhg))
    parts = shapely.get_parts(land)
    rings = shapely.get_exterior_ring(parts)  # GSHHG land polygons have no holes
    xy, ring = shapely.get_coordinates(rings, return_index=True)
    starts = np.flatnonzero(ring[:-1] == ring[1:]).astype(np.int32)  # edge i: xy[i]->xy[i+1]
    a, b = xy[starts], xy[starts + 1]
    lo = np.clip(np.floor((np.minimum(a, b) + _ORIGIN) * PER_DEGREE).astype(np.int64), 0, _LAST)
    hi = np.clip(np.floor((np.maximum(a, b) + _ORIGIN) * PER_DEGREE).astype(np.int64), 0, _LAST)
    span = hi - lo + 1
    short = np.flatnonzero((span[:, 0] <= _SHORT) & (span[:, 1] <= _SHORT))
    cell_parts, edge_parts = [], []
    for dx in range(_SHORT):  # a short edge: every cell of its bounding box
        for dy in range(_SHORT):
            which = short[(span[short, 0] > dx) & (span[short, 1] > dy)]
            cell_parts.append((lo[which, 1] + dy) * WIDTH + lo[which, 0] + dx)
            edge_parts.append(starts[which])
    for edge in np.flatnonzero((span[:, 0] > _SHORT) | (span[:, 1] > _SHORT)):
        cells = _cells_along(a[edge], b[edge])
        cell_parts.append(cells)
        edge_parts.append(np.full(cells.size, starts[edge], dtype=np.int32))
    cells, edges = np.concatenate(cell_parts), np.concatenate(edge_parts)
    order = np.argsort(cells, kind="stable")
    cells, edges = cells[order], edges[order]
    coastal, first = np.unique(cells, return_index=True)
    offsets = np.append(first, cells.size).astype(np.int64)
    cy, cx = np.divmod(coastal, WIDTH)
    shapely.prepare(land)
    centre = shapely.contains_xy(
        land, (cx + 0.5) / PER_DEGREE - 180.0, (cy + 0.5) / PER_DEGREE - 90.0
    )
    raster = rasterio.features.rasterize(
        ((p, 1) for p in parts),
        out_shape=(HEIGHT, WIDTH),
        transform=Affine(1 / PER_DEGREE, 0, -180.0, 0, 1 / PER_DEGREE, -90.0),
        fill=0,
        dtype="uint8",
    )
    arrays = {
        "bits": np.packbits(raster.ravel()),  # row y (from the south), column x
        "coastal": coastal,
        "offsets": offsets,
        "edges": edges,
        "centre": centre,
        "xy": xy,
    }
    partial = target.with_name(target.name + f".building-{os.getpid()}")
    partial.mkdir(parents=True, exist_ok=True)
    for name, array in arrays.items():
        np.save(partial / f"{name}.npy", array)
    meta = {"format": FORMAT, "per_degree": PER_DEGREE, "polygons": int(parts.size)}
    (partial / "meta.json").write_text(json.dumps(meta))
    partial.rename(target)


def _cells_along(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Every cell a long edge a->b may cross: the cells around points sampled along it at
    a quarter cell apart (a cell the edge crosses is next to a sample's cell)."""
    steps = int(np.ceil(np.abs(b - a).max() * PER_DEGREE * 4)) + 1
    t = np.linspace(0.0, 1.0, steps + 1)[:, None]
    cells = np.floor((a + t * (b - a) + _ORIGIN) * PER_DEGREE).astype(np.int64)
    near = [cells + np.array([dx, dy]) for dx in (-1, 0, 1) for dy in (-1, 0, 1)]
    grid = np.clip(np.concatenate(near), 0, _LAST)
    return np.unique(grid[:, 1] * WIDTH + grid[:, 0])


def ensure_built(target: Path | None = None) -> Path:
    """The folder of built arrays, building it first (once per machine, in a child process,
    under a file lock so processes starting together build it once)."""
    target = target or cache_dir()
    if (target / "meta.json").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with (target.parent / f"{FORMAT}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (target / "meta.json").exists():
            subprocess.run(
                [sys.executable, "-m", "driftline.landmask", str(target)],
                check=True,
                env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
            )
    return target


# -- querying ------------------------------------------------------------------------------


class MappedLandmask:
    """The landmask over memory-mapped arrays (read-only, shared between processes)."""

    def __init__(self, folder: Path) -> None:
        loaded = {name: np.load(folder / f"{name}.npy", mmap_mode="r") for name in ARRAYS}
        self._bits = loaded["bits"]
        self._coastal = loaded["coastal"]
        self._offsets = loaded["offsets"]
        self._edges = loaded["edges"]
        self._centre = loaded["centre"]
        self._xy = loaded["xy"]

    def contains(self, lon: float, lat: float) -> bool:
        return bool(self.contains_many(np.array([lon]), np.array([lat]))[0])

    def contains_many(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        x = (np.asarray(lon, dtype=np.float64).ravel() + 180.0) % 360.0 - 180.0
        y = np.clip(np.asarray(lat, dtype=np.float64).ravel(), -90.0, 90.0)
        cx = np.clip(np.floor((x + 180.0) * PER_DEGREE).astype(np.int64), 0, WIDTH - 1)
        cy = np.clip(np.floor((y + 90.0) * PER_DEGREE).astype(np.int64), 0, HEIGHT - 1)
        cell = cy * WIDTH + cx
        land = (self._bits[cell >> 3] >> (7 - (cell & 7)).astype(np.uint8)) & 1
        land = land.astype(bool)
        slot = np.searchsorted(self._coastal, cell)
        slot_ok = np.minimum(slot, self._coastal.size - 1)
        coastal = np.flatnonzero((slot < self._coastal.size) & (self._coastal[slot_ok] == cell))
        if coastal.size:
            k = slot[coastal]
            centre_x = (cx[coastal] + 0.5) / PER_DEGREE - 180.0
            centre_y = (cy[coastal] + 0.5) / PER_DEGREE - 90.0
            odd = self._odd_crossings(x[coastal], y[coastal], centre_x, centre_y, k)
            land[coastal] = np.asarray(self._centre[k], dtype=bool) ^ odd
        return land

    def _odd_crossings(
        self,
        px: np.ndarray,
        py: np.ndarray,
        qx: np.ndarray,
        qy: np.ndarray,
        slots: np.ndarray,
    ) -> np.ndarray:
        """Per point: whether the segment point->centre crosses its cell's edges an odd
        number of times (half-open rule at vertices, so a vertex counts once)."""
        first = np.asarray(self._offsets[slots])
        counts = np.asarray(self._offsets[slots + 1]) - first
        ends = np.cumsum(counts)
        odd = np.zeros(px.size, dtype=bool)
        begin = 0
        while begin < px.size:
            done = int(ends[begin - 1]) if begin else 0
            stop = max(int(np.searchsorted(ends, done + _CHUNK_PAIRS, side="right")), begin + 1)
            n = counts[begin:stop]
            points = np.repeat(np.arange(begin, stop), n)
            within = np.arange(points.size) - np.repeat(np.cumsum(n) - n, n)
            edge = np.asarray(self._edges[np.repeat(first[begin:stop], n) + within])
            a, b = np.asarray(self._xy[edge]), np.asarray(self._xy[edge + 1])
            p = np.stack([px[points], py[points]], axis=1)
            q = np.stack([qx[points], qy[points]], axis=1)
            crosses = _crosses(p, q, a, b)
            odd[begin:stop] = np.bincount(points - begin, crosses, stop - begin) % 2 == 1
            begin = stop
        return odd


def _orient(o: np.ndarray, s: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Twice the signed area of (o, s, t): > 0 when t is left of o->s."""
    return (s[:, 0] - o[:, 0]) * (t[:, 1] - o[:, 1]) - (s[:, 1] - o[:, 1]) * (t[:, 0] - o[:, 0])


def _crosses(p: np.ndarray, q: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Whether segment p-q crosses segment a-b (each end's side taken as > 0 or not)."""
    return ((_orient(a, b, p) > 0) != (_orient(a, b, q) > 0)) & (
        (_orient(p, q, a) > 0) != (_orient(p, q, b) > 0)
    )


# -- the process's copy --------------------------------------------------------------------

_LOADING = threading.Lock()


@lru_cache(maxsize=1)
def _load() -> LandMask:
    return MappedLandmask(ensure_built())


def gshhg_landmask() -> LandMask:
    """The process's one mapping; threads asking at once wait for a single load (and, on
    a machine that has never built it, for the one build)."""
    with _LOADING:
        return _load()


class _SharedRoaringLandmask:
    """Stands in for `roaring_landmask.RoaringLandmask` inside OpenDrift."""

    @staticmethod
    def new() -> LandMask:
        return gshhg_landmask()


def share_with_opendrift() -> None:
    """Make OpenDrift use this process's mapping instead of its own roaring-landmask
    copies (1.1 GB each: `opendrift.models.basemodel` loads one when it is imported, its
    `global_landmask` reader another): same polygons, same answers. Call it in an
    OpenDrift process before OpenDrift is imported (the simulation pool's processes)."""
    import roaring_landmask

    roaring_landmask.RoaringLandmask = _SharedRoaringLandmask
    reader = sys.modules.get("opendrift.readers.reader_global_landmask")
    if reader is not None:
        reader.__roaring_mask__ = gshhg_landmask()  # type: ignore[attr-defined]


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        build(Path(sys.argv[1]) if len(sys.argv) > 1 else cache_dir())
