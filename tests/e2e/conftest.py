"""E2E fixtures: sample forcing and its catalog, one warm simulation pool per session."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import pytest

from driftline.forcing.sample import write_sample_catalog
from driftline.settings import Settings
from driftline.simulation.pool import SimulationPool

SAMPLE_START = datetime(2024, 1, 1)
SAMPLE_HOURS = 48


def write_catalog(directory: Path) -> Path:
    return write_sample_catalog(directory, start=SAMPLE_START, hours=SAMPLE_HOURS)


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
