"""The science against known answers: analytic drift, reversibility, seeding, loud gaps.

These run OpenDrift in-process on forcing files written to a temp folder (no services).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from pyproj import Geod

from driftline.errors import ForcingGap, InvalidMission
from driftline.forcing.sample import write_constant_forcing, write_sample_forcing
from driftline.simulation.leeway import (
    SimulationRequest,
    leeway_categories,
    resolve_object_type,
    run_leeway,
    seed_from_mission_id,
)

GEOD = Geod(ellps="WGS84")
START = datetime(2024, 3, 1)
OPEN_SEA = (57.0, 2.0)  # central North Sea, > 100 km from any coast


def _request(forcing: list[Path], **changes: object) -> SimulationRequest:
    base: dict[str, object] = {
        "mission_id": "m",
        "object_type": 67,
        "lat": OPEN_SEA[0],
        "lon": OPEN_SEA[1],
        "start": START,
        "duration_hours": 24,
        "particles": 1000,
        "seed": 42,
        "forcing_paths": forcing,
    }
    base.update(changes)
    return SimulationRequest(**base)  # type: ignore[arg-type]


def _final(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with xr.open_dataset(path) as ds:
        return ds["lon"].values[:, -1].astype(float), ds["lat"].values[:, -1].astype(float)


def _initial(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with xr.open_dataset(path) as ds:
        lon = ds["lon"].values.astype(float)
        lat = ds["lat"].values.astype(float)
    first = np.argmax(np.isfinite(lon), axis=1)
    rows = np.arange(len(lon))
    return lon[rows, first], lat[rows, first]


def _displacement_km(
    lon0: float, lat0: float, lon: np.ndarray, lat: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """East (along the parallel) and north (along the meridian) displacement, km."""
    east = GEOD.inv(np.full_like(lon, lon0), lat, lon, lat)[2] * np.sign(lon - lon0)
    north = GEOD.inv(lon, np.full_like(lat, lat0), lon, lat)[2] * np.sign(lat - lat0)
    return east / 1000, north / 1000


@pytest.fixture(scope="module")
def current_only(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    forcing = write_constant_forcing(
        tmp_path_factory.mktemp("current"),
        lat=OPEN_SEA[0],
        lon=OPEN_SEA[1],
        start=START,
        hours=30,
        current=(0.5, 0.0),
        wind=(0.0, 0.0),
        half_extent_deg=2.5,
    )
    return [forcing.current_path, forcing.wind_path]


@pytest.fixture(scope="module")
def wind_only(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    forcing = write_constant_forcing(
        tmp_path_factory.mktemp("wind"),
        lat=OPEN_SEA[0],
        lon=OPEN_SEA[1],
        start=START,
        hours=30,
        current=(0.0, 0.0),
        wind=(10.0, 0.0),
        half_extent_deg=2.5,
    )
    return [forcing.current_path, forcing.wind_path]


def test_sldmb_moves_with_the_current(current_only: list[Path], tmp_path: Path) -> None:
    """SLDMB (object 67) has no leeway: 0.5 m/s east for 24 h is 43.2 km east (±1 %)."""
    out = tmp_path / "sldmb.nc"
    outcome = run_leeway(_request(current_only, object_type=67), out)
    assert outcome.particles_total == 1000 and outcome.stranded == 0
    east, north = _displacement_km(OPEN_SEA[1], OPEN_SEA[0], *_final(out))
    assert abs(east.mean() - 43.2) <= 0.01 * 43.2, east.mean()
    assert abs(north.mean()) < 0.2


def test_life_raft_leeway_in_wind(wind_only: list[Path], tmp_path: Path) -> None:
    """LIFE-RAFT-DB-10 in 10 m/s wind: 0.0352 * 10 - 0.025 = 0.327 m/s → 28.25 km (±2 %)."""
    category = resolve_object_type("LIFE-RAFT-DB-10")
    out = tmp_path / "raft.nc"
    run_leeway(_request(wind_only, object_type=category.id), out)
    east, _north = _displacement_km(OPEN_SEA[1], OPEN_SEA[0], *_final(out))
    assert abs(east.mean() - 28.25) <= 0.02 * 28.25, east.mean()


def test_same_request_reproduces_exactly(tmp_path: Path) -> None:
    forcing = write_sample_forcing(tmp_path / "f", lat=60.0, lon=4.0, start=START, hours=30)
    paths = [forcing.current_path, forcing.wind_path]
    request = _request(
        paths,
        object_type=7,
        lat=60.0,
        lon=4.0,
        radius_m=2000,
        seed=seed_from_mission_id("abc"),
        duration_hours=12,
        particles=300,
    )
    run_leeway(request, tmp_path / "a.nc")
    run_leeway(request, tmp_path / "b.nc")
    with xr.open_dataset(tmp_path / "a.nc") as a, xr.open_dataset(tmp_path / "b.nc") as b:
        np.testing.assert_array_equal(a["lon"].values, b["lon"].values)
        np.testing.assert_array_equal(a["lat"].values, b["lat"].values)


def test_backward_run_returns_near_the_start(tmp_path: Path) -> None:
    """Forward 24 h, then backward 24 h from the forward datum, lands near the start.

    Tolerance 10 % of the distance travelled: the datum is a mean over a cloud spread by
    the Leeway coefficients' randomness, and in a sheared (tide + eddy) field the mean of
    the back-tracked cloud is not exactly the start even with perfect integration.
    """
    forcing = write_sample_forcing(tmp_path / "f", lat=60.0, lon=4.0, start=START, hours=30)
    paths = [forcing.current_path, forcing.wind_path]
    forward = tmp_path / "fwd.nc"
    run_leeway(
        _request(paths, object_type=7, lat=60.0, lon=4.0, duration_hours=24, particles=1000),
        forward,
    )
    lon, lat = _final(forward)
    datum_lon, datum_lat = float(np.nanmean(lon)), float(np.nanmean(lat))
    travelled = GEOD.inv(4.0, 60.0, datum_lon, datum_lat)[2] / 1000
    backward = tmp_path / "bwd.nc"
    run_leeway(
        _request(
            paths,
            object_type=7,
            lat=datum_lat,
            lon=datum_lon,
            start=START + timedelta(hours=24),
            duration_hours=24,
            particles=1000,
            backward=True,
        ),
        backward,
    )
    blon, blat = _final(backward)
    miss = GEOD.inv(4.0, 60.0, float(np.nanmean(blon)), float(np.nanmean(blat)))[2] / 1000
    assert travelled > 5, "the test needs a real drift"
    print(f"backward check: travelled {travelled:.2f} km, missed the start by {miss:.2f} km")
    assert miss <= 0.1 * travelled, (miss, travelled)


def test_uniform_radius_stays_inside_gaussian_spreads_beyond(
    current_only: list[Path], tmp_path: Path
) -> None:
    for mode in ("uniform", "gaussian"):
        out = tmp_path / f"{mode}.nc"
        run_leeway(
            _request(
                current_only, radius_m=1000, radius_mode=mode, duration_hours=1, particles=1000
            ),
            out,
        )
        lon, lat = _initial(out)
        distance = GEOD.inv(
            np.full_like(lon, OPEN_SEA[1]), np.full_like(lat, OPEN_SEA[0]), lon, lat
        )[2]
        if mode == "uniform":
            assert distance.max() <= 1000 * 1.01
        else:
            assert (distance > 1000).mean() > 0.2  # a 1-sigma radius: ~39 % fall outside


def test_cone_and_release_window_seeding(current_only: list[Path], tmp_path: Path) -> None:
    cone = tmp_path / "cone.nc"
    run_leeway(
        _request(
            current_only,
            end_lat=OPEN_SEA[0] + 0.2,
            end_lon=OPEN_SEA[1],
            end_time=START + timedelta(hours=6),
            duration_hours=8,
            particles=500,
        ),
        cone,
    )
    with xr.open_dataset(cone) as ds:
        first_step = np.argmax(np.isfinite(ds["lon"].values), axis=1)
        _lon, lat = _initial(cone)
    assert lat.min() < OPEN_SEA[0] + 0.02 and lat.max() > OPEN_SEA[0] + 0.18
    assert first_step.max() > first_step.min(), "seeded over time along the line"
    window = tmp_path / "window.nc"
    run_leeway(
        _request(current_only, release_window_hours=4, duration_hours=6, particles=200), window
    )
    with xr.open_dataset(window) as ds:
        first_step = np.argmax(np.isfinite(ds["lon"].values), axis=1)
    assert first_step.min() == 0 and first_step.max() >= 6  # half-hourly output over 4 h


def test_forcing_that_ends_early_fails_instead_of_drifting_on_zeros(tmp_path: Path) -> None:
    forcing = write_constant_forcing(
        tmp_path,
        lat=OPEN_SEA[0],
        lon=OPEN_SEA[1],
        start=START,
        hours=6,
        current=(0.5, 0.0),
        wind=(5.0, 0.0),
    )
    with pytest.raises(ForcingGap, match="does not cover"):
        run_leeway(
            _request([forcing.current_path, forcing.wind_path], duration_hours=12, particles=50),
            tmp_path / "gap.nc",
        )


def test_every_leeway_category_resolves_by_key_and_id() -> None:
    categories = leeway_categories()
    assert len(categories) == 85
    assert [c.id for c in categories] == list(range(1, 86))
    for category in categories:
        assert resolve_object_type(category.key) == category
        assert resolve_object_type(category.id) == category
    assert resolve_object_type("sldmb").id == 67
    with pytest.raises(InvalidMission, match="LIFE-RAFT"):
        resolve_object_type("LIFE-RAFT")
    with pytest.raises(InvalidMission):
        resolve_object_type(86)
