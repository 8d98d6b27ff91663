"""Missions on each forcing kind, through the whole pipeline on the real services.

* a current served over OPeNDAP drifts exactly as the same file read locally;
* a GRIB 10 m wind written by ecCodes drives a mission;
* a fine current that ends halfway hands over to a coarser one, and `summary.forcing`
  says which share of particle-steps each served.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr

from driftline.contracts.events import ForcingReadyV1, ForcingUsed
from driftline.contracts.missions import MissionCreate
from driftline.forcing.catalog import Catalog
from driftline.forcing.grib_writer import write_grib
from driftline.forcing.plan import plan_forcing
from driftline.forcing.sample import SampleForcing, write_sample_forcing
from driftline.forcing.sources.netcdf import clear_coverage_cache
from driftline.forcing.subset import subset_to_file
from driftline.settings import Settings
from driftline.simulation.leeway import resolve_object_type, seed_from_mission_id
from driftline.simulation.request import simulation_request
from driftline.storage.factory import open_artifact_store
from tests.opendap_server import RunningServer, opendap_server
from tests.pipeline import Pipeline, mission_body, running_pipeline

START = datetime(2024, 1, 1)


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> SampleForcing:
    return write_sample_forcing(
        tmp_path_factory.mktemp("sources"), lat=60, lon=4, start=START, hours=48
    )


def _catalog(directory: Path, *sources: dict[str, object]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "catalog.json"
    path.write_text(json.dumps({"sources": list(sources)}))
    return path


def _netcdf(name: str, path: str | Path, variable: str) -> dict[str, object]:
    return {"name": name, "kind": "netcdf", "path": str(path), "variables": [variable]}


async def _completed(p: Pipeline, body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Submit, wait, and return the mission id and its stored result."""
    mission_id = await p.submit(body)
    final = await p.wait_final(mission_id, timeout_s=180)
    assert final["status"] == "completed", final
    async with p.database.unit_of_work() as uow:
        mission = await uow.missions.get(uuid.UUID(mission_id))
    assert mission is not None and mission.result is not None
    return mission_id, mission.result


@pytest.fixture
def dap(sample: SampleForcing, tmp_path: Path) -> Iterator[RunningServer]:
    clear_coverage_cache()
    with opendap_server([sample.current_path], tmp_path / "dap.log") as server:
        yield server
    clear_coverage_cache()


async def test_opendap_mission_equals_the_same_mission_on_the_local_file(
    settings: Settings,
    simulation_pool: Any,
    sample: SampleForcing,
    dap: RunningServer,
    tmp_path: Path,
) -> None:
    url = dap.url(sample.current_path)
    catalog = _catalog(
        tmp_path / "dap",
        _netcdf("dap-current", url, "current"),
        _netcdf("local-wind", sample.wind_path, "wind"),
    )
    body = mission_body(particles=200)
    pipeline_settings = settings.model_copy(update={"forcing_catalog": catalog})
    async with running_pipeline(pipeline_settings, simulation_pool=simulation_pool) as p:
        mission_id, result = await _completed(p, body)
        async with open_artifact_store(p.settings) as storage:
            await storage.download(f"{p.tenant}/{mission_id}/raw/particles.nc", tmp_path / "dap.nc")
    used = result["summary"]["forcing"]
    assert [(f["variable"], f["source"]) for f in used] == [
        ("current", "dap-current"),
        ("wind", "local-wind"),
    ]
    sliced = [r for r in dap.requests() if r["path"].endswith(".dods") and "%5b" in r["query"]]
    assert sliced, "the current was read over OPeNDAP, by hyperslab"

    # The same mission, its forcing cut from the local file, same seed, same pool.
    local_catalog = Catalog.from_file(
        _catalog(
            tmp_path / "local",
            _netcdf("local-current", sample.current_path, "current"),
            _netcdf("local-wind", sample.wind_path, "wind"),
        )
    )
    request = MissionCreate.model_validate(body)
    plan = plan_forcing(local_catalog, request)
    paths = [
        subset_to_file(c, plan.area, plan.start, plan.end, tmp_path / f"local-{i}.nc")
        for i, c in enumerate(plan.ordered())
    ]
    event = ForcingReadyV1(
        mission_id=uuid.UUID(mission_id),
        tenant="jrcc-test",
        request=request,
        object_type_id=resolve_object_type(request.object_type).id,
        seed=seed_from_mission_id(mission_id),
        forcing=[ForcingUsed(variable=c.variable, source=c.name, key="-") for c in plan.ordered()],
    )
    await simulation_pool.run(simulation_request(event, paths), tmp_path / "local.nc")
    with (
        xr.open_dataset(tmp_path / "dap.nc") as ours,
        xr.open_dataset(tmp_path / "local.nc") as theirs,
    ):
        np.testing.assert_array_equal(ours["lon"].values, theirs["lon"].values)
        np.testing.assert_array_equal(ours["lat"].values, theirs["lat"].values)
        assert ours["lon"].shape == (200, 25)


