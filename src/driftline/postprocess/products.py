"""The SAR products of one simulation: the product registry and `build_products`.

Every product file is declared once in `PRODUCTS` as (name, media type, writer).
`build_products` reads the particle cloud, computes what the writers share (`Analysis`:
density grid, containment regions, datum track, summary) once, then runs each writer;
adding a product is adding a writer and one line to the registry.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath

from driftline.contracts.events import Centroid, ForcingUsed, MissionSummary
from driftline.landmask import LandMask
from driftline.postprocess.cloud import Cloud, Datum, datum_track, read_cloud
from driftline.postprocess.containment import (
    Region,
    TimedRegions,
    area_km2,
    containment_over_time,
)
from driftline.postprocess.density import Grid, make_grid, write_density
from driftline.postprocess.formats import (
    containment_features,
    containment_kml,
    datum_features,
    feature_collection,
    stranded_features,
)
from driftline.postprocess.map import draw_map


@dataclass(frozen=True)
class Analysis:
    """What the product writers share, computed once per simulation."""

    cloud: Cloud
    grid: Grid  # of the probability density
    regions: TimedRegions  # at the final time and each planning time
    final_regions: dict[int, Region]  # by level, at the final time
    datums: list[Datum]
    summary: MissionSummary
    title: str
    land: LandMask  # for the map's coastline


ProductWriter = Callable[[Analysis, Path], None]


@dataclass(frozen=True)
class Product:
    """One product file: where it is stored, its media type and what writes it."""

    name: str  # relative to the mission's prefix, e.g. products/map.png
    media_type: str
    write: ProductWriter

    @property
    def filename(self) -> str:
        return PurePosixPath(self.name).name


@dataclass(frozen=True)
class ProductFile:
    """A product written to disk, ready to store."""

    name: str  # relative to the mission's prefix, e.g. products/map.png
    media_type: str
    path: Path


@dataclass(frozen=True)
class Products:
    artifacts: list[ProductFile]  # in registry order
    summary: MissionSummary


def build_products(
    particles_nc: Path,
    out_dir: Path,
    *,
    times: Sequence[datetime] = (),
    grid_resolution_m: float = 500.0,
    forcing: Sequence[ForcingUsed] = (),
    title: str = "Driftline",
    land: LandMask,
) -> Products:
    """Write every registered product for one simulation into `out_dir`.

    Containment regions are drawn at the final time and at the output times nearest to
    `times`; `forcing` is reported in the summary.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    cloud = read_cloud(particles_nc)
    analysis = analyse(
        cloud,
        times=times,
        grid_resolution_m=grid_resolution_m,
        forcing=forcing,
        title=title,
        land=land,
    )
    files = []
    for product in PRODUCTS:
        path = out_dir / product.filename
        product.write(analysis, path)
        files.append(ProductFile(product.name, product.media_type, path))
    return Products(artifacts=files, summary=analysis.summary)


def analyse(
    cloud: Cloud,
    *,
    times: Sequence[datetime],
    grid_resolution_m: float,
    forcing: Sequence[ForcingUsed],
    title: str,
    land: LandMask,
) -> Analysis:
    """Everything the writers need, computed from the cloud (no file I/O)."""
    indices = [cloud.final, *(cloud.index_of(moment) for moment in times)]
    regions = containment_over_time(cloud, indices, grid_resolution_m)
    end = cloud.times[cloud.final]
    final_regions = {level: shape for (moment, level), shape in regions.items() if moment == end}
    datums = datum_track(cloud)
    return Analysis(
        cloud=cloud,
        grid=make_grid(cloud.lon, cloud.lat, grid_resolution_m),
        regions=regions,
        final_regions=final_regions,
        datums=datums,
        summary=summarise(cloud, final_regions, datums, forcing),
        title=title,
        land=land,
    )


def summarise(
    cloud: Cloud,
    final_regions: dict[int, Region],
    datums: list[Datum],
    forcing: Sequence[ForcingUsed],
) -> MissionSummary:
    """The figures a coordinator reads first, at the final time."""
    afloat = int(cloud.afloat[:, cloud.final].sum())
    # No particle ever afloat: there is no datum, and NaN says so (as it always has).
    end = datums[-1] if datums else None
    centroid = Centroid(lat=end.lat, lon=end.lon, time=end.time) if end else None
    return MissionSummary(
        particles_total=cloud.total,
        particles_active=afloat,
        particles_stranded=int(cloud.stranded_lon.size),
        fraction_afloat=afloat / cloud.total if cloud.total else 0.0,
        centroid=centroid or Centroid(lat=math.nan, lon=math.nan),
        area_km2={str(level): round(area_km2(shape), 3) for level, shape in final_regions.items()},
        forcing=list(forcing),
        synthetic_forcing=any(f.synthetic for f in forcing),
    )


# -- writers, one per product ----------------------------------------------------------------


def _density(analysis: Analysis, path: Path) -> None:
    write_density(analysis.cloud, analysis.grid, path)


def _containment_geojson(analysis: Analysis, path: Path) -> None:
    path.write_text(feature_collection(containment_features(analysis.regions)))


def _containment_kml(analysis: Analysis, path: Path) -> None:
    path.write_text(containment_kml(analysis.regions, analysis.title))


def _datum_track(analysis: Analysis, path: Path) -> None:
    path.write_text(feature_collection(datum_features(analysis.datums)))


def _stranded(analysis: Analysis, path: Path) -> None:
    path.write_text(feature_collection(stranded_features(analysis.cloud)))


def _map(analysis: Analysis, path: Path) -> None:
    a = analysis
    draw_map(a.cloud, a.final_regions, a.datums, path, title=a.title, land=a.land)


def _summary(analysis: Analysis, path: Path) -> None:
    # The file has always carried the forcing list but not the synthetic flag.
    body = analysis.summary.model_dump(mode="json", exclude={"synthetic_forcing"})
    path.write_text(json.dumps(body, indent=2))


#: Every product of a mission, in the order they are stored and listed.
PRODUCTS: tuple[Product, ...] = (
    Product("products/density.nc", "application/x-netcdf", _density),
    Product("products/containment.geojson", "application/geo+json", _containment_geojson),
    Product("products/containment.kml", "application/vnd.google-earth.kml+xml", _containment_kml),
    Product("products/datum_track.geojson", "application/geo+json", _datum_track),
    Product("products/stranded.geojson", "application/geo+json", _stranded),
    Product("products/map.png", "image/png", _map),
    Product("products/summary.json", "application/json", _summary),
)
