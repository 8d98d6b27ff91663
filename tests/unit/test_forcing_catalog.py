"""Choosing forcing: priority, then resolution; gaps named in words; shared cache keys."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from driftline.contracts.missions import MissionCreate
from driftline.errors import ConfigurationError, ForcingGap
from driftline.forcing.catalog import BBox, Catalog
from driftline.forcing.plan import plan_forcing
from driftline.forcing.sample import write_constant_forcing, write_sample_forcing
from driftline.forcing.subset import subset_to_file

START = datetime(2024, 1, 1)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("catalog")
    fine = write_sample_forcing(
        root / "fine", lat=60, lon=4, start=START, hours=48, resolution_deg=0.05
    )
    coarse = write_sample_forcing(
        root / "coarse", lat=60, lon=4, start=START, hours=72, resolution_deg=0.2
    )
    short = write_constant_forcing(root / "short", lat=60, lon=4, start=START, hours=12)
    return {
        "fine_current": fine.current_path,
        "coarse_current": coarse.current_path,
        "wind": coarse.wind_path,
        "short_current": short.current_path,
        "root": root,
    }


def _catalog(files: dict[str, Path], **priorities: int) -> Catalog:
    sources = [
        {
            "name": "fine",
            "kind": "netcdf",
            "path": str(files["fine_current"]),
            "variables": ["current"],
            "priority": priorities.get("fine", 0),
        },
        {
            "name": "coarse",
            "kind": "netcdf",
            "path": str(files["coarse_current"]),
            "variables": ["current"],
            "priority": priorities.get("coarse", 0),
        },
        {"name": "wind", "kind": "netcdf", "path": str(files["wind"]), "variables": ["wind"]},
    ]
    path = files["root"] / "catalog.json"
    path.write_text(json.dumps({"sources": sources}))
    return Catalog.from_file(path)


def _mission(hours: float = 12, **changes: object) -> MissionCreate:
    body: dict[str, object] = {
        "name": "t",
        "object_type": "PIW-1",
        "duration_hours": hours,
        "last_known_position": {"lat": 60.0, "lon": 4.0, "time": "2024-01-01T06:00:00Z"},
    }
    body.update(changes)
    return MissionCreate.model_validate(body)


def test_priority_first_then_finest_resolution(files: dict[str, Path]) -> None:
    plan = plan_forcing(_catalog(files), _mission())
    assert plan.sources["current"].name == "fine"  # equal priority: finer grid wins
    plan = plan_forcing(_catalog(files, coarse=5), _mission())
    assert plan.sources["current"].name == "coarse"  # priority beats resolution
    assert plan.sources["wind"].name == "wind"


def test_window_past_the_end_is_a_gap_naming_source_and_span(files: dict[str, Path]) -> None:
    plan = plan_forcing(_catalog(files), _mission(hours=60))  # fine ends at 48 h
    # Composite: the finer source first while it lasts, the coarser one after.
    assert [c.name for c in plan.layers["current"]] == ["fine", "coarse"]
    assert plan.sources["current"].name == "fine"
    with pytest.raises(ForcingGap) as info:
        plan_forcing(_catalog(files), _mission(hours=80))
    message = str(info.value)
    assert info.value.reason == "forcing_gap"
    assert "'fine' ends 2024-01-03T00:00Z" in message
    assert "'coarse' ends 2024-01-04T00:00Z" in message
    assert "2024-01-04T14:00Z" in message
    assert "nothing covers the start area from 2024-01-04T00:00Z" in message


def test_place_outside_every_source_is_a_gap(files: dict[str, Path]) -> None:
    far = _mission(last_known_position={"lat": 40.0, "lon": -30.0, "time": "2024-01-01T06:00:00Z"})
    with pytest.raises(ForcingGap, match="not the seed area"):
        plan_forcing(_catalog(files), far)


def test_cache_key_is_shared_by_nearby_missions_and_differs_by_source(
    files: dict[str, Path],
) -> None:
    catalog = _catalog(files)
    one = plan_forcing(catalog, _mission())
    near = plan_forcing(
        catalog,
        _mission(last_known_position={"lat": 60.01, "lon": 4.01, "time": "2024-01-01T06:20:00Z"}),
    )
    current = one.sources["current"]
    assert one.cache_key(current) == near.cache_key(near.sources["current"])
    assert one.cache_key(current) != one.cache_key(one.sources["wind"])


def test_subset_is_cf_and_covers_the_padded_area(files: dict[str, Path], tmp_path: Path) -> None:
    import xarray as xr

    plan = plan_forcing(_catalog(files), _mission())
    out = subset_to_file(
        plan.sources["current"], plan.area, plan.start, plan.end, tmp_path / "sub.nc"
    )
    with xr.open_dataset(out) as ds:
        assert ds["x_sea_water_velocity"].attrs["standard_name"] == "x_sea_water_velocity"
        assert float(ds["lat"].min()) <= plan.area.lat_min + 0.05
        times = ds["time"].values
        assert times[0] <= np.datetime64(plan.start.replace(tzinfo=None), "ns")
        assert times[-1] >= np.datetime64(plan.end.replace(tzinfo=None) - timedelta(hours=1), "ns")


def test_constant_forcing_must_be_allowed_explicitly(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text(
        json.dumps(
            {
                "sources": [
                    {
                        "name": "calm",
                        "kind": "constant",
                        "variables": ["wind"],
                        "values": {"wind": [0, 0]},
                    }
                ]
            }
        )
    )
    with pytest.raises(ConfigurationError, match="synthetic"):
        Catalog.from_file(path)


def test_bbox_helpers() -> None:
    box = BBox(0, 0, 2, 2)
    assert box.contains(1, 1) and not box.contains(3, 1)
    assert box.intersection(BBox(1, 1, 3, 3)) == BBox(1, 1, 2, 2)
    assert box.intersection(BBox(5, 5, 6, 6)) is None
    assert datetime(2024, 1, 1, tzinfo=UTC)  # aware times throughout the catalog
