"""GIS and chart-plotter exports: each opens with GDAL, the KML validates against the OGC
KML 2.2 schema with a name that needs escaping, holes are kept, areas are simplified
yet still hold their share; and a two-scenario cloud gets products per scenario."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pyogrio
import pytest
import rasterio
import xarray as xr
from lxml import etree
from shapely import MultiPolygon, Polygon, contains_xy

from driftline.postprocess.containment import containment
from driftline.postprocess.products import Products, ScenarioLabel, build_products
from driftline.postprocess.simplify import MAX_RING_VERTICES, plotter_region, ring_sizes
from tests.fakes import FakeLand

TITLE = "Fish & Chips <Ltd>"
STEPS = 5


def _ring_cloud(n: int, seed: int, centre: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """Particles on an annulus (a search area with a hole in the middle)."""
    rng = np.random.default_rng(seed)
    angle = rng.uniform(0, 2 * np.pi, n)
    radius = rng.uniform(0.06, 0.1, n)
    return centre[0] + radius * np.cos(angle) * 2, centre[1] + radius * np.sin(angle)


def _write_cloud(path: Path, parts: list[tuple[np.ndarray, np.ndarray]]) -> None:
    """An OpenDrift-like file: each part (a scenario, `origin_marker` k) spreads from its
    centre over STEPS half-hourly outputs; nothing strands."""
    lons, lats, markers = [], [], []
    for k, (lon, lat) in enumerate(parts):
        lon0, lat0 = float(np.mean(lon)), float(np.mean(lat))
        grow = [s / (STEPS - 1) for s in range(STEPS)]
        lons.append(np.stack([lon0 + (lon - lon0) * g for g in grow], axis=1))
        lats.append(np.stack([lat0 + (lat - lat0) * g for g in grow], axis=1))
        markers.append(np.full((lon.size, STEPS), k))
    lon_all, lat_all = np.vstack(lons), np.vstack(lats)
    times = [np.datetime64("2024-01-01T00:00") + np.timedelta64(30 * k, "m") for k in range(STEPS)]
    xr.Dataset(
        {
            "lon": (("trajectory", "time"), lon_all.astype("float32")),
            "lat": (("trajectory", "time"), lat_all.astype("float32")),
            "status": (
                ("trajectory", "time"),
                np.zeros_like(lon_all),
                {"flag_values": [0, 1], "flag_meanings": "active stranded"},
            ),
            "origin_marker": (("trajectory", "time"), np.vstack(markers).astype("int16")),
        },
        coords={"trajectory": np.arange(len(lon_all)), "time": np.array(times)},
    ).to_netcdf(path)


@pytest.fixture(scope="module")
def ring_products(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Products]:
    folder = tmp_path_factory.mktemp("ring")
    _write_cloud(folder / "particles.nc", [_ring_cloud(3000, 4, (4.0, 60.0))])
    products = build_products(folder / "particles.nc", folder / "out", title=TITLE, land=FakeLand())
    return folder / "out", products


def _kml_schema() -> etree.XMLSchema:
    import pykml

    return etree.XMLSchema(etree.parse(str(Path(pykml.__file__).parent / "schemas/ogckml22.xsd")))


def _polygons(geometry: object) -> list[Polygon]:
    if isinstance(geometry, MultiPolygon):
        return list(geometry.geoms)
    assert isinstance(geometry, Polygon), geometry
    return [geometry]


def test_kml_of_a_name_needing_escapes_validates_and_keeps_holes(
    ring_products: tuple[Path, Products],
) -> None:
    out, _ = ring_products
    kml = out / "containment.kml"
    document = etree.parse(str(kml))
    schema = _kml_schema()
    assert schema.validate(document), schema.error_log
    ns = {"k": "http://www.opengis.net/kml/2.2"}
    assert document.findtext("k:Document/k:name", namespaces=ns) == TITLE
    assert "Fish &amp; Chips &lt;Ltd&gt;" in kml.read_text()
    assert document.findall(".//k:innerBoundaryIs", namespaces=ns), "holes kept"
    assert document.findall(".//k:Placemark/k:Style/k:LineStyle/k:color", namespaces=ns)
    assert "OGR_STYLE" not in kml.read_text(), "the style is drawn, not listed as data"
    frame = pyogrio.read_dataframe(kml)
    assert set(frame["level"].astype(int)) == {50, 90, 95}
    assert any(p.interiors for g in frame.geometry for p in _polygons(g)), "GDAL reads holes"


def test_shapefile_zip_opens_with_gdal_and_keeps_holes(
    ring_products: tuple[Path, Products],
) -> None:
    out, _ = ring_products
    archive = out / "search_areas.shp.zip"
    names = set(zipfile.ZipFile(archive).namelist())
    assert {"containment.shp", "containment.dbf", "containment.shx", "containment.prj"} <= names
    areas = pyogrio.read_dataframe(f"/vsizip/{archive}/containment.shp")
    assert set(areas["level"]) == {50, 90, 95}
    assert set(areas["scenario"]) == {"all"}
    assert any(p.interiors for g in areas.geometry for p in _polygons(g))
    track = pyogrio.read_dataframe(f"/vsizip/{archive}/datum_track.shp")
    assert len(track) == 1 and track.geometry[0].geom_type == "LineString"


def test_gpx_routes_open_with_gdal_within_the_plotter_limit(
    ring_products: tuple[Path, Products],
) -> None:
    out, _ = ring_products
    routes = pyogrio.read_dataframe(out / "search_areas.gpx", layer="routes")
    assert "datum track" in set(routes["name"])
    assert any("hole" in name for name in routes["name"]), "holes as routes of their own"
    assert max(len(line.coords) for line in routes.geometry) <= MAX_RING_VERTICES
    assert len(routes) >= 3  # datum track and at least the three final areas


def test_geotiff_of_the_probability_grid_opens_with_gdal(
    ring_products: tuple[Path, Products],
) -> None:
    out, _ = ring_products
    with rasterio.open(out / "probability.tif") as tiff:
        assert tiff.crs.to_epsg() == 4326
        assert tiff.count == 1  # the final time only: no planning times asked
        band = tiff.read(1)
        assert tiff.descriptions[0] == "2024-01-01T02:00:00Z"
        assert tiff.transform.e < 0, "north up"
        assert abs(float(band.sum()) - 1.0) < 1e-4
        # The cloud's middle (the hole) is where the probability is not.
        row, col = tiff.index(4.0, 60.0)
        assert band[row, col] == 0
        row, col = tiff.index(4.16, 60.0)
        assert band[row - 2 : row + 3, col - 2 : col + 3].sum() > 0


def test_exported_areas_are_bounded_and_still_hold_their_share() -> None:
    lon, lat = _ring_cloud(5000, 9, (4.0, 60.0))
    for level, exact in containment(lon, lat, resolution_m=300).items():
        assert max(ring_sizes(exact)) > MAX_RING_VERTICES, "the test needs a detailed region"
        simple = plotter_region(exact)
        assert max(ring_sizes(simple)) <= MAX_RING_VERTICES
        assert simple.covers(exact)
        assert contains_xy(simple, lon, lat).mean() >= level / 100
        if level >= 90:  # the 50 % region of a flat ring is a patchwork: it grows more
            assert simple.area < exact.area * 1.3, "grown a little, not a hull"
        assert any(p.interiors for p in _polygons(simple)), "the hole survives"


def test_two_scenarios_get_products_for_the_union_and_each(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    piw = (4.0 + rng.normal(0, 0.02, 700), 60.0 + rng.normal(0, 0.01, 700))
    raft = (4.3 + rng.normal(0, 0.03, 300), 60.1 + rng.normal(0, 0.015, 300))
    _write_cloud(tmp_path / "particles.nc", [piw, raft])
    labels = [ScenarioLabel("PIW at LKP", 0.7), ScenarioLabel("raft", 0.3)]
    products = build_products(
        tmp_path / "particles.nc", tmp_path / "out", land=FakeLand(coast_lon=9), scenarios=labels
    )
    with xr.open_dataset(tmp_path / "out" / "density.nc") as density:
        union = density["probability"].sum(dim=("lat", "lon")).values
        parts = density["scenario_probability"].sum(dim=("lat", "lon")).values
        assert list(density["scenario"].values) == ["PIW at LKP", "raft"]
        layered = density["scenario_probability"].sum(dim="scenario").values
        np.testing.assert_allclose(layered, density["probability"].values, atol=1e-6)
    np.testing.assert_allclose(union, 1.0, rtol=1e-5)
    np.testing.assert_allclose(parts[0], 0.7, rtol=0.01)
    np.testing.assert_allclose(parts[1], 0.3, rtol=0.01)
    summary = products.summary
    assert [s.name for s in summary.scenarios] == ["PIW at LKP", "raft"]
    assert [s.particles_total for s in summary.scenarios] == [700, 300]
    piw_summary, raft_summary = summary.scenarios
    assert (
        abs(piw_summary.centroid.lon - 4.0) < 0.01 and abs(raft_summary.centroid.lon - 4.3) < 0.01
    )
    assert piw_summary.area_km2["90"] < summary.area_km2["90"], "each its own, smaller area"
    collection = json.loads((tmp_path / "out" / "containment.geojson").read_text())
    by_scenario = {f["properties"].get("scenario") for f in collection["features"]}
    assert by_scenario == {None, "PIW at LKP", "raft"}, "union features keep their old form"
    kml = pyogrio.read_dataframe(tmp_path / "out" / "containment.kml")
    assert set(kml["scenario"]) == {"all", "PIW at LKP", "raft"}
    tracks = json.loads((tmp_path / "out" / "datum_track.geojson").read_text())
    lines = [f for f in tracks["features"] if f["properties"]["kind"] == "datum track"]
    assert [f["properties"].get("scenario") for f in lines] == [None, "PIW at LKP", "raft"]
    assert (tmp_path / "out" / "map.png").read_bytes().startswith(b"\x89PNG")
    written = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert [s["share"] for s in written["scenarios"]] == [0.7, 0.3]
