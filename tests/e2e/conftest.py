"""E2E fixtures: sample forcing and its catalog, one warm simulation pool per session."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import pytest

from driftline.forcing.sample import write_sample_forcing
from driftline.settings import Settings
from driftline.simulation.pool import SimulationPool

SAMPLE_START = datetime(2024, 1, 1)
SAMPLE_HOURS = 48


def write_catalog(directory: Path) -> Path:
    sample = write_sample_forcing(
        directory, lat=60.0, lon=4.0, start=SAMPLE_START, hours=SAMPLE_HOURS
    )
    catalog = directory / "catalog.json"
    catalog.write_text(
        json.dumps(
            {
                "sources": [
                    {
                        "name": "sample-current",
                        "kind": "netcdf",
                        "path": sample.current_path.name,
                        "variables": ["current"],
                        "priority": 10,
                    },
                    {
                        "name": "sample-wind",
                        "kind": "netcdf",
                        "path": sample.wind_path.name,
                        "variables": ["wind"],
                        "priority": 10,
                    },
                ]
            }
        )
    )
    return catalog


@pytest.fixture(scope="session")
def catalog_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_catalog(tmp_path_factory.mktemp("forcing"))


@pytest.fixture(scope="session")
async def simulation_pool() -> AsyncIterator[SimulationPool]:
    pool = SimulationPool(1)
    await pool.start()
    yield pool
    await pool.close()


@pytest.fixture
def pipeline_settings(settings: Settings, catalog_path: Path) -> Settings:
    return settings.model_copy(update={"forcing_catalog": catalog_path})
