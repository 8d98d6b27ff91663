"""SAR products from a particle cloud: density, containment areas, datum, stranding, map.

Containment polygons are highest-density regions, not hulls: grid cells are ranked by a
smoothed density and taken until they hold the wanted share of the afloat particles
(counted on the raw particles, so "90 %" really holds at least 90 %). The 50 % region is
a prefix of the 90 % one in that ranking, so it always lies inside it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from pyproj import Geod
from scipy.ndimage import gaussian_filter
from shapely import MultiPolygon, Polygon, box, union_all
from shapely.geometry import mapping
from shapely.geometry.polygon import orient

LEVELS = (50, 90, 95)
KM_PER_DEG = 111.2
GEOD = Geod(ellps="WGS84")


@dataclass(frozen=True)
class ProductFile:
    name: str  # relative to the mission's prefix, e.g. products/map.png
    media_type: str
    path: Path


@dataclass(frozen=True)
class Products:
    artifacts: list[ProductFile]
    summary: dict[str, Any]


@dataclass(frozen=True)
class Cloud:
    """Particle positions per output time; NaN where a particle is not afloat."""

    times: list[datetime]
    lon: np.ndarray  # (trajectory, time)
    lat: np.ndarray
    afloat: np.ndarray  # bool (trajectory, time)
    stranded_lon: np.ndarray
    stranded_lat: np.ndarray
    start_lon: float
    start_lat: float

    @property
    def total(self) -> int:
        return int(self.lon.shape[0])


def read_cloud(particles_nc: Path) -> Cloud:
    """Read only lon, lat and status; stranded particles keep their last position."""
    with xr.open_dataset(particles_nc) as ds:
        lon = ds["lon"].values.astype("float64")
        lat = ds["lat"].values.astype("float64")
        status = ds["status"].values
        meanings = str(ds["status"].attrs.get("flag_meanings", "active")).split()
        values = ds["status"].attrs.get("flag_values", list(range(len(meanings))))
        codes = dict(zip(meanings, np.atleast_1d(values), strict=False))
        times = [
            datetime.fromtimestamp(
                float((t - np.datetime64("1970-01-01")) / np.timedelta64(1, "s")), UTC
            )
            for t in ds["time"].values
        ]
    valid = np.isfinite(lon) & np.isfinite(lat)
    active_code = codes.get("active", 0)
    afloat = valid & (np.nan_to_num(status, nan=-1) == active_code)
    stranded_code = codes.get("stranded")
    last_status = np.array([_last_valid(row) for row in status])
    is_stranded = (
        last_status == stranded_code if stranded_code is not None else np.zeros(len(lon), bool)
    )
    last_lon = np.array([_last_valid(row) for row in lon])
    last_lat = np.array([_last_valid(row) for row in lat])
    first = np.array([_first_valid(row) for row in lon]), np.array([_first_valid(r) for r in lat])
    return Cloud(
        times=times,
        lon=np.where(afloat, lon, np.nan),
        lat=np.where(afloat, lat, np.nan),
        afloat=afloat,
        stranded_lon=last_lon[is_stranded],
        stranded_lat=last_lat[is_stranded],
        start_lon=float(np.nanmean(first[0])),
        start_lat=float(np.nanmean(first[1])),
    )


def _last_valid(row: np.ndarray) -> float:
    good = np.flatnonzero(np.isfinite(row))
    return float(row[good[-1]]) if good.size else math.nan


def _first_valid(row: np.ndarray) -> float:
    good = np.flatnonzero(np.isfinite(row))
    return float(row[good[0]]) if good.size else math.nan


# -- density ---------------------------------------------------------------------------------


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
        """Particle counts per cell, shape (lat, lon)."""
        good = np.isfinite(lon) & np.isfinite(lat)
        hist, _, _ = np.histogram2d(lat[good], lon[good], bins=[self.lat_edges, self.lon_edges])
        return hist


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


def write_density(cloud: Cloud, grid: Grid, path: Path) -> None:
    """Probability per cell and output time; each time's cells sum to the fraction afloat."""
    probability = np.stack(
        [
            grid.counts(cloud.lon[:, i], cloud.lat[:, i]) / cloud.total
            for i in range(len(cloud.times))
        ]
    ).astype("float32")
    ds = xr.Dataset(
        {
            "probability": (
                ("time", "lat", "lon"),
                probability,
                {
                    "long_name": "probability that the object is in the cell",
                    "units": "1",
                    "comment": "sums over a time step to the fraction of particles afloat",
                },
            )
        },
        coords={
            "time": (
                "time",
                np.array([np.datetime64(t.replace(tzinfo=None), "ns") for t in cloud.times]),
                {"standard_name": "time"},
            ),
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
    ds.to_netcdf(
        path,
        encoding={
            "probability": {"zlib": True, "complevel": 4},
            "time": {"units": "hours since 1970-01-01 00:00:00", "dtype": "float64"},
        },
    )


# -- containment -----------------------------------------------------------------------------


def containment(
    lon: np.ndarray, lat: np.ndarray, resolution_m: float, levels: Sequence[int] = LEVELS
) -> dict[int, Polygon | MultiPolygon]:
    """Smallest regions (on a fine grid) holding each share of the given afloat positions."""
    good = np.isfinite(lon) & np.isfinite(lat)
    lon, lat = lon[good], lat[good]
    if lon.size == 0:
        return {}
    spread_m = max(float(np.std(lat)) * KM_PER_DEG * 1000, 1.0)
    cell_m = max(min(resolution_m, spread_m / 8), 20.0)
    grid = make_grid(lon, lat, cell_m, max_cells=300)
    counts = grid.counts(lon, lat)
    smooth = gaussian_filter(counts, sigma=1.5)
    order = np.argsort(smooth, axis=None)[::-1]
    cumulative = np.cumsum(counts.ravel()[order])
    regions: dict[int, Polygon | MultiPolygon] = {}
    for level in levels:
        needed = math.ceil(level / 100 * lon.size)
        take = int(np.searchsorted(cumulative, needed)) + 1
        cells = np.unravel_index(order[:take], counts.shape)
        boxes = [
            box(grid.lon_edges[j], grid.lat_edges[i], grid.lon_edges[j + 1], grid.lat_edges[i + 1])
            for i, j in zip(*cells, strict=True)
        ]
        merged = union_all(boxes)
        regions[level] = _oriented(merged)
    return regions


def _oriented(shape: Any) -> Polygon | MultiPolygon:
    """Counter-clockwise exteriors (RFC 7946 right-hand rule)."""
    if isinstance(shape, Polygon):
        return orient(shape, 1.0)
    if isinstance(shape, MultiPolygon):
        return MultiPolygon([orient(p, 1.0) for p in shape.geoms])
    polygons = [orient(p, 1.0) for p in getattr(shape, "geoms", []) if isinstance(p, Polygon)]
    return MultiPolygon(polygons)


def area_km2(shape: Polygon | MultiPolygon) -> float:
    return abs(GEOD.geometry_area_perimeter(shape)[0]) / 1e6


# -- files -----------------------------------------------------------------------------------


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _geojson(features: list[dict[str, Any]]) -> str:
    return json.dumps({"type": "FeatureCollection", "features": features}, indent=1)


def _kml(regions: dict[tuple[datetime, int], Polygon | MultiPolygon], title: str) -> str:
    colours = {50: "ff0000ff", 90: "ff00a5ff", 95: "ff00ffff"}
    marks = []
    for (moment, level), shape in regions.items():
        polygons = shape.geoms if isinstance(shape, MultiPolygon) else [shape]
        rings = "".join(
            "<Polygon><outerBoundaryIs><LinearRing><coordinates>"
            + " ".join(f"{x:.6f},{y:.6f},0" for x, y in p.exterior.coords)
            + "</coordinates></LinearRing></outerBoundaryIs></Polygon>"
            for p in polygons
        )
        marks.append(
            f"<Placemark><name>{level} % containment {_iso(moment)}</name>"
            f"<TimeStamp><when>{_iso(moment)}</when></TimeStamp>"
            f"<Style><LineStyle><color>{colours.get(level, 'ffffffff')}</color>"
            "<width>2</width></LineStyle><PolyStyle><fill>0</fill></PolyStyle></Style>"
            f"<MultiGeometry>{rings}</MultiGeometry></Placemark>"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<kml xmlns="http://www.opengis.net/kml/2.2">'
        f"<Document><name>{title}</name>{''.join(marks)}</Document></kml>\n"
    )


def build_products(
    particles_nc: Path,
    out_dir: Path,
    *,
    times: Sequence[datetime] | None = None,
    grid_resolution_m: float = 500.0,
    forcing_used: list[dict[str, Any]] | None = None,
    title: str = "Driftline",
) -> Products:
    """Write every SAR product for one simulation into `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    cloud = read_cloud(particles_nc)
    final = len(cloud.times) - 1
    grid = make_grid(cloud.lon, cloud.lat, grid_resolution_m)
    write_density(cloud, grid, out_dir / "density.nc")

    polygon_times = sorted({final, *[_index_of(cloud, t) for t in (times or [])]})
    regions: dict[tuple[datetime, int], Polygon | MultiPolygon] = {}
    features = []
    for index in polygon_times:
        for level, shape in containment(
            cloud.lon[:, index], cloud.lat[:, index], grid_resolution_m
        ).items():
            regions[(cloud.times[index], level)] = shape
            features.append(
                {
                    "type": "Feature",
                    "geometry": mapping(shape),
                    "properties": {
                        "level": level,
                        "time": _iso(cloud.times[index]),
                        "area_km2": round(area_km2(shape), 3),
                    },
                }
            )
    (out_dir / "containment.geojson").write_text(_geojson(features))
    (out_dir / "containment.kml").write_text(_kml(regions, title))

    centroids = [
        (float(np.nanmean(cloud.lon[:, i])), float(np.nanmean(cloud.lat[:, i])), cloud.times[i])
        for i in range(len(cloud.times))
        if cloud.afloat[:, i].any()
    ]
    track = (
        [
            {
                "type": "Feature",
                "geometry": {
                    "type": "LineString",
                    "coordinates": [[round(x, 6), round(y, 6)] for x, y, _ in centroids],
                },
                "properties": {"kind": "datum track"},
            }
        ]
        if len(centroids) > 1
        else []
    )
    track += [
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [x, y]},
            "properties": {"kind": "datum", "time": _iso(t)},
        }
        for x, y, t in centroids
    ]
    (out_dir / "datum_track.geojson").write_text(_geojson(track))
    stranded = [
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [x, y]},
            "properties": {"kind": "stranded"},
        }
        for x, y in zip(cloud.stranded_lon, cloud.stranded_lat, strict=True)
    ]
    (out_dir / "stranded.geojson").write_text(_geojson(stranded))

    afloat_final = int(cloud.afloat[:, final].sum())
    end_lon, end_lat, end_time = centroids[-1] if centroids else (math.nan, math.nan, None)
    summary: dict[str, Any] = {
        "particles_total": cloud.total,
        "particles_active": afloat_final,
        "particles_stranded": int(cloud.stranded_lon.size),
        "fraction_afloat": afloat_final / cloud.total if cloud.total else 0.0,
        "centroid": {"lat": end_lat, "lon": end_lon, "time": _iso(end_time) if end_time else None},
        "area_km2": {
            str(level): round(area_km2(shape), 3)
            for (moment, level), shape in regions.items()
            if moment == cloud.times[final]
        },
    }
    (out_dir / "summary.json").write_text(
        json.dumps({**summary, "forcing": forcing_used or []}, indent=2)
    )
    from driftline.postprocess.map import draw_map

    draw_map(
        cloud,
        {lvl: s for (m, lvl), s in regions.items() if m == cloud.times[final]},
        centroids,
        out_dir / "map.png",
        title=title,
    )
    names = [
        ("density.nc", "application/x-netcdf"),
        ("containment.geojson", "application/geo+json"),
        ("containment.kml", "application/vnd.google-earth.kml+xml"),
        ("datum_track.geojson", "application/geo+json"),
        ("stranded.geojson", "application/geo+json"),
        ("map.png", "image/png"),
        ("summary.json", "application/json"),
    ]
    return Products(
        artifacts=[ProductFile(f"products/{n}", media, out_dir / n) for n, media in names],
        summary=summary,
    )


def _index_of(cloud: Cloud, moment: datetime) -> int:
    stamps = np.array([t.timestamp() for t in cloud.times])
    return int(np.argmin(np.abs(stamps - moment.timestamp())))
