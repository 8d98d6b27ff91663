"""Scenarios and seeding shapes, checked against the positions OpenDrift itself seeds.

Each test builds the real Leeway model from a mission request (`simulation_request`,
the same path the simulate stage takes) and reads back what OpenDrift scheduled:
`elements_scheduled` and `elements_scheduled_time`, before any drift.
"""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr
from pyproj import Geod
from shapely import Polygon, contains_xy

from driftline.contracts.events import ForcingReadyV1
from driftline.contracts.missions import MissionCreate
from driftline.forcing.sample import write_constant_forcing
from driftline.postprocess.products import build_products
from driftline.simulation.leeway import build_model, run_leeway
from driftline.simulation.request import simulation_request
from tests.fakes import FakeLand
from workers.postprocess import scenario_labels

GEOD = Geod(ellps="WGS84")
START = datetime(2024, 3, 1, 6, tzinfo=UTC)
SEA = (57.0, 2.0)  # central North Sea, far from any coast

#: A reported area with an island-shaped hole in it (lon, lat).
AREA = [[1.9, 56.95], [2.1, 56.95], [2.1, 57.05], [1.9, 57.05], [1.9, 56.95]]
HOLE = [[1.97, 56.98], [2.03, 56.98], [2.03, 57.02], [1.97, 57.02], [1.97, 56.98]]
#: A voyage: departure, a turn, arrival (the object was lost somewhere on it).
TRACK = [
    {"lat": 56.9, "lon": 1.8, "time": "2024-03-01T06:00:00Z"},
    {"lat": 57.0, "lon": 2.0, "time": "2024-03-01T08:00:00Z"},
    {"lat": 57.1, "lon": 2.0, "time": "2024-03-01T10:00:00Z"},
]


