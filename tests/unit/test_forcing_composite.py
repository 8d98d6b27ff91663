"""Composite forcing: finest source first, coarser fallbacks after, and who served what.

The catalog builds the ordered stack; OpenDrift (in-process, no services) drifts on it,
and each source's share of particle-steps is counted by its reader.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from pyproj import Geod

from driftline.contracts.events import ForcingUsed
from driftline.contracts.missions import MissionCreate
from driftline.errors import ForcingGap
from driftline.forcing.catalog import BBox, Catalog
from driftline.forcing.plan import ForcingPlan, plan_forcing
from driftline.forcing.sample import write_constant_forcing
from driftline.forcing.subset import subset_to_file
from driftline.simulation.leeway import SimulationOutcome, SimulationRequest, run_leeway
from workers.simulate import forcing_with_shares

GEOD = Geod(ellps="WGS84")
START = datetime(2024, 3, 1)
OPEN_SEA = (57.0, 2.0)  # central North Sea, > 100 km from any coast
SLDMB = 67  # a surface drifter: no leeway, it moves with the current alone


def _write_catalog(root: Path, *sources: dict[str, object]) -> Catalog:
    path = root / "catalog.json"
    path.write_text(json.dumps({"sources": list(sources)}))
    return Catalog.from_file(path)


@pytest.fixture(scope="module")
def forcing(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A fine eastward current for 6 h, a coarse northward one for 30 h, a small fine patch."""
    root = tmp_path_factory.mktemp("composite")
    lat, lon = OPEN_SEA
    fine = write_constant_forcing(
        root / "fine", lat=lat, lon=lon, start=START, hours=6, current=(0.5, 0.0),
        resolution_deg=0.05,
    )  # fmt: skip
    coarse = write_constant_forcing(
        root / "coarse", lat=lat, lon=lon, start=START, hours=30, current=(0.0, 0.5),
        half_extent_deg=3.0, resolution_deg=0.25,
    )  # fmt: skip
    patch = write_constant_forcing(
        root / "patch", lat=lat, lon=lon, start=START, hours=30, current=(0.5, 0.0),
        half_extent_deg=0.15, resolution_deg=0.02,
    )  # fmt: skip
    return {
        "fine": fine.current_path,
        "coarse": coarse.current_path,
        "patch": patch.current_path,
        "wind": coarse.wind_path,
        "root": root,
    }


def _source(name: str, path: Path, variable: str = "current") -> dict[str, object]:
    return {"name": name, "kind": "netcdf", "path": str(path), "variables": [variable]}


def _mission(hours: float = 12) -> MissionCreate:
    return MissionCreate.model_validate(
        {
            "name": "composite",
            "object_type": "SLDMB",
            "duration_hours": hours,
            "last_known_position": {
                "lat": OPEN_SEA[0],
                "lon": OPEN_SEA[1],
                "time": START.isoformat() + "Z",
                "radius_m": 0,
            },
        }
    )


def _run(plan: ForcingPlan, tmp_path: Path, hours: float) -> tuple[SimulationOutcome, Path]:
    """Cut every layer as fetch_forcing does and run Leeway on them, in the plan's order."""
    layers = plan.ordered()
    paths = [
        subset_to_file(c, plan.area, plan.start, plan.end, tmp_path / f"{i}-{c.name}.nc")
        for i, c in enumerate(layers)
    ]
    request = SimulationRequest(
        mission_id="composite",
        object_type=SLDMB,
        lat=OPEN_SEA[0],
        lon=OPEN_SEA[1],
        start=START,
        duration_hours=hours,
        particles=200,
        seed=7,
        forcing_paths=paths,
        forcing_sources=tuple(c.name for c in layers),
    )
    output = tmp_path / "particles.nc"
    return run_leeway(request, output), output


def _displacement_km(path: Path) -> tuple[float, float]:
    """Mean east and north displacement of the final positions from the start, km."""
    with xr.open_dataset(path) as ds:
        lon = ds["lon"].values[:, -1].astype(float)
        lat = ds["lat"].values[:, -1].astype(float)
    lat0, lon0 = OPEN_SEA
    east = GEOD.inv(np.full_like(lon, lon0), lat, lon, lat)[2] * np.sign(lon - lon0)
    north = GEOD.inv(lon, np.full_like(lat, lat0), lon, lat)[2] * np.sign(lat - lat0)
    return float(east.mean()) / 1000, float(north.mean()) / 1000


