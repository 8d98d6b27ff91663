"""Containment regions, density normalisation and the product files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import xarray as xr
from shapely import MultiPoint, contains_xy

from driftline.postprocess.products import area_km2, build_products, containment


def _cloud(n: int = 4000, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """A skewed two-lobe cloud, the shape real drift produces after a wind shift."""
    rng = np.random.default_rng(seed)
    main = rng.multivariate_normal([4.0, 60.0], [[0.004, 0.0015], [0.0015, 0.001]], int(n * 0.7))
    lobe = rng.multivariate_normal([4.15, 60.05], [[0.0008, 0], [0, 0.0003]], n - len(main))
    points = np.vstack([main, lobe])
    return points[:, 0], points[:, 1]


def test_containment_holds_its_share_and_beats_the_hull() -> None:
    lon, lat = _cloud()
    regions = containment(lon, lat, resolution_m=500)
    hull = MultiPoint(np.column_stack([lon, lat])).convex_hull
    for level in (50, 90, 95):
        inside = contains_xy(regions[level], lon, lat).mean()
        assert inside >= level / 100, (level, inside)
    assert area_km2(regions[90]) < area_km2(hull)
    assert regions[50].difference(regions[90]).area < 1e-12, "50 % lies inside 90 %"
    assert area_km2(regions[50]) < area_km2(regions[90]) < area_km2(regions[95])


def test_products_from_a_particle_file(tmp_path: Path) -> None:
    lon, lat = _cloud(1000)
    steps = 5
    lons = np.stack([4.0 + (lon - 4.0) * k / (steps - 1) for k in range(steps)], axis=1)
    lats = np.stack([60.0 + (lat - 60.0) * k / (steps - 1) for k in range(steps)], axis=1)
    status = np.zeros_like(lons)
    # The last ten particles strand at step 3: status 1, positions masked afterwards.
    status[-10:, 3:] = 1
    lons[-10:, 4:] = np.nan
    lats[-10:, 4:] = np.nan
    times = np.array(
        [np.datetime64("2024-01-01T00:00") + np.timedelta64(30 * k, "m") for k in range(steps)]
    )
    ds = xr.Dataset(
        {
            "lon": (("trajectory", "time"), lons.astype("float32")),
            "lat": (("trajectory", "time"), lats.astype("float32")),
            "status": (
                ("trajectory", "time"),
                status,
                {"flag_values": [0, 1], "flag_meanings": "active stranded"},
            ),
        },
        coords={"trajectory": np.arange(len(lon)), "time": times},
    )
    particles = tmp_path / "particles.nc"
    ds.to_netcdf(particles)
    products = build_products(particles, tmp_path / "out", forcing_used=[{"source": "x"}])
    names = {a.name for a in products.artifacts}
    assert names == {
        f"products/{n}"
        for n in (
            "density.nc",
            "containment.geojson",
            "containment.kml",
            "datum_track.geojson",
            "stranded.geojson",
            "map.png",
            "summary.json",
        )
    }
    summary = products.summary
    assert summary["particles_total"] == 1000
    assert summary["particles_stranded"] == 10
    assert summary["particles_active"] == 990
    assert abs(summary["fraction_afloat"] - 0.99) < 1e-9
    with xr.open_dataset(tmp_path / "out" / "density.nc") as density:
        sums = density["probability"].sum(dim=("lat", "lon")).values
    np.testing.assert_allclose(sums[:3], 1.0, rtol=1e-5)
    np.testing.assert_allclose(sums[-1], 0.99, rtol=1e-5)
    collection = json.loads((tmp_path / "out" / "containment.geojson").read_text())
    assert {f["properties"]["level"] for f in collection["features"]} == {50, 90, 95}
    ring = collection["features"][0]["geometry"]["coordinates"]
    assert collection["features"][0]["geometry"]["type"] in ("Polygon", "MultiPolygon")
    assert ring, "RFC 7946 polygon coordinates"
    stranded = json.loads((tmp_path / "out" / "stranded.geojson").read_text())
    assert len(stranded["features"]) == 10
    assert (tmp_path / "out" / "map.png").read_bytes().startswith(b"\x89PNG")
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["forcing"] == [
        {"source": "x"}
    ]