@pytest.fixture(scope="module")
def forcing(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    sample = write_constant_forcing(
        tmp_path_factory.mktemp("forcing"),
        lat=SEA[0],
        lon=SEA[1],
        start=START.replace(tzinfo=None),
        hours=30,
        current=(0.2, 0.1),
        wind=(6.0, 2.0),
        half_extent_deg=2.5,
    )
    return [sample.current_path, sample.wind_path]


def _ready(scenarios: list[dict[str, Any]], **changes: Any) -> ForcingReadyV1:
    body = {"name": "scenarios", "duration_hours": 6, "particles": 1000, "scenarios": scenarios}
    body.update(changes)
    request = MissionCreate.model_validate(body)
    return ForcingReadyV1(
        mission_id=uuid.uuid4(),
        tenant="t",
        request=request,
        object_type_id=1,
        seed=11,
        forcing=[],
    )


def _scheduled(model: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[datetime]]:
    elements = model.elements_scheduled
    times = [t.replace(tzinfo=UTC) for t in np.atleast_1d(model.elements_scheduled_time)]
    return (
        np.asarray(elements.lon, float),
        np.asarray(elements.lat, float),
        np.asarray(elements.origin_marker, int),
        times,
    )


def test_polygon_seeding_puts_every_particle_inside_and_none_in_the_hole(
    forcing: list[Path],
) -> None:
    area = {"geometry": {"type": "Polygon", "coordinates": [AREA, HOLE]}, "time": START}
    event = _ready([{"name": "area", "weight": 1, "object_type": "PIW-1", "area": area}])
    model = build_model(simulation_request(event, forcing))
    lon, lat, marker, times = _scheduled(model)
    assert lon.size == 1000
    shape = Polygon(AREA, [HOLE])
    assert contains_xy(shape, lon, lat).all(), "every particle inside the polygon"
    assert not contains_xy(Polygon(HOLE), lon, lat).any(), "none in the hole"
    assert set(times) == {START}
    assert (marker == 0).all()
    # Spread over the whole area, not bunched: each quarter of it holds particles.
    for lo, la in ((1.95, 56.97), (2.05, 56.97), (1.95, 57.03), (2.05, 57.03)):
        assert (np.hypot(lon - lo, lat - la) < 0.03).sum() > 50


def _track_position(moment: datetime) -> tuple[float, float]:
    """Where the voyage was at `moment` (constant speed along each great-circle leg)."""
    points = [(p["lon"], p["lat"], datetime.fromisoformat(str(p["time"]))) for p in TRACK]
    for (lon0, lat0, t0), (lon1, lat1, t1) in itertools.pairwise(points):
        if t0 <= moment <= t1:
            fraction = (moment - t0) / (t1 - t0)
            azimuth, _, distance = GEOD.inv(lon0, lat0, lon1, lat1)
            lon, lat, _ = GEOD.fwd(lon0, lat0, azimuth, distance * fraction)
            return lon, lat
    raise AssertionError(f"{moment} is outside the track's times")


def test_track_seeding_puts_every_particle_on_the_track_between_its_times(
    forcing: list[Path],
) -> None:
    event = _ready([{"name": "voyage", "weight": 1, "object_type": 7, "track": TRACK}])
    model = build_model(simulation_request(event, forcing))
    lon, lat, _, times = _scheduled(model)
    assert lon.size == 1000
    departure, arrival = START, START + timedelta(hours=4)
    assert all(departure <= t <= arrival for t in times), "released between departure and arrival"
    for x, y, moment in zip(lon, lat, times, strict=True):
        expected = _track_position(moment)
        miss = GEOD.inv(x, y, *expected)[2]
        assert miss < 1.0, f"{miss:.1f} m off the track at {moment}"
    # Released evenly over the voyage: each hour holds a quarter of the particles.
    hours = np.array([(t - departure).total_seconds() // 3600 for t in times])
    assert [int((hours == h).sum()) for h in range(4)] == [250, 250, 250, 250]


def test_two_scenarios_share_the_particles_by_weight_each_with_its_object(
    forcing: list[Path], tmp_path: Path
) -> None:
    lkp = {"lat": SEA[0], "lon": SEA[1], "time": START, "radius_m": 500}
    event = _ready(
        [
            {
                "name": "PIW at LKP",
                "weight": 0.6,
                "object_type": "PIW-1",
                "last_known_position": lkp,
            },
            {"name": "raft on track", "weight": 0.4, "object_type": 7, "track": TRACK},
        ]
    )
    request = simulation_request(event, forcing)
    model: Any = build_model(request)
    _, _, marker, _ = _scheduled(model)
    assert [int((marker == k).sum()) for k in (0, 1)] == [600, 400]
    kinds = np.asarray(model.elements_scheduled.object_type)
    assert set(kinds[marker == 0]) == {1} and set(kinds[marker == 1]) == {7}
    run_leeway(request, tmp_path / "particles.nc")
    with xr.open_dataset(tmp_path / "particles.nc") as ds:
        stored = ds["origin_marker"].values
    first = np.nanmax(np.where(np.isfinite(stored), stored, -1), axis=1)
    assert [int((first == k).sum()) for k in (0, 1)] == [600, 400], "markers in the file"

    # The products of that run: the union's density sums to 1 at every output time and
    # each scenario's part of it to its weight.
    products = build_products(
        tmp_path / "particles.nc",
        tmp_path / "out",
        land=FakeLand(coast_lon=10),
        scenarios=scenario_labels(event.request),
    )
    with xr.open_dataset(tmp_path / "out" / "density.nc") as density:
        union = density["probability"].sum(dim=("lat", "lon")).values
        parts = density["scenario_probability"].sum(dim=("lat", "lon")).values
    assert len(union) == 13  # 6 h, output every 30 min
    assert union[0] < 0.7, "at the start the voyage has released almost nothing yet"
    full = slice(int(np.argmax(union > 0.999)), None)
    np.testing.assert_allclose(union[full], 1.0, rtol=1e-5)
    np.testing.assert_allclose(parts[0][full], 0.6, rtol=0.01)
    np.testing.assert_allclose(parts[1][full], 0.4, rtol=0.01)
    assert [s.share for s in products.summary.scenarios] == [0.6, 0.4]
    assert products.summary.particles_total == 1000


def test_single_scenario_body_seeds_as_before(forcing: list[Path]) -> None:
    """The original body: one OpenDrift call, same positions as seeding it by hand."""
    from opendrift.models.leeway import Leeway
    from opendrift.readers import reader_netCDF_CF_generic

    body = {
        "name": "old body",
        "object_type": "PIW-1",
        "last_known_position": {"lat": SEA[0], "lon": SEA[1], "time": START, "radius_m": 800},
        "duration_hours": 6,
        "particles": 200,
    }
    request = MissionCreate.model_validate(body)
    event = ForcingReadyV1(
        mission_id=uuid.uuid4(), tenant="t", request=request, object_type_id=1, seed=5, forcing=[]
    )
    ours: Any = build_model(simulation_request(event, forcing))
    theirs = Leeway(loglevel=50)
    theirs.add_reader([reader_netCDF_CF_generic.Reader(str(p)) for p in forcing])
    np.random.seed(5)
    theirs.seed_elements(
        lon=SEA[1],
        lat=SEA[0],
        radius=800,
        number=200,
        time=START.replace(tzinfo=None),
        object_type=1,
        radius_type="gaussian",
    )
    np.testing.assert_array_equal(ours.elements_scheduled.lon, theirs.elements_scheduled.lon)
    np.testing.assert_array_equal(ours.elements_scheduled.lat, theirs.elements_scheduled.lat)


def test_a_shard_with_an_empty_slice_of_a_scenario_keeps_the_other_markers(
    forcing: list[Path],
) -> None:
    """A 10-particle scenario split over 12 shards leaves two shards without it: they seed
    the other scenario alone, still under its own `origin_marker`."""
    from driftline.simulation.shards import plan_shards, shard_request

    lkp = {"lat": SEA[0], "lon": SEA[1], "time": START, "radius_m": 500}
    event = _ready(
        [
            {"name": "PIW", "weight": 0.99, "object_type": "PIW-1", "last_known_position": lkp},
            {"name": "raft", "weight": 0.01, "object_type": 7, "track": TRACK},
        ]
    )
    shards = plan_shards(
        event.mission_id,
        scenario_particles=event.request.scenario_particles(),
        seed=event.seed,
        shard_size=84,
        partitions=12,
    )
    assert len(shards) == 12
    last = shard_request(simulation_request(event, forcing), shards[-1])
    assert [s.particles for s in last.seed_scenarios()] == [82, 0]
    lon, _, marker, _ = _scheduled(build_model(last))
    # One seeding call: OpenDrift keeps its constant marker as a scalar.
    assert lon.size == 82 and set(np.atleast_1d(marker).tolist()) == {0}
    first = shard_request(simulation_request(event, forcing), shards[0])
    _, _, marker, _ = _scheduled(build_model(first))
    assert [int((marker == k).sum()) for k in (0, 1)] == [83, 1]