def test_stack_is_finest_first_and_stops_at_the_first_full_cover(
    forcing: dict[str, Path],
) -> None:
    catalog = _write_catalog(
        forcing["root"],
        _source("coarse", forcing["coarse"]),
        _source("fine", forcing["fine"]),
        _source("wind", forcing["wind"], "wind"),
    )
    # 4 h fit inside the fine source's 6 h (plus the hour either side): it alone suffices.
    short = plan_forcing(catalog, _mission(hours=4))
    assert [c.name for c in short.layers["current"]] == ["fine"]
    # 12 h outlast it: the coarse source takes over, listed after the finer one.
    long = plan_forcing(catalog, _mission(hours=12))
    assert [c.name for c in long.layers["current"]] == ["fine", "coarse"]
    assert [c.name for c in long.ordered()] == ["fine", "coarse", "wind"]
    assert long.sources["current"].name == "fine"


def test_a_fine_current_ending_halfway_hands_over_to_the_coarse_one(
    forcing: dict[str, Path], tmp_path: Path
) -> None:
    catalog = _write_catalog(
        forcing["root"],
        _source("fine", forcing["fine"]),
        _source("coarse", forcing["coarse"]),
        _source("wind", forcing["wind"], "wind"),
    )
    plan = plan_forcing(catalog, _mission(hours=12))
    outcome, output = _run(plan, tmp_path, hours=12)
    served = outcome.forcing_usage["current"]
    share_fine = served["fine"] / (served["fine"] + served["coarse"])
    # Fine serves the steps up to its last time (6 h of 12): half, give or take a step.
    assert share_fine == pytest.approx(0.5, abs=0.03)
    assert outcome.forcing_usage["wind"] == {"wind": served["fine"] + served["coarse"]}
    # 0.5 m/s east for 6 h, then 0.5 m/s north for 6 h: 10.8 km each way.
    east, north = _displacement_km(output)
    assert east == pytest.approx(10.8, rel=0.03)
    assert north == pytest.approx(10.8, rel=0.03)


def test_particles_leaving_a_small_fine_patch_continue_on_the_coarse_source(
    forcing: dict[str, Path], tmp_path: Path
) -> None:
    catalog = _write_catalog(
        forcing["root"],
        _source("patch", forcing["patch"]),
        _source("coarse", forcing["coarse"]),
        _source("wind", forcing["wind"], "wind"),
    )
    plan = plan_forcing(catalog, _mission(hours=12))
    assert [c.name for c in plan.layers["current"]] == ["patch", "coarse"]
    outcome, output = _run(plan, tmp_path, hours=12)  # no ForcingGap: nobody met a hole
    served = outcome.forcing_usage["current"]
    share_patch = served["patch"] / (served["patch"] + served["coarse"])
    # The patch reaches 0.15 / cos(57°) = 0.275° of longitude (16.7 km) east of the start:
    # at 0.5 m/s that is 9.3 h of the 12.
    assert share_patch == pytest.approx(9.3 / 12, abs=0.05)
    east, north = _displacement_km(output)
    assert east == pytest.approx(16.7, abs=1.0)  # stopped going east at the patch's edge
    assert north == pytest.approx(0.5 * 3.6 * (12 - 9.3), abs=1.0)  # then north on coarse


def test_no_fallback_for_the_second_half_is_a_gap_naming_the_uncovered_time(
    forcing: dict[str, Path],
) -> None:
    catalog = _write_catalog(
        forcing["root"],
        _source("fine", forcing["fine"]),
        _source("wind", forcing["wind"], "wind"),
    )
    with pytest.raises(ForcingGap) as info:
        plan_forcing(catalog, _mission(hours=12))
    message = str(info.value)
    assert "current source 'fine' ends 2024-03-01T06:00Z" in message
    assert "nothing covers the start area from 2024-03-01T06:00Z" in message


def test_shares_per_variable_sum_to_one_and_uncounted_layers_stay_as_they_were() -> None:
    layers = [
        ForcingUsed(variable="current", source="fine", key="forcing/a.nc"),
        ForcingUsed(variable="current", source="coarse", key="forcing/b.nc"),
        ForcingUsed(variable="wind", source="gfs", key="forcing/c.nc"),
    ]
    shared = forcing_with_shares(layers, {"current": {"fine": 300, "coarse": 100}})
    assert [(f.source, f.particle_steps, f.share) for f in shared] == [
        ("fine", 300, 0.75),
        ("coarse", 100, 0.25),
        ("gfs", None, None),
    ]


def test_a_point_seed_area_is_covered_by_the_source_around_it(forcing: dict[str, Path]) -> None:
    catalog = _write_catalog(forcing["root"], _source("coarse", forcing["coarse"]))
    point = BBox(OPEN_SEA[1], OPEN_SEA[0], OPEN_SEA[1], OPEN_SEA[0])  # radius 0: no extent
    end = START + timedelta(hours=6)
    stacks = catalog.choose({"current"}, point, START.replace(tzinfo=UTC), end.replace(tzinfo=UTC))
    assert [c.name for c in stacks["current"]] == ["coarse"]