async def test_grib_wind_mission_runs(
    settings: Settings, simulation_pool: Any, sample: SampleForcing, tmp_path: Path
) -> None:
    with xr.open_dataset(sample.wind_path) as sample_wind:
        grib = write_grib(sample_wind.load(), "wind", tmp_path / "gfs" / "wind.grib2")
    catalog = _catalog(
        tmp_path / "grib",
        _netcdf("sample-current", sample.current_path, "current"),
        {"name": "gfs-wind", "kind": "grib", "path": str(grib), "variables": ["wind"]},
    )
    pipeline_settings = settings.model_copy(update={"forcing_catalog": catalog})
    async with running_pipeline(pipeline_settings, simulation_pool=simulation_pool) as p:
        _, result = await _completed(p, mission_body(particles=200))
    summary = result["summary"]
    wind = [f for f in summary["forcing"] if f["variable"] == "wind"]
    assert [(f["source"], f["share"]) for f in wind] == [("gfs-wind", 1.0)]
    assert wind[0]["particle_steps"] > 0
    assert summary["particles_total"] == 200
    assert summary["area_km2"]["90"] > 0


async def test_fine_current_ending_halfway_completes_on_the_coarse_fallback(
    settings: Settings, simulation_pool: Any, sample: SampleForcing, tmp_path: Path
) -> None:
    # Fine current: 06:00 to 12:00 only, half of the 12 h mission; coarse: all of it.
    fine = write_sample_forcing(
        tmp_path / "fine", lat=60, lon=4, start=START, hours=12, resolution_deg=0.05
    )
    coarse = write_sample_forcing(
        tmp_path / "coarse", lat=60, lon=4, start=START, hours=48, resolution_deg=0.2
    )
    catalog = _catalog(
        tmp_path / "composite",
        _netcdf("coarse-current", coarse.current_path, "current"),
        _netcdf("fine-current", fine.current_path, "current"),
        _netcdf("sample-wind", sample.wind_path, "wind"),
    )
    pipeline_settings = settings.model_copy(update={"forcing_catalog": catalog})
    async with running_pipeline(pipeline_settings, simulation_pool=simulation_pool) as p:
        _, result = await _completed(p, mission_body(particles=200))
    forcing = result["summary"]["forcing"]
    current = {f["source"]: f for f in forcing if f["variable"] == "current"}
    assert list(current) == ["fine-current", "coarse-current"], "finest first"
    assert current["fine-current"]["share"] == pytest.approx(0.5, abs=0.05)
    assert current["coarse-current"]["share"] == pytest.approx(0.5, abs=0.05)
    assert sum(f["share"] for f in current.values()) == pytest.approx(1.0)
    assert [(f["source"], f["share"]) for f in forcing if f["variable"] == "wind"] == [
        ("sample-wind", 1.0)
    ]
