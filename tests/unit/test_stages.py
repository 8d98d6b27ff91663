"""Every stage called as a plain function with in-memory fakes: no Kafka, no PostgreSQL.

The post-processing stage has its own file (it writes real products).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from driftline.contracts.envelope import Envelope, stage_source
from driftline.contracts.events import (
    ArtifactRef,
    EventData,
    ForcingReadyV1,
    ForcingUsed,
    MissionCompletedV1,
    MissionRequestedV1,
    MissionValidatedV1,
    ResultsReadyV1,
    SimulationCompletedV1,
)
from driftline.contracts.missions import MissionCreate, MissionStatus
from driftline.errors import ConfigurationError, ForcingGap, InvalidMission
from driftline.forcing.catalog import Catalog
from driftline.settings import Settings
from driftline.storage.keys import particles_key
from driftline.storage.local import LocalArtifactStore
from tests.fakes import (
    FakeLand,
    FakeSimulator,
    InMemorySubsets,
    RecordingCallbacks,
    still_water_catalog,
)
from tests.helpers import mission_body, sample_summary
from workers import STAGE_REGISTRY
from workers.fetch_forcing import fetch_forcing
from workers.notify import notify
from workers.simulate import simulate
from workers.validate import validate

TENANT = "jrcc"


def _request(**changes: Any) -> MissionCreate:
    return MissionCreate.model_validate(mission_body(**changes))


def _envelope(data: EventData) -> Envelope[Any]:
    return Envelope(data=data, source=stage_source("test"))


def _requested(**changes: Any) -> Envelope[MissionRequestedV1]:
    data = MissionRequestedV1(
        mission_id=uuid.uuid4(),
        tenant=TENANT,
        requested_at=datetime.now(UTC),
        request=_request(**changes),
    )
    return _envelope(data)


def _validated() -> Envelope[MissionValidatedV1]:
    data = MissionValidatedV1(
        mission_id=uuid.uuid4(),
        tenant=TENANT,
        request=_request(),
        object_type_id=26,
        object_type_key="LIFE-RAFT-DB-10",
        seed=7,
    )
    return _envelope(data)


async def test_validate_emits_validated_with_object_type_and_seed() -> None:
    event = _requested()
    outcome = await validate(
        event, settings=Settings(), catalog=still_water_catalog(), land=FakeLand()
    )
    assert outcome.status is MissionStatus.VALIDATED
    [validated] = outcome.emits
    assert isinstance(validated, MissionValidatedV1)
    assert validated.object_type_key == "LIFE-RAFT-DB-10"
    assert validated.mission_id == event.data.mission_id
    assert "still-water" in (outcome.detail or "")


@pytest.mark.parametrize(
    ("limits", "reason"),
    [
        ({"max_particles": 499}, "too_many_particles"),
        ({"max_duration_hours": 6}, "duration_too_long"),
    ],
)
async def test_validate_refuses_what_the_deployment_does_not_allow(
    limits: dict[str, Any], reason: str
) -> None:
    settings = Settings(**limits)
    with pytest.raises(InvalidMission) as info:
        await validate(
            _requested(), settings=settings, catalog=still_water_catalog(), land=FakeLand()
        )
    assert info.value.reason == reason


async def test_validate_refuses_a_position_on_land_in_words() -> None:
    with pytest.raises(InvalidMission) as info:
        await validate(
            _requested(),
            settings=Settings(),
            catalog=still_water_catalog(),
            land=FakeLand(coast_lon=3.0),
        )
    assert info.value.reason == "position_on_land"
    assert "60.0000N 4.0000E is on land" in info.value.detail


async def test_validate_reports_a_forcing_gap() -> None:
    empty = Catalog([])
    with pytest.raises(ForcingGap):
        await validate(_requested(), settings=Settings(), catalog=empty, land=FakeLand())


async def test_fetch_forcing_ensures_one_subset_per_variable() -> None:
    subsets = InMemorySubsets()
    outcome = await fetch_forcing(
        _validated(), settings=Settings(), catalog=still_water_catalog(), subsets=subsets
    )
    assert outcome.status is MissionStatus.FORCING_READY
    [ready] = outcome.emits
    assert isinstance(ready, ForcingReadyV1)
    assert [f.variable for f in ready.forcing] == ["current", "wind"]
    assert [f.key for f in ready.forcing] == subsets.ensured
    assert all(f.synthetic and f.key.startswith("forcing/") for f in ready.forcing)


async def test_simulate_stores_trajectories_under_the_mission(tmp_path: Path) -> None:
    settings = Settings(work_dir=tmp_path / "work", artifact_dir=tmp_path / "artifacts")
    mission_id = uuid.uuid4()
    forcing = [ForcingUsed(variable="current", source="s", key="forcing/c.nc", synthetic=True)]
    data = ForcingReadyV1(
        mission_id=mission_id,
        tenant=TENANT,
        request=_request(particles=200),
        object_type_id=26,
        seed=7,
        forcing=forcing,
    )
    simulator = FakeSimulator(stranded=5)
    async with LocalArtifactStore(settings.artifact_dir) as storage:
        await storage.put_bytes("forcing/c.nc", b"netcdf", "application/x-netcdf")
        outcome = await simulate(
            _envelope(data), settings=settings, storage=storage, pool=simulator
        )
        key = particles_key(TENANT, str(mission_id))
        assert await storage.exists(key)
    [completed] = outcome.emits
    assert isinstance(completed, SimulationCompletedV1)
    assert completed.particles_key == key
    assert (completed.particles_total, completed.particles_stranded) == (200, 5)
    [request] = simulator.requests
    assert request.seed == 7 and request.particles == 200
    assert list((tmp_path / "work").iterdir()) == [], "temporary files are removed"


def _results_ready(callback_url: str | None) -> Envelope[ResultsReadyV1]:
    summary = sample_summary()
    artifact = ArtifactRef(
        name="products/map.png", media_type="image/png", href="h", bytes=1, sha256="0" * 64
    )
    data = ResultsReadyV1(
        mission_id=uuid.uuid4(),
        tenant=TENANT,
        request=_request(callback_url=callback_url),
        artifacts=[artifact],
        summary=summary,
    )
    return _envelope(data)


async def test_notify_completes_and_calls_back_with_a_stable_webhook_id() -> None:
    callbacks = RecordingCallbacks()
    event = _results_ready("https://rcc.example.org/hook")
    outcome = await notify(event, callbacks=callbacks)
    assert outcome.status is MissionStatus.COMPLETED and outcome.completed
    [completed] = outcome.emits
    assert isinstance(completed, MissionCompletedV1)
    assert completed.artifacts == event.data.artifacts
    [(url, sent, webhook_id)] = callbacks.sent
    assert url == "https://rcc.example.org/hook" and sent == completed
    again = RecordingCallbacks()
    await notify(event, callbacks=again)
    assert again.sent[0][2] == webhook_id, "a redelivered event keeps its webhook id"


async def test_notify_without_callback_sends_nothing() -> None:
    callbacks = RecordingCallbacks()
    await notify(_results_ready(None), callbacks=callbacks)
    assert callbacks.sent == []


def test_each_stage_declares_what_it_needs() -> None:
    assert {name: stage.dependencies for name, stage in STAGE_REGISTRY.items()} == {
        "validate": ("settings", "catalog", "land"),
        "fetch_forcing": ("settings", "catalog", "subsets"),
        "simulate": ("settings", "storage", "pool"),
        "postprocess": ("settings", "storage", "land", "shards"),
        "notify": ("callbacks",),
        "plan": ("settings", "storage"),
    }
    with pytest.raises(ConfigurationError, match="needs callbacks"):
        STAGE_REGISTRY["notify"].bind({"settings": Settings()})
