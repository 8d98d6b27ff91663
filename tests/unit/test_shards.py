"""Huge missions in shards: the split, the keys, each shard's request, the merge, and the
three stages' part in it, called directly (a local store, fakes for the rest)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import netCDF4
import numpy as np
import pytest

from driftline.contracts.envelope import Envelope, follow, stage_source
from driftline.contracts.events import (
    ForcingReadyV1,
    ForcingUsed,
    MissionRequestedV1,
    MissionValidatedV1,
    ResultsReadyV1,
    Shard,
    SimulationCompletedV1,
)
from driftline.contracts.missions import MissionCreate, MissionStatus
from driftline.errors import InvalidMission, RequestRejected
from driftline.missions import TimeWindow, screen_submission
from driftline.runtime.apply import shard_row
from driftline.settings import Settings, particle_limit
from driftline.simulation.leeway import SeedScenario, SimulationRequest
from driftline.simulation.shards import (
    merge_particle_files,
    partition_of,
    plan_shards,
    shard_count,
    shard_request,
    split_evenly,
)
from driftline.storage.keys import particles_key
from driftline.storage.local import LocalArtifactStore
from tests.fakes import (
    FakeLand,
    FakeShards,
    FakeSimulator,
    InMemorySubsets,
    still_water_catalog,
    write_particles,
)
from tests.helpers import mission_body
from workers.fetch_forcing import fetch_forcing
from workers.postprocess import merged_forcing, postprocess
from workers.simulate import simulate
from workers.validate import validate

TENANT = "jrcc"


# -- the split ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("particles", "size", "count"),
    [(50_000, 50_000, 1), (50_001, 50_000, 2), (200_000, 50_000, 4), (200_000, 0, 1)],
)
def test_shard_count_depends_on_particles_and_shard_size_only(
    particles: int, size: int, count: int
) -> None:
    assert shard_count(particles, size) == count


def test_every_scenario_is_split_over_the_shards_without_losing_a_particle() -> None:
    mission = uuid.uuid4()
    shards = plan_shards(
        mission, scenario_particles=[70_001, 30_000], seed=7, shard_size=25_000, partitions=12
    )
    assert [s.index for s in shards] == [0, 1, 2, 3, 4]
    assert {s.count for s in shards} == {5}
    assert sum(s.particles for s in shards) == 100_001
    assert max(s.particles for s in shards) - min(s.particles for s in shards) <= 2
    assert len({s.seed for s in shards}) == 5, "each shard draws its own random numbers"
    again = plan_shards(
        mission, scenario_particles=[70_001, 30_000], seed=7, shard_size=25_000, partitions=12
    )
    assert again == shards, "the split is a function of the mission"


@pytest.mark.parametrize("partitions", [2, 3, 4, 12])
def test_shard_keys_land_on_consecutive_partitions(partitions: int) -> None:
    mission = uuid.uuid4()
    shards = plan_shards(
        mission, scenario_particles=[200_000], seed=1, shard_size=50_000, partitions=partitions
    )
    first = partition_of(str(mission), partitions)
    landed = [partition_of(s.key, partitions) for s in shards]
    assert landed == [(first + i) % partitions for i in range(4)]
    assert all(s.key.startswith(f"{mission}/{s.index}/") for s in shards)
    assert all(len(s.key) <= 100 for s in shards), "fits the outbox's key column"


def test_round_robin_assignment_gives_two_workers_two_shards_each() -> None:
    """aiokafka's default assignor deals one topic's partitions out in turn, so four
    shards on consecutive partitions of a 12-partition topic reach two workers 2 + 2."""
    for _ in range(50):
        shards = plan_shards(
            uuid.uuid4(), scenario_particles=[200_000], seed=1, shard_size=50_000, partitions=12
        )
        workers = [partition_of(s.key, 12) % 2 for s in shards]
        assert sorted(workers) == [0, 0, 1, 1]


def _request(scenarios: tuple[SeedScenario, ...] = ()) -> SimulationRequest:
    return SimulationRequest(
        mission_id="m",
        object_type=1,
        lat=60.0,
        lon=4.0,
        start=datetime(2024, 1, 1),
        duration_hours=6,
        particles=10_001,
        seed=5,
        forcing_paths=[],
        scenarios=scenarios,
    )


def test_a_shard_request_seeds_its_slice_of_each_scenario_with_its_own_seed() -> None:
    point = SeedScenario("point", 1, 10_000, (4.0,), (60.0,), (datetime(2024, 1, 1),))
    tiny = SeedScenario("point", 2, 1, (4.1,), (60.1,), (datetime(2024, 1, 1),))
    shard = Shard(index=2, count=3, particles=3_333, seed=99, key="k")
    request = shard_request(_request((point, tiny)), shard)
    assert request.seed == 99
    assert request.particles == 3_333
    # Scenario order (OpenDrift's origin_marker) is kept, an empty slice included.
    assert [s.particles for s in request.seed_scenarios()] == [3_333, 0]
    assert [s.object_type for s in request.seed_scenarios()] == [1, 2]
    whole = [
        shard_request(_request((point, tiny)), replace_index(shard, i)).seed_scenarios()
        for i in range(3)
    ]
    assert [sum(s[k].particles for s in whole) for k in range(2)] == [10_000, 1]


def replace_index(shard: Shard, index: int) -> Shard:
    return shard.model_copy(update={"index": index})


def test_a_single_scenario_mission_splits_like_one_scenario() -> None:
    shard = Shard(index=0, count=2, particles=5_001, seed=3, key="k")
    (only,) = shard_request(_request(), shard).seed_scenarios()
    assert only.particles == split_evenly(10_001, 2)[0] == 5_001


# -- the merge ----------------------------------------------------------------------------


def _shard_file(path: Path, n: int, seed: int, *, steps: int = 5, meanings: str = "") -> Path:
    write_particles(path, n=n, seed=seed, stranded=2)
    if steps < 5 or meanings:
        with netCDF4.Dataset(path, "a") as ds:
            if meanings:
                ds.variables["status"].setncattr("flag_meanings", meanings)
    if steps < 5:  # a shard whose particles all stopped early: a shorter time axis
        import xarray as xr

        with xr.open_dataset(path) as ds:
            short = ds.isel(time=slice(0, steps)).load()
        short.to_netcdf(path)
    return path


def test_merge_concatenates_the_shards_in_order(tmp_path: Path) -> None:
    paths = [_shard_file(tmp_path / f"s{i}.nc", n, seed=i) for i, n in enumerate([30, 20, 25])]
    out = tmp_path / "merged.nc"
    assert merge_particle_files(paths, out) == 75
    with netCDF4.Dataset(out) as merged:
        assert merged.getncattr("driftline_shards") == 3
        assert list(merged.variables["trajectory"][:]) == list(range(1, 76))
        lon = merged.variables["lon"][:].filled(np.nan)
        expected = []
        for path in paths:
            with netCDF4.Dataset(path) as shard:
                expected.append(shard.variables["lon"][:].filled(np.nan))
        np.testing.assert_array_equal(lon, np.vstack(expected))
        assert merged.variables["status"].getncattr("flag_meanings") == "active stranded"


def test_merge_aligns_a_shorter_shard_and_maps_status_by_name(tmp_path: Path) -> None:
    full = _shard_file(tmp_path / "full.nc", 10, seed=1)
    short = _shard_file(tmp_path / "short.nc", 6, seed=2, steps=3, meanings="stranded active")
    out = tmp_path / "merged.nc"
    merge_particle_files([full, short], out)
    with netCDF4.Dataset(out) as merged:
        assert len(merged.dimensions["time"]) == 5
        lon = merged.variables["lon"][:].filled(np.nan)
        status = merged.variables["status"][:]
        assert np.isfinite(lon[10:, :3]).all() and np.isnan(lon[10:, 3:]).all()
        assert status.mask[10:, 3:].all(), "steps a shard never reached are fill"
    with netCDF4.Dataset(short) as shard:
        own = shard.variables["status"][:].filled(-1)[:, :3]
    # In the short shard 0 meant "stranded" and 1 "active": merged, active is 0 again.
    np.testing.assert_array_equal(status[10:, :3], np.where(own == 0, 1, 0))


# -- the stages ---------------------------------------------------------------------------


def _mission(**changes: Any) -> MissionCreate:
    return MissionCreate.model_validate(mission_body(**changes))


def _validated(particles: int) -> Envelope[MissionValidatedV1]:
    data = MissionValidatedV1(
        mission_id=uuid.uuid4(),
        tenant=TENANT,
        request=_mission(particles=particles),
        object_type_id=26,
        object_type_key="LIFE-RAFT-DB-10",
        seed=7,
    )
    return Envelope(data=data, source=stage_source("validate"))


async def test_fetch_forcing_emits_one_record_per_shard_with_ids_of_their_own() -> None:
    settings = Settings(shard_particles=1_000, shard_topic_partitions=4)
    event = _validated(2_500)
    outcome = await fetch_forcing(
        event, settings=settings, catalog=still_water_catalog(), subsets=InMemorySubsets()
    )
    assert outcome.status is MissionStatus.FORCING_READY
    assert "3 shards" in (outcome.detail or "")
    shards = [e.shard for e in outcome.emits if isinstance(e, ForcingReadyV1)]
    assert [s.particles for s in shards if s] == [834, 833, 833]
    envelopes = [follow(e, cause=event, stage="fetch_forcing") for e in outcome.emits]
    assert len({e.id for e in envelopes}) == 3, "three records, three event ids"
    assert len({e.key for e in envelopes}) == 3
    assert {e.subject for e in envelopes} == {str(event.data.mission_id)}


async def test_fetch_forcing_leaves_a_mission_within_the_shard_size_whole() -> None:
    event = _validated(1_000)
    outcome = await fetch_forcing(
        event,
        settings=Settings(shard_particles=1_000),
        catalog=still_water_catalog(),
        subsets=InMemorySubsets(),
    )
    [ready] = outcome.emits
    assert isinstance(ready, ForcingReadyV1) and ready.shard is None
    envelope = follow(ready, cause=event, stage="fetch_forcing")
    assert envelope.id == uuid.uuid5(event.id, ready.ce_type), "ids as before sharding"
    assert envelope.key == str(event.data.mission_id).encode()


def _ready(shard: Shard | None, mission_id: uuid.UUID) -> Envelope[ForcingReadyV1]:
    forcing = [ForcingUsed(variable="current", source="s", key="forcing/c.nc", synthetic=True)]
    data = ForcingReadyV1(
        mission_id=mission_id,
        tenant=TENANT,
        request=_mission(particles=3_000),
        object_type_id=26,
        seed=7,
        forcing=forcing,
        shard=shard,
    )
    return Envelope(data=data, source=stage_source("fetch_forcing"))


async def test_simulate_runs_its_shard_and_records_it(tmp_path: Path) -> None:
    settings = Settings(work_dir=tmp_path / "work", artifact_dir=tmp_path / "artifacts")
    mission = uuid.uuid4()
    shard = Shard(index=1, count=3, particles=1_000, seed=42, key="k")
    simulator = FakeSimulator()
    async with LocalArtifactStore(settings.artifact_dir) as storage:
        await storage.put_bytes("forcing/c.nc", b"x", "application/x-netcdf")
        outcome = await simulate(
            _ready(shard, mission), settings=settings, storage=storage, pool=simulator
        )
    [request] = simulator.requests
    assert (request.particles, request.seed) == (1_000, 42)
    assert outcome.status is MissionStatus.FORCING_READY, "simulated once every shard is"
    assert "shard 2 of 3 simulated" in (outcome.detail or "")
    [completed] = outcome.emits
    assert isinstance(completed, SimulationCompletedV1)
    assert completed.shard == shard
    assert completed.particles_key == f"{TENANT}/{mission}/raw/shards/0001-of-0003.nc"
    assert outcome.shard is completed
    row = shard_row(outcome.shard)
    assert row is not None and (row["shard_index"], row["shard_count"]) == (1, 3)


def _completion(mission: uuid.UUID, shard: Shard, steps: int) -> Envelope[SimulationCompletedV1]:
    data = SimulationCompletedV1(
        mission_id=mission,
        tenant=TENANT,
        request=_mission(particles=3 * shard.particles),
        particles_key=f"{TENANT}/{mission}/raw/shards/{shard.index:04d}-of-0003.nc",
        particles_total=shard.particles,
        particles_active=shard.particles - 2,
        particles_stranded=2,
        forcing=[
            ForcingUsed(variable="current", source="fine", key="f", particle_steps=steps),
            ForcingUsed(variable="current", source="coarse", key="c", particle_steps=100 - steps),
        ],
        shard=shard,
    )
    return Envelope(data=data, source=stage_source("simulate"))


async def test_postprocess_waits_for_every_shard_then_merges_once(tmp_path: Path) -> None:
    settings = Settings(work_dir=tmp_path / "work", artifact_dir=tmp_path / "artifacts")
    mission = uuid.uuid4()
    shards = [Shard(index=i, count=3, particles=200, seed=i, key=f"k{i}") for i in range(3)]
    events = [_completion(mission, s, steps) for s, steps in zip(shards, [100, 50, 0], strict=True)]
    ledger = FakeShards()
    async with LocalArtifactStore(settings.artifact_dir) as storage:

        async def run(event: Envelope[SimulationCompletedV1]) -> Any:
            return await postprocess(
                event, settings=settings, storage=storage, land=FakeLand(), shards=ledger
            )

        for i, event in enumerate(events):
            path = tmp_path / f"shard{i}.nc"
            write_particles(path, n=200, seed=i, stranded=2)
            await storage.put_file(event.data.particles_key, path, "application/x-netcdf")
        ledger.recorded = [events[0].data, events[2].data]
        waiting = await run(events[0])
        assert waiting.status is None and not waiting.emits, "shard 2 is still simulating"
        ledger.recorded.append(events[1].data)
        merged = await run(events[2])  # any completion that finds all three merges
        ledger.recorded.clear()  # what the merge's transaction does
        late = await run(events[1])
        merged_file = await storage.get_bytes(particles_key(TENANT, str(mission)))

    assert late.status is None and not late.emits, "merged already: nothing twice"
    assert merged.status is MissionStatus.RESULTS_READY and merged.shards_merged
    [ready] = merged.emits
    assert isinstance(ready, ResultsReadyV1)
    summary = ready.summary
    assert (summary.particles_total, summary.particles_stranded) == (600, 6)
    assert [round(f.share or 0, 3) for f in summary.forcing] == [0.5, 0.5]
    raw = next(a for a in ready.artifacts if a.name == "raw/particles.nc")
    assert raw.bytes == len(merged_file)
    merged_path = tmp_path / "merged.nc"
    merged_path.write_bytes(merged_file)
    with netCDF4.Dataset(merged_path) as ds:
        assert len(ds.dimensions["trajectory"]) == 600


def test_merged_forcing_sums_particle_steps_per_source() -> None:
    def layer(source: str, steps: int | None) -> ForcingUsed:
        return ForcingUsed(variable="current", source=source, key=source, particle_steps=steps)

    merged = merged_forcing([[layer("a", 30), layer("b", 10)], [layer("a", 10), layer("b", 50)]])
    assert [(f.particle_steps, f.share) for f in merged] == [(40, 0.4), (60, 0.6)]
    untouched = [[layer("a", None)], [layer("a", None)]]
    assert merged_forcing(untouched) == untouched[0]


# -- the particle limit, per tenant ------------------------------------------------------


def test_a_tenant_may_have_a_particle_limit_of_its_own() -> None:
    settings = Settings(max_particles=50_000, tenant_max_particles={"big": 200_000})
    assert particle_limit(settings, "big") == 200_000
    assert particle_limit(settings, "small") == 50_000


async def _accept(url: str) -> None:
    return None


async def test_the_api_refuses_more_particles_than_the_tenant_may_ask_for() -> None:
    body = _mission(particles=60_000)
    window = TimeWindow(earliest=datetime(2000, 1, 1, tzinfo=UTC), latest=datetime.now(UTC))
    await screen_submission(body, window=window, check_callback=_accept, max_particles=200_000)
    with pytest.raises(RequestRejected) as info:
        await screen_submission(body, window=window, check_callback=_accept, max_particles=50_000)
    [(field, message, reason)] = info.value.problems
    assert (field, reason) == ("particles", "too_many_particles")
    assert "60,000 particles requested" in message and "at most 50,000" in message


async def test_validate_applies_the_tenant_limit() -> None:
    settings = Settings(max_particles=1_000, tenant_max_particles={TENANT: 5_000})
    data = MissionRequestedV1(
        mission_id=uuid.uuid4(),
        tenant=TENANT,
        requested_at=datetime.now(UTC),
        request=_mission(particles=4_000),
    )
    event = Envelope(data=data, source=stage_source("api"))
    outcome = await validate(
        event, settings=settings, catalog=still_water_catalog(), land=FakeLand()
    )
    assert outcome.status is MissionStatus.VALIDATED
    other = Envelope(data=data.model_copy(update={"tenant": "other"}), source="api")
    with pytest.raises(InvalidMission) as info:
        await validate(other, settings=settings, catalog=still_water_catalog(), land=FakeLand())
    assert info.value.reason == "too_many_particles"
