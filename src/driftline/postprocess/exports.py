"""Exports for GIS and chart plotters, written by GDAL: KML, zipped Shapefile, GPX, GeoTIFF.

Vector files go through pyogrio (GDAL's OGR drivers): GDAL escapes text (a mission
named `Fish & Chips <Ltd>`) and writes polygon holes. Areas are the plotter versions of
the containment regions (`simplify.plotter_region`: bounded vertex count, covering the
exact region). The GeoTIFF is written by rasterio (GDAL's GTiff driver), one band per
containment time.
"""

from __future__ import annotations

import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from xml.etree import ElementTree

import geopandas as gpd
import numpy as np
import pyogrio
from shapely import LineString

from driftline.contracts.envelope import rfc3339
from driftline.postprocess.cloud import Datum
from driftline.postprocess.containment import Region, area_km2, polygons
from driftline.postprocess.density import Grid
from driftline.postprocess.simplify import MAX_RING_VERTICES

#: Name of the weighted union of all scenarios in the exports' `scenario` field.
UNION = "all"
#: Line colours per containment level (GDAL style strings, RGB).
LEVEL_PEN = {50: "#FF0000", 90: "#FFA500", 95: "#FFFF00"}
KML_NS = "http://www.opengis.net/kml/2.2"


@dataclass(frozen=True)
class ExportArea:
    """One containment area as exported: already simplified for plotters."""

    scenario: str
    level: int
    time: datetime
    shape: Region

    @property
    def label(self) -> str:
        which = "" if self.scenario == UNION else f" ({self.scenario})"
        return f"{self.level} % containment {rfc3339(self.time)}{which}"


@dataclass(frozen=True)
class ExportTrack:
    """One datum track (the union's or a scenario's)."""

    scenario: str
    datums: Sequence[Datum]

    @property
    def label(self) -> str:
        return "datum track" if self.scenario == UNION else f"datum track ({self.scenario})"


def _areas_frame(areas: Sequence[ExportArea], title: str) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {
            "name": [a.label for a in areas],
            "description": [title for _ in areas],
            "level": [a.level for a in areas],
            "time": [rfc3339(a.time) for a in areas],
            "scenario": [a.scenario for a in areas],
            "area_km2": [round(area_km2(a.shape), 3) for a in areas],
            "OGR_STYLE": [
                f"PEN(c:{LEVEL_PEN.get(a.level, '#FFFFFF')},w:2px);BRUSH(fc:#00000000)"
                for a in areas
            ],
        },
        geometry=[a.shape for a in areas],
        crs="EPSG:4326",
    )


def _track_line(datums: Sequence[Datum], max_points: int = MAX_RING_VERTICES) -> LineString:
    """The datum track, thinned evenly to at most `max_points` (first and last kept)."""
    keep = np.unique(np.linspace(0, len(datums) - 1, min(len(datums), max_points)).round())
    return LineString([(datums[int(i)].lon, datums[int(i)].lat) for i in keep])


def write_kml(areas: Sequence[ExportArea], title: str, path: Path) -> None:
    """The containment areas as KML (GDAL's KML driver), the mission's title as the
    document's name (set through ElementTree, which escapes it)."""
    pyogrio.write_dataframe(_areas_frame(areas, title), path, driver="KML", layer="containment")
    ElementTree.register_namespace("", KML_NS)
    tree = ElementTree.parse(path)
    document = tree.getroot().find(f"{{{KML_NS}}}Document")
    if document is not None:
        name = ElementTree.Element(f"{{{KML_NS}}}name")
        name.text = title
        document.insert(0, name)  # a Document's name comes before its Schema and Folders
        _drop_style_field(document)
    tree.write(path, xml_declaration=True, encoding="UTF-8")


def _drop_style_field(document: ElementTree.Element) -> None:
    """GDAL turns `OGR_STYLE` into each placemark's <Style> and also lists it as data;
    the style is kept, the data copy (noise in a viewer's balloon) dropped."""
    for parent in document.iter():
        for child in list(parent):
            if child.tag in (f"{{{KML_NS}}}SimpleField", f"{{{KML_NS}}}SimpleData") and (
                child.get("name") == "OGR_STYLE"
            ):
                parent.remove(child)


def write_shapefile_zip(
    areas: Sequence[ExportArea], tracks: Sequence[ExportTrack], title: str, path: Path
) -> None:
    """`containment.shp` (polygons) and `datum_track.shp` (lines) with their .dbf, .shx,
    .prj and .cpg, in one zip: the form GIS tools and many plotters import."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        frame = _areas_frame(areas, title).drop(columns=["OGR_STYLE", "description"])
        _write_shapefile(frame, folder / "containment.shp")
        lines = [t for t in tracks if len(t.datums) > 1]
        if lines:
            track_frame = gpd.GeoDataFrame(
                {
                    "name": [t.label for t in lines],
                    "scenario": [t.scenario for t in lines],
                    "start": [rfc3339(t.datums[0].time) for t in lines],
                    "end": [rfc3339(t.datums[-1].time) for t in lines],
                },
                geometry=[_track_line(t.datums, len(t.datums)) for t in lines],
                crs="EPSG:4326",
            )
            _write_shapefile(track_frame, folder / "datum_track.shp")
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            for member in sorted(folder.iterdir()):
                archive.write(member, member.name)


def _write_shapefile(frame: gpd.GeoDataFrame, path: Path) -> None:
    pyogrio.write_dataframe(
        frame, path, driver="ESRI Shapefile", layer_options={"ENCODING": "UTF-8"}
    )


def write_gpx(areas: Sequence[ExportArea], tracks: Sequence[ExportTrack], path: Path) -> None:
    """Routes a chart plotter loads: each area's outline (exterior and holes) and each
    datum track, at most `MAX_RING_VERTICES` points each."""
    names: list[str] = []
    lines: list[LineString] = []
    for track in tracks:
        if len(track.datums) > 1:
            names.append(track.label)
            lines.append(_track_line(track.datums))
    for area in areas:
        for part, polygon in enumerate(polygons(area.shape), start=1):
            for ring, outline in enumerate((polygon.exterior, *polygon.interiors)):
                suffix = f" part {part}" if len(polygons(area.shape)) > 1 else ""
                suffix += f" hole {ring}" if ring else ""
                names.append(area.label + suffix)
                lines.append(LineString(outline.coords))
    routes = gpd.GeoDataFrame({"name": names}, geometry=lines, crs="EPSG:4326")
    pyogrio.write_dataframe(routes, path, driver="GPX", layer="routes")


def write_geotiff(
    grid: Grid, probability: np.ndarray, times: Sequence[datetime], path: Path
) -> None:
    """`probability` (time, lat, lon) as a float32 GeoTIFF in WGS84, one band per time,
    north up; each band's description is its time (RFC 3339)."""
    import rasterio
    from rasterio.transform import Affine

    dlon = float(grid.lon_edges[1] - grid.lon_edges[0])
    dlat = float(grid.lat_edges[1] - grid.lat_edges[0])
    # North-west corner, then rows going south.
    transform = Affine(dlon, 0.0, float(grid.lon_edges[0]), 0.0, -dlat, float(grid.lat_edges[-1]))
    bands, rows, cols = probability.shape
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=cols,
        height=rows,
        count=bands,
        dtype="float32",
        crs="EPSG:4326",
        transform=transform,
        compress="deflate",
    ) as tiff:
        for band, moment in enumerate(times, start=1):
            tiff.write(probability[band - 1, ::-1, :].astype("float32"), band)
            tiff.set_band_description(band, rfc3339(moment))
        tiff.update_tags(units="1", long_name="probability that the object is in the cell")
