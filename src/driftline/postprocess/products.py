"""The SAR products of one simulation: the product registry and `build_products`.

Every product file is declared once in `PRODUCTS` as (name, media type, writer).
`build_products` reads the particle cloud, computes what the writers share (`Analysis`:
density grid, containment regions, datum track, summary) once, then runs each writer;
adding a product is adding a writer and one line to the registry.

A mission with several scenarios gets every product for the weighted union of its
particles (each particle weighs the same: particles were divided by weight) and, beside
it, for each scenario on its own (`ScenarioAnalysis`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from pathlib import Path, PurePosixPath

from driftline.contracts.events import Centroid, ForcingUsed, MissionSummary, ScenarioSummary
from driftline.landmask import LandMask
from driftline.postprocess.cloud import Cloud, Datum, datum_track, read_cloud
from driftline.postprocess.containment import (
    Region,
    TimedRegions,
    area_km2,
    containment_over_time,
)
from driftline.postprocess.density import Grid, make_grid, probability, write_density
from driftline.postprocess.exports import (
    UNION,
    ExportArea,
    ExportTrack,
    write_geotiff,
    write_gpx,
    write_kml,
    write_shapefile_zip,
)
from driftline.postprocess.formats import (
    containment_features,
    datum_features,
    feature_collection,
    stranded_features,
)
from driftline.postprocess.map import ScenarioLayer, draw_map
from driftline.postprocess.simplify import plotter_region


@dataclass(frozen=True)
class ScenarioLabel:
    """A scenario as the products name it, with its weight (the weights sum to 1)."""

    name: str
    weight: float


@dataclass(frozen=True)
class ScenarioAnalysis:
    """One scenario's own products, from its particles alone."""

    label: ScenarioLabel
    cloud: Cloud
    regions: TimedRegions
    final_regions: dict[int, Region]
    datums: list[Datum]
    summary: ScenarioSummary


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
    #: Each scenario's own analysis; empty for a single-scenario mission.
    scenarios: list[ScenarioAnalysis]

    @cached_property
    def export_areas(self) -> list[ExportArea]:
        """Every containment area, union then scenarios, simplified for chart plotters."""
        sets = [(UNION, self.regions)] + [(s.label.name, s.regions) for s in self.scenarios]
        return [
            ExportArea(name, level, moment, plotter_region(shape))
            for name, regions in sets
            for (moment, level), shape in regions.items()
        ]

    def export_tracks(self) -> list[ExportTrack]:
        return [ExportTrack(UNION, self.datums)] + [
            ExportTrack(s.label.name, s.datums) for s in self.scenarios
        ]


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
    scenarios: Sequence[ScenarioLabel] = (),
) -> Products:
    """Write every registered product for one simulation into `out_dir`.

    Containment regions are drawn at the final time and at the output times nearest to
    `times`; `forcing` is reported in the summary; `scenarios` name the particles'
    scenarios (OpenDrift's `origin_marker` in the file), in order.
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
        scenarios=scenarios,
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
    scenarios: Sequence[ScenarioLabel] = (),
) -> Analysis:
    """Everything the writers need, computed from the cloud (no file I/O)."""
    indices = [cloud.final, *(cloud.index_of(moment) for moment in times)]
    regions = containment_over_time(cloud, indices, grid_resolution_m)
    final_regions = _at_final_time(cloud, regions)
    datums = datum_track(cloud)
    summary = summarise(cloud, final_regions, datums, forcing)
    per_scenario = [
        _scenario_analysis(cloud, index, label, indices, grid_resolution_m)
        for index, label in enumerate(scenarios)
        if len(scenarios) > 1
    ]
    summary.scenarios = [s.summary for s in per_scenario] or [
        _as_scenario(label, summary) for label in scenarios
    ]
    return Analysis(
        cloud=cloud,
        grid=make_grid(cloud.lon, cloud.lat, grid_resolution_m),
        regions=regions,
        final_regions=final_regions,
        datums=datums,
        summary=summary,
        title=title,
        land=land,
        scenarios=per_scenario,
    )


def _at_final_time(cloud: Cloud, regions: TimedRegions) -> dict[int, Region]:
    end = cloud.times[cloud.final]
    return {level: shape for (moment, level), shape in regions.items() if moment == end}


def _scenario_analysis(
    union: Cloud, index: int, label: ScenarioLabel, indices: list[int], resolution_m: float
) -> ScenarioAnalysis:
    cloud = union.only(index)
    regions = containment_over_time(cloud, indices, resolution_m)
    final_regions = _at_final_time(cloud, regions)
    datums = datum_track(cloud)
    afloat = int(cloud.afloat[:, cloud.final].sum())
    summary = ScenarioSummary(
        name=label.name,
        weight=label.weight,
        share=cloud.total / union.total if union.total else 0.0,
        particles_total=cloud.total,
        particles_active=afloat,
        particles_stranded=int(cloud.stranded_lon.size),
        centroid=_centroid(datums),
        area_km2={str(level): round(area_km2(s), 3) for level, s in final_regions.items()},
    )
    return ScenarioAnalysis(label, cloud, regions, final_regions, datums, summary)


def _as_scenario(label: ScenarioLabel, union: MissionSummary) -> ScenarioSummary:
    """The one scenario of a single-scenario mission: the union's own figures."""
    return ScenarioSummary(
        name=label.name,
        weight=label.weight,
        share=1.0,
        particles_total=union.particles_total,
        particles_active=union.particles_active,
        particles_stranded=union.particles_stranded,
        centroid=union.centroid,
        area_km2=union.area_km2,
    )


