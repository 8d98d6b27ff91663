"""Containment regions, density normalisation, the product files and thread safety."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import numpy as np
import xarray as xr
from shapely import MultiPoint, contains_xy

from driftline.contracts.events import ForcingUsed
from driftline.landmask import gshhg_landmask
from driftline.postprocess.containment import area_km2, containment
from driftline.postprocess.products import PRODUCTS, build_products
from tests.fakes import FakeLand, particle_cloud, write_particles

PRODUCT_NAMES = {
    f"products/{n}"
    for n in (
        "density.nc",
        "containment.geojson",
        "containment.kml",
        "datum_track.geojson",
        "stranded.geojson",
        "map.png",
        "summary.json",
        "search_areas.shp.zip",
        "search_areas.gpx",
        "probability.tif",
    )
}


def test_containment_holds_its_share_and_beats_the_hull() -> None:
    lon, lat = particle_cloud()
    regions = containment(lon, lat, resolution_m=500)
    hull = MultiPoint(np.column_stack([lon, lat])).convex_hull
    for level in (50, 90, 95):
        inside = contains_xy(regions[level], lon, lat).mean()
        assert inside >= level / 100, (level, inside)
    assert area_km2(regions[90]) < area_km2(hull)
    assert regions[50].difference(regions[90]).area < 1e-12, "50 % lies inside 90 %"
    assert area_km2(regions[50]) < area_km2(regions[90]) < area_km2(regions[95])


def test_registry_declares_each_product_once() -> None:
    assert {p.name for p in PRODUCTS} == PRODUCT_NAMES
    assert len(PRODUCTS) == len(PRODUCT_NAMES)


def test_products_from_a_particle_file(tmp_path: Path) -> None:
    """With the real GSHHG landmask, as in production (loading it takes seconds)."""
    particles = tmp_path / "particles.nc"
    write_particles(particles)
    forcing = [ForcingUsed(variable="current", source="x", key="forcing/x.nc")]
    products = build_products(particles, tmp_path / "out", forcing=forcing, land=gshhg_landmask())
    assert {a.name for a in products.artifacts} == PRODUCT_NAMES
    summary = products.summary
    assert summary.particles_total == 1000
    assert summary.particles_stranded == 10
    assert summary.particles_active == 990
    assert abs(summary.fraction_afloat - 0.99) < 1e-9
    assert set(summary.area_km2) == {"50", "90", "95"}
    assert summary.forcing == forcing
    assert not summary.synthetic_forcing
    _check_density(tmp_path / "out" / "density.nc", afloat_final=0.99)
    collection = json.loads((tmp_path / "out" / "containment.geojson").read_text())
    assert {f["properties"]["level"] for f in collection["features"]} == {50, 90, 95}
    ring = collection["features"][0]["geometry"]["coordinates"]
    assert collection["features"][0]["geometry"]["type"] in ("Polygon", "MultiPolygon")
    assert ring, "RFC 7946 polygon coordinates"
    stranded = json.loads((tmp_path / "out" / "stranded.geojson").read_text())
    assert len(stranded["features"]) == 10
    assert (tmp_path / "out" / "map.png").read_bytes().startswith(b"\x89PNG")
    written = json.loads((tmp_path / "out" / "summary.json").read_text())
    fields = ("variable", "source", "key", "synthetic")
    assert [{k: f[k] for k in fields} for f in written["forcing"]] == [
        {"variable": "current", "source": "x", "key": "forcing/x.nc", "synthetic": False}
    ]
    assert "synthetic_forcing" not in written


async def test_concurrent_missions_do_not_crash_netcdf(tmp_path: Path) -> None:
    """netCDF4/HDF5 are not thread-safe: without NETCDF_LOCK this segfaults."""
    cases = [(600 + 100 * k, 10 + k, 5 * k) for k in range(4)]  # (particles, seed, stranded)
    for k, (n, seed, stranded) in enumerate(cases):
        write_particles(tmp_path / f"p{k}.nc", n=n, seed=seed, stranded=stranded)
    results = await asyncio.gather(
        *(
            asyncio.to_thread(
                build_products, tmp_path / f"p{k}.nc", tmp_path / f"out{k}", land=FakeLand()
            )
            for k in range(len(cases))
        )
    )
    for k, ((n, _, stranded), products) in enumerate(zip(cases, results, strict=True)):
        assert {a.name for a in products.artifacts} == PRODUCT_NAMES
        assert all(a.path.is_file() and a.path.stat().st_size > 0 for a in products.artifacts)
        assert products.summary.particles_total == n
        assert products.summary.particles_stranded == stranded
        assert products.summary.particles_active == n - stranded
        _check_density(tmp_path / f"out{k}" / "density.nc", afloat_final=(n - stranded) / n)
        summary = json.loads((tmp_path / f"out{k}" / "summary.json").read_text())
        assert summary["particles_total"] == n


def _check_density(path: Path, *, afloat_final: float) -> None:
    """Each time's probabilities sum to the share afloat (all afloat before stranding)."""
    with xr.open_dataset(path) as density:
        sums = density["probability"].sum(dim=("lat", "lon")).values
    np.testing.assert_allclose(sums[:3], 1.0, rtol=1e-5)
    np.testing.assert_allclose(sums[-1], afloat_final, rtol=1e-5)


def test_grid_counts_are_what_histogram2d_counts() -> None:
    """The bincount path must count exactly as `np.histogram2d`: edges, the closed last
    bin, values outside and NaN included."""
    from driftline.postprocess.density import Grid

    rng = np.random.default_rng(4)
    grid = Grid(np.linspace(3.0, 5.0, 41), np.linspace(59.5, 60.5, 23))
    lon = np.concatenate([rng.uniform(2.9, 5.1, 5000), grid.lon_edges, [np.nan, 5.0, 3.0]])
    lat = np.concatenate(
        [rng.uniform(59.4, 60.6, 5000), grid.lat_edges[:1].repeat(41), [1, 60.5, 59.5]]
    )
    good = np.isfinite(lon) & np.isfinite(lat)
    expected, _, _ = np.histogram2d(lat[good], lon[good], bins=[grid.lat_edges, grid.lon_edges])
    np.testing.assert_array_equal(grid.counts(lon, lat), expected)


def test_first_and_last_valid_per_row() -> None:
    from driftline.postprocess.cloud import _first_valid, _last_valid

    nan = np.nan
    values = np.array([[nan, 1.0, 2.0, nan], [nan, nan, nan, nan], [3.0, nan, nan, 4.0]])
    np.testing.assert_array_equal(_first_valid(values), [1.0, nan, 3.0])
    np.testing.assert_array_equal(_last_valid(values), [2.0, nan, 4.0])
