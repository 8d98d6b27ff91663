"""Forcing subsets cut from several threads at once (as `asyncio.to_thread` does) are right.

netCDF4/HDF5 are not thread-safe; the forcing code holds `NETCDF_LOCK` around every
read and write. Without it this test tends to crash the interpreter or corrupt files.
"""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import pytest
import xarray as xr

from driftline.contracts.missions import MissionCreate
from driftline.forcing.catalog import Catalog
from driftline.forcing.plan import ForcingPlan, plan_forcing
from driftline.forcing.sample import write_sample_forcing
from driftline.forcing.sources.netcdf import clear_coverage_cache
from driftline.forcing.subset import subset_to_file
from driftline.netcdf_io import NETCDF_LOCK

THREADS = 4
ROUNDS = 5
#: (lat, lon, hour of the day) of the missions cut concurrently: different areas and windows.
MISSIONS = [(60.0, 4.0, 2), (60.3, 3.6, 7), (59.7, 4.4, 13), (60.1, 4.2, 20)]


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    root = tmp_path_factory.mktemp("threads")
    write_sample_forcing(root, lat=60, lon=4, start=datetime(2024, 1, 1), hours=36)
    sources = [
        {"name": "current", "kind": "netcdf", "path": "current.nc", "variables": ["current"]},
        {"name": "wind", "kind": "netcdf", "path": "w*.nc", "variables": ["wind"]},  # a glob
    ]
    path = root / "catalog.json"
    path.write_text(json.dumps({"sources": sources}))
    return Catalog.from_file(path)


def _plan(catalog: Catalog, lat: float, lon: float, hour: int) -> ForcingPlan:
    position = {"lat": lat, "lon": lon, "time": f"2024-01-01T{hour:02d}:00:00Z"}
    request = MissionCreate.model_validate(
        {"name": "t", "object_type": "PIW-1", "duration_hours": 6, "last_known_position": position}
    )
    return plan_forcing(catalog, request)


def _cut(plan: ForcingPlan, variable: str, out: Path) -> xr.Dataset:
    """Cut `plan`'s source of `variable` to `out` and read the file back."""
    subset_to_file(plan.sources[variable], plan.area, plan.start, plan.end, out)
    # Reading back is NetCDF in a thread too: unlocked, it crashes against other writers.
    with NETCDF_LOCK, xr.open_dataset(out) as ds:
        return ds.load()


def test_concurrent_subsets_match_serial_ones(catalog: Catalog, tmp_path: Path) -> None:
    plans = [_plan(catalog, *m) for m in MISSIONS]
    jobs = [(i, variable) for i, plan in enumerate(plans) for variable in plan.sources]
    expected = {
        (i, variable): _cut(plans[i], variable, tmp_path / "serial" / f"{i}-{variable}.nc")
        for i, variable in jobs
    }
    assert all(ds.sizes["time"] > 1 and ds.sizes["lat"] > 1 for ds in expected.values())
    clear_coverage_cache()  # so the threads also read coverage at the same time
    together = threading.Barrier(THREADS)

    def run(job: tuple[int, str], round_: int) -> tuple[tuple[int, str], xr.Dataset]:
        i, variable = job
        together.wait(timeout=30)  # each batch of THREADS jobs starts at once
        plan = _plan(catalog, *MISSIONS[i])  # re-planned: coverage read under contention
        return job, _cut(plan, variable, tmp_path / f"round{round_}" / f"{i}-{variable}.nc")

    assert len(jobs) % THREADS == 0  # else the last batch would wait at the barrier forever
    for round_ in range(ROUNDS):
        with ThreadPoolExecutor(THREADS) as pool:
            results = dict(pool.map(run, jobs, [round_] * len(jobs)))
        assert results.keys() == expected.keys()
        for key, ds in results.items():
            xr.testing.assert_identical(ds, expected[key])