def _centroid(datums: list[Datum]) -> Centroid:
    # No particle ever afloat: there is no datum, and NaN says so (as it always has).
    end = datums[-1] if datums else None
    return Centroid(lat=end.lat, lon=end.lon, time=end.time) if end else _NO_DATUM


_NO_DATUM = Centroid(lat=math.nan, lon=math.nan)


def summarise(
    cloud: Cloud,
    final_regions: dict[int, Region],
    datums: list[Datum],
    forcing: Sequence[ForcingUsed],
) -> MissionSummary:
    """The figures a coordinator reads first, at the final time."""
    afloat = int(cloud.afloat[:, cloud.final].sum())
    return MissionSummary(
        particles_total=cloud.total,
        particles_active=afloat,
        particles_stranded=int(cloud.stranded_lon.size),
        fraction_afloat=afloat / cloud.total if cloud.total else 0.0,
        centroid=_centroid(datums),
        area_km2={str(level): round(area_km2(shape), 3) for level, shape in final_regions.items()},
        forcing=list(forcing),
        synthetic_forcing=any(f.synthetic for f in forcing),
    )


# -- writers, one per product ----------------------------------------------------------------


def _density(analysis: Analysis, path: Path) -> None:
    names = [s.label.name for s in analysis.scenarios]
    write_density(analysis.cloud, analysis.grid, path, names)


def _containment_geojson(analysis: Analysis, path: Path) -> None:
    features = containment_features(analysis.regions)
    for scenario in analysis.scenarios:
        features += containment_features(scenario.regions, scenario=scenario.label.name)
    path.write_text(feature_collection(features))


def _containment_kml(analysis: Analysis, path: Path) -> None:
    write_kml(analysis.export_areas, analysis.title, path)


def _datum_track(analysis: Analysis, path: Path) -> None:
    features = datum_features(analysis.datums)
    for scenario in analysis.scenarios:
        features += datum_features(scenario.datums, scenario=scenario.label.name)
    path.write_text(feature_collection(features))


def _stranded(analysis: Analysis, path: Path) -> None:
    path.write_text(feature_collection(stranded_features(analysis.cloud)))


def _map(analysis: Analysis, path: Path) -> None:
    a = analysis
    layers = [
        ScenarioLayer(s.label.name, s.label.weight, s.cloud, s.final_regions, s.datums)
        for s in a.scenarios
    ]
    draw_map(a.cloud, a.final_regions, a.datums, path, title=a.title, land=a.land, scenarios=layers)


def _summary(analysis: Analysis, path: Path) -> None:
    # The file has always carried the forcing list but not the synthetic flag.
    body = analysis.summary.model_dump(mode="json", exclude={"synthetic_forcing"})
    path.write_text(json.dumps(body, indent=2))


def _shapefile(analysis: Analysis, path: Path) -> None:
    write_shapefile_zip(analysis.export_areas, analysis.export_tracks(), analysis.title, path)


def _gpx(analysis: Analysis, path: Path) -> None:
    write_gpx(analysis.export_areas, analysis.export_tracks(), path)


def _geotiff(analysis: Analysis, path: Path) -> None:
    """The union's probability at each containment time (final and planning times)."""
    cloud = analysis.cloud
    times = sorted({moment for moment, _ in analysis.regions})
    layers = probability(cloud, analysis.grid, steps=[cloud.index_of(t) for t in times])
    write_geotiff(analysis.grid, layers, times, path)


#: Every product of a mission, in the order they are stored and listed.
PRODUCTS: tuple[Product, ...] = (
    Product("products/density.nc", "application/x-netcdf", _density),
    Product("products/containment.geojson", "application/geo+json", _containment_geojson),
    Product("products/containment.kml", "application/vnd.google-earth.kml+xml", _containment_kml),
    Product("products/datum_track.geojson", "application/geo+json", _datum_track),
    Product("products/stranded.geojson", "application/geo+json", _stranded),
    Product("products/map.png", "image/png", _map),
    Product("products/summary.json", "application/json", _summary),
    Product("products/search_areas.shp.zip", "application/zip", _shapefile),
    Product("products/search_areas.gpx", "application/gpx+xml", _gpx),
    Product("products/probability.tif", "image/tiff; application=geotiff", _geotiff),
)
