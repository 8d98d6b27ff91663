"""The post-process stage called directly: a local store, no Kafka, no PostgreSQL."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from driftline.contracts.envelope import Envelope, stage_source
from driftline.contracts.events import ForcingUsed, ResultsReadyV1, SimulationCompletedV1
from driftline.contracts.missions import MissionCreate, MissionStatus, Position
from driftline.postprocess.products import PRODUCTS
from driftline.settings import Settings
from driftline.storage.base import sha256_file
from driftline.storage.local import LocalArtifactStore
from tests.fakes import FakeLand, FakeShards, write_particles
from workers.postprocess import STAGE, artifact_href, postprocess

BASE_URL = "http://driftline.test"


def _event(tenant: str, mission_id: uuid.UUID) -> Envelope[SimulationCompletedV1]:
    request = MissionCreate(
        name="Man overboard",
        object_type="PIW-1",
        last_known_position=Position(lat=60.0, lon=4.0, time=datetime(2024, 1, 1, tzinfo=UTC)),
        duration_hours=2,
        particles=500,
    )
    data = SimulationCompletedV1(
        mission_id=mission_id,
        tenant=tenant,
        request=request,
        particles_key=f"{tenant}/{mission_id}/raw/particles.nc",
        particles_total=500,
        particles_active=490,
        particles_stranded=10,
        forcing=[ForcingUsed(variable="current", source="synthetic", key="f/c.nc", synthetic=True)],
    )
    return Envelope(data=data, source=stage_source("simulate"))


async def test_stage_stores_every_product_and_emits_results_ready(tmp_path: Path) -> None:
    settings = Settings(
        work_dir=tmp_path / "work", artifact_dir=tmp_path / "artifacts", public_base_url=BASE_URL
    )
    mission_id = uuid.uuid4()
    event = _event("acme", mission_id)
    particles = tmp_path / "particles.nc"
    write_particles(particles, n=500, stranded=10)
    async with LocalArtifactStore(settings.artifact_dir) as storage:
        await storage.put_file(event.data.particles_key, particles, "application/x-netcdf")
        outcome = await postprocess(
            event, settings=settings, storage=storage, land=FakeLand(), shards=FakeShards()
        )

    assert STAGE.dependencies == ("settings", "storage", "land", "shards")
    assert outcome.status is MissionStatus.RESULTS_READY
    (ready,) = outcome.emits
    assert isinstance(ready, ResultsReadyV1)
    assert outcome.result is not None
    names = [a.name for a in ready.artifacts]
    assert names == ["raw/particles.nc", *(p.name for p in PRODUCTS)]
    assert ready.artifacts == outcome.result.public_artifacts()
    for stored in outcome.result.artifacts:
        path = settings.artifact_dir / stored.key
        assert stored.key == f"acme/{mission_id}/{stored.name}"
        assert stored.href == artifact_href(BASE_URL, str(mission_id), stored.name)
        assert (stored.bytes, stored.sha256) == (path.stat().st_size, sha256_file(path))
    media = {a.name: a.media_type for a in ready.artifacts}
    assert media["products/map.png"] == "image/png"
    assert media["raw/particles.nc"] == "application/x-netcdf"

    summary = ready.summary
    assert summary == outcome.result.summary
    assert (summary.particles_total, summary.particles_active) == (500, 490)
    assert summary.particles_stranded == 10
    assert summary.fraction_afloat == pytest.approx(0.98)
    assert summary.synthetic_forcing and summary.forcing == event.data.forcing
    assert summary.centroid.time == datetime(2024, 1, 1, 2, tzinfo=UTC)
    assert set(summary.area_km2) == {"50", "90", "95"}
    written = json.loads(
        (settings.artifact_dir / f"acme/{mission_id}/products/summary.json").read_text()
    )
    assert written["particles_active"] == 490
    assert not list((tmp_path / "work").iterdir()), "the work folder is cleaned up"
