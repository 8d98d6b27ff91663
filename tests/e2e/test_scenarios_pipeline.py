"""A mission with weighted scenarios (a point, a voyage track, a reported area) through the
whole pipeline on the real services: completed, every product for the union and each
scenario, the exports listed on `mission.completed` and opening with GDAL."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyogrio
import rasterio
import xarray as xr

from driftline.settings import Settings
from tests.pipeline import read_topic, records_for, running_pipeline

EXPORTS = {
    "products/containment.kml",
    "products/search_areas.shp.zip",
    "products/search_areas.gpx",
    "products/probability.tif",
}


def _body() -> dict[str, Any]:
    """Three hypotheses in the sample forcing's open water west of Norway."""
    return {
        "name": "Fish & Chips <Ltd> overdue",
        "duration_hours": 9,
        "particles": 600,
        "scenarios": [
            {
                "name": "person in water at the LKP",
                "weight": 0.5,
                "object_type": "PIW-1",
                "last_known_position": {
                    "lat": 60.0,
                    "lon": 3.9,
                    "time": "2024-01-01T06:00:00Z",
                    "radius_m": 500,
                },
            },
            {
                "name": "life raft from the track",
                "weight": 0.3,
                "object_type": "LIFE-RAFT-DB-10",
                "track": [
                    {"lat": 59.95, "lon": 3.8, "time": "2024-01-01T04:00:00Z"},
                    {"lat": 60.05, "lon": 3.95, "time": "2024-01-01T07:00:00Z"},
                ],
            },
            {
                "name": "reported area",
                "weight": 0.2,
                "object_type": 7,
                "area": {
                    "geometry": {
                        "type": "Polygon",
                        "coordinates": [
                            [[3.7, 60.05], [3.8, 60.05], [3.8, 60.1], [3.7, 60.1], [3.7, 60.05]]
                        ],
                    },
                    "time": "2024-01-01T05:00:00Z",
                },
            },
        ],
    }


async def test_weighted_scenarios_complete_with_products_for_each(
    pipeline_settings: Settings, simulation_pool: Any, tmp_path: Path
) -> None:
    body = _body()
    async with running_pipeline(pipeline_settings, simulation_pool=simulation_pool) as p:
        mission_id = await p.submit(body)
        final = await p.wait_final(mission_id, timeout_s=240)
        assert final["status"] == "completed", final
        assert [s["name"] for s in final["request"]["scenarios"]] == [
            s["name"] for s in body["scenarios"]
        ]
        completed = await read_topic(
            p.settings,
            p.topic("missions.completed"),
            until=lambda recs: bool(records_for(recs, mission_id)),
        )
        data = json.loads(records_for(completed, mission_id)[0].value)
        names = {a["name"] for a in data["artifacts"]}
        assert names >= EXPORTS | {"products/density.nc", "products/map.png"}
        async with p.client() as client:
            for name in [*EXPORTS, "products/density.nc"]:
                got = await client.get(f"/v1/missions/{mission_id}/artifacts/{name}")
                assert got.status_code == 200, name
                (tmp_path / Path(name).name).write_bytes(got.content)

    scenarios = data["summary"]["scenarios"]
    assert [s["particles_total"] for s in scenarios] == [300, 180, 120]
    assert [s["weight"] for s in scenarios] == [0.5, 0.3, 0.2]
    assert all(s["area_km2"]["90"] > 0 for s in scenarios)

    with xr.open_dataset(tmp_path / "density.nc") as density:
        union = density["probability"].sum(dim=("lat", "lon")).values
        parts = density["scenario_probability"].sum(dim=("lat", "lon")).values
    # From 07:30 (the last release is at 07:00; outputs every 30 min) every particle is out;
    # far off the coast, all stay afloat: the union sums to 1, each part to its weight.
    out = slice(7, None)
    np.testing.assert_allclose(union[out], 1.0, rtol=1e-5)
    for part, weight in zip(parts, (0.5, 0.3, 0.2), strict=True):
        np.testing.assert_allclose(part[out], weight, rtol=0.01)

    kml = pyogrio.read_dataframe(tmp_path / "containment.kml")
    assert set(kml["scenario"]) == {"all", *(s["name"] for s in body["scenarios"])}
    assert "Fish &amp; Chips &lt;Ltd&gt; overdue" in (tmp_path / "containment.kml").read_text()
    shapes = pyogrio.read_dataframe(f"/vsizip/{tmp_path / 'search_areas.shp.zip'}/containment.shp")
    assert len(shapes) == len(kml)
    routes = pyogrio.read_dataframe(tmp_path / "search_areas.gpx", layer="routes")
    assert len(routes) >= len(kml)
    with rasterio.open(tmp_path / "probability.tif") as tiff:
        assert tiff.count >= 2 and tiff.crs.to_epsg() == 4326
