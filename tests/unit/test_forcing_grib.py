"""The `grib` kind: GRIB 2 written by ecCodes itself, read back through cfgrib.

The files are encoded from the sample forcing, so every value read from GRIB can be
compared with the NetCDF it came from.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from driftline.contracts.missions import MissionCreate
from driftline.errors import ForcingGap
from driftline.forcing.catalog import Catalog
from driftline.forcing.cf import vector_dataset
from driftline.forcing.grib_writer import write_grib
from driftline.forcing.model import BBox, SourceConfig
from driftline.forcing.plan import plan_forcing
from driftline.forcing.sample import SampleForcing, write_sample_forcing
from driftline.forcing.sources import GribSource
from driftline.forcing.sources.netcdf import NetcdfSource
from driftline.forcing.subset import subset_to_file

START = datetime(2024, 1, 1)
#: 24-bit packing of values within ~±15 m/s: about 2e-6 m/s; anything near this is exact.
PACKING_TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> SampleForcing:
    return write_sample_forcing(
        tmp_path_factory.mktemp("grib"), lat=60, lon=4, start=START, hours=12, resolution_deg=0.1
    )


@pytest.fixture(scope="module")
def gribs(sample: SampleForcing) -> dict[str, Path]:
    root = sample.wind_path.parent
    with xr.open_dataset(sample.wind_path) as wind, xr.open_dataset(sample.current_path) as cur:
        return {
            "wind": write_grib(wind.load(), "wind", root / "wind.grib2"),
            "current": write_grib(cur.load(), "current", root / "current.grib2"),
        }


def _source(path: Path, variable: str, **extra: object) -> GribSource:
    config = {"name": f"grib-{variable}", "kind": "grib", "path": str(path)}
    return GribSource(SourceConfig.model_validate(config | {"variables": [variable]} | extra))


def test_ecCodes_wrote_one_message_per_component_and_step(gribs: dict[str, Path]) -> None:
    import eccodes

    with gribs["wind"].open("rb") as handle:
        count = eccodes.codes_count_in_file(handle)
        first = eccodes.codes_grib_new_from_file(handle)
        try:
            keys = {k: eccodes.codes_get(first, k) for k in ("shortName", "edition", "level")}
        finally:
            eccodes.codes_release(first)
    assert count == 2 * 13  # 10u and 10v, hourly steps 0..12
    assert keys == {"shortName": "10u", "edition": 2, "level": 10}


@pytest.mark.parametrize("variable", ["wind", "current"])
def test_grib_reads_back_what_the_netcdf_holds(
    sample: SampleForcing, gribs: dict[str, Path], variable: str
) -> None:
    netcdf_path = sample.wind_path if variable == "wind" else sample.current_path
    netcdf = NetcdfSource(
        SourceConfig(name="nc", kind="netcdf", path=str(netcdf_path), variables=[variable])
    )
    grib = _source(gribs[variable], variable)
    ours, theirs = grib.coverage(), netcdf.coverage()
    assert (ours.start, ours.end) == (theirs.start, theirs.end)
    assert ours.area.lon_min == pytest.approx(theirs.area.lon_min, abs=1e-6)
    assert ours.area.lat_max == pytest.approx(theirs.area.lat_max, abs=1e-6)
    assert ours.resolution_deg == pytest.approx(0.1, abs=1e-6)

    box = BBox(3.03, 59.53, 4.97, 60.47)  # edges between grid points: no rounding ties
    start, end = datetime(2024, 1, 1, 3, tzinfo=UTC), datetime(2024, 1, 1, 9, tzinfo=UTC)
    from_grib = grib.subset(variable, box, start, end)
    from_netcdf = netcdf.subset(variable, box, start, end)
    assert from_grib["lat"].values[0] < from_grib["lat"].values[-1], "south to north"
    assert from_grib.sizes == from_netcdf.sizes
    np.testing.assert_allclose(from_grib["lat"], from_netcdf["lat"], atol=1e-6)
    np.testing.assert_allclose(from_grib["lon"], from_netcdf["lon"], atol=1e-6)
    np.testing.assert_array_equal(from_grib["time"], from_netcdf["time"])
    for name in from_netcdf.data_vars:
        np.testing.assert_allclose(from_grib[name], from_netcdf[name], atol=PACKING_TOLERANCE)
        assert from_grib[name].attrs["standard_name"] == name


def test_grib_longitudes_across_the_date_line_convention_are_wrapped(tmp_path: Path) -> None:
    lats = np.arange(50.0, 52.01, 0.5)
    lons = np.arange(-2.0, 2.01, 0.5)  # written as 358..2 east, as GFS files run 0..360
    times = np.array(
        [np.datetime64("2024-01-01T00:00", "ns") + np.timedelta64(h, "h") for h in (0, 6)]
    )
    east = np.broadcast_to(lons, (2, len(lats), len(lons))).astype("float32")
    north = np.zeros_like(east)
    ds = vector_dataset(
        ("x_wind", "y_wind"), ("x_wind", "y_wind"), (east, north), (times, lats, lons)
    )
    source = _source(write_grib(ds, "wind", tmp_path / "gfs.grib2"), "wind")
    cov = source.coverage()
    assert (cov.area.lon_min, cov.area.lon_max) == pytest.approx((-2.0, 2.0))
    start = datetime(2024, 1, 1, tzinfo=UTC)
    cut = source.subset("wind", BBox(-1.0, 50.0, 1.0, 52.0), start, start + timedelta(hours=6))
    np.testing.assert_allclose(cut["lon"], [-1.0, -0.5, 0.0, 0.5, 1.0])
    # The east component was written equal to the longitude: values travel with their place.
    np.testing.assert_allclose(cut["x_wind"].values[0, 0], cut["lon"], atol=PACKING_TOLERANCE)


def test_grib_without_the_pair_is_a_gap_and_variable_map_names_cfgrib_variables(
    gribs: dict[str, Path],
) -> None:
    box = BBox(3.0, 59.5, 5.0, 60.5)
    start = datetime(2024, 1, 1, 3, tzinfo=UTC)
    with pytest.raises(ForcingGap, match="has no current pair"):
        _source(gribs["wind"], "current").subset("current", box, start, start)
    mapped = _source(gribs["wind"], "wind", variable_map={"wind": ["u10", "v10"]})
    assert float(np.abs(mapped.subset("wind", box, start, start)["x_wind"]).max()) > 1.0


def test_grib_wind_source_plans_and_cuts_like_any_other(
    sample: SampleForcing, gribs: dict[str, Path], tmp_path: Path
) -> None:
    path = tmp_path / "catalog.json"
    sources = [
        {"name": "nc-current", "kind": "netcdf", "path": str(sample.current_path)}
        | {"variables": ["current"]},
        {"name": "gfs", "kind": "grib", "path": str(gribs["wind"]), "variables": ["wind"]},
    ]
    path.write_text(json.dumps({"sources": sources}))
    mission = MissionCreate.model_validate(
        {
            "name": "grib",
            "object_type": "PIW-1",
            "duration_hours": 4,
            "last_known_position": {"lat": 60.0, "lon": 4.0, "time": "2024-01-01T04:00:00Z"},
        }
    )
    plan = plan_forcing(Catalog.from_file(path), mission)
    chosen = plan.sources["wind"]
    assert chosen.name == "gfs" and plan.cache_key(chosen).startswith("gfs-wind-")
    out = subset_to_file(chosen, plan.area, plan.start, plan.end, tmp_path / "wind.nc")
    with xr.open_dataset(out) as ds:
        assert set(ds.data_vars) == {"x_wind", "y_wind"}
        assert set(ds.coords) == {"time", "lat", "lon"}
        assert ds["x_wind"].attrs == {"standard_name": "x_wind", "units": "m s-1"}
    assert not list(gribs["wind"].parent.glob("*.idx")), "no index files written beside data"
