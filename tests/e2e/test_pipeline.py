"""End to end on the real Kafka, PostgreSQL and MinIO: API → five stages → public topics."""

from __future__ import annotations

import asyncio
import functools
import json
import uuid
from typing import Any

from prometheus_client import REGISTRY

from driftline.contracts.envelope import Envelope, header_map
from driftline.contracts.events import ForcingReadyV1
from driftline.contracts.missions import MissionStatus
from driftline.errors import TransientError
from driftline.runtime.dead_letters import DeadLetterFilter, read_dead_letters
from driftline.runtime.stage import Stage, StageOutcome
from driftline.settings import Settings
from driftline.storage.factory import open_artifact_store
from tests.pipeline import (
    HAPPY_PATH,
    eventually,
    mission_body,
    outbox_count,
    produce_raw,
    published_statuses,
    read_topic,
    records_for,
    run_cli,
    running_pipeline,
)
from workers import STAGE_REGISTRY

DLQ_HEADERS = {
    "dlq_original_topic",
    "dlq_original_partition",
    "dlq_original_offset",
    "dlq_consumer_group",
    "dlq_stage",
    "dlq_error_type",
    "dlq_error_message",
    "dlq_attempts",
    "dlq_first_failure_time",
    "dlq_last_failure_time",
}


def _flaky(stage: Stage[Any], failures: dict[str, int]) -> Stage[Any]:
    """`stage`, but raising TransientError for the missions in `failures`, that many times."""

    @functools.wraps(stage.run)  # same signature, so the same dependencies are injected
    async def run(event: Envelope[Any], **dependencies: Any) -> StageOutcome:
        mission = str(event.data.mission_id)
        if failures.get(mission, 0) > 0:
            failures[mission] -= 1
            raise TransientError(f"injected failure for {mission}")
        return await stage.run(event, **dependencies)

    return Stage(name=stage.name, consumes=stage.consumes, run=run)


async def test_mission_completes_and_is_published(
    pipeline_settings: Settings, simulation_pool: Any
) -> None:
    async with running_pipeline(pipeline_settings, simulation_pool=simulation_pool) as p:
        mission_id = await p.submit(mission_body())
        final = await p.wait_final(mission_id)
        assert final["status"] == "completed", final
        completed = await read_topic(
            p.settings,
            p.topic("missions.completed"),
            until=lambda recs: bool(records_for(recs, mission_id)),
        )
        record = records_for(completed, mission_id)[0]
        headers = header_map(record.headers)
        assert headers["ce_type"] == "driftline.mission.completed.v1"
        assert record.key == mission_id.encode()
        data = json.loads(record.value)
        assert data["tenant"] == p.tenant
        assert data["summary"]["particles_total"] == 500
        assert set(data["summary"]["area_km2"]) >= {"50", "90"}
        names = {a["name"] for a in data["artifacts"]}
        assert {"raw/particles.nc", "products/map.png", "products/summary.json"} <= names

        async with p.client() as client:
            results = (await client.get(f"/v1/missions/{mission_id}/results")).json()
            assert {a["name"] for a in results["artifacts"]} == names
            png = await client.get(f"/v1/missions/{mission_id}/artifacts/products/map.png")
            assert png.content.startswith(b"\x89PNG")
            artifacts = f"/v1/missions/{mission_id}/artifacts"
            areas = (await client.get(f"{artifacts}/products/containment.geojson")).json()
        planning = {(f["properties"]["time"], f["properties"]["level"]) for f in areas["features"]}
        # 12 h mission: regions at +6 h and at the end (+12 h), 50/90/95 % each.
        assert planning == {
            (t, level)
            for t in ("2024-01-01T12:00:00Z", "2024-01-01T18:00:00Z")
            for level in (50, 90, 95)
        }
        async with open_artifact_store(p.settings) as storage:
            stored = {o.key for o in await storage.list(f"{p.tenant}/{mission_id}/")}
        assert {f"{p.tenant}/{mission_id}/{n}" for n in names} <= stored

        assert await published_statuses(p, mission_id) == HAPPY_PATH


async def test_redelivered_event_changes_nothing(
    pipeline_settings: Settings, simulation_pool: Any
) -> None:
    async with running_pipeline(pipeline_settings, simulation_pool=simulation_pool) as p:
        mission_id = await p.submit(mission_body())
        assert (await p.wait_final(mission_id))["status"] == "completed"
        forcing_ready = await read_topic(
            p.settings,
            p.topic("forcing.ready"),
            until=lambda recs: bool(records_for(recs, mission_id)),
        )
        original = records_for(forcing_ready, mission_id)[0]
        runner = p.runners["simulate"]
        before = runner.processed  # read first: the copy may be handled before produce returns
        await produce_raw(
            p.settings,
            original.topic,
            original.value,
            key=original.key,
            headers=list(original.headers),
        )
        await eventually(lambda: _consumed_past(p, original.topic, 2))
        async with p.database.unit_of_work() as uow:
            claims = await uow.processed.count(runner.group)
        assert await outbox_count(p, mission_id, "simulations.completed") == 1
        assert claims == 1
        assert runner.processed == before + 1  # handled, as a no-op
        assert (await p.mission(mission_id))["status"] == "completed"


async def _consumed_past(p: Any, topic_name: str, count: int) -> bool:
    runner = p.runners["simulate"]
    return bool(runner.processed >= count)


async def test_transient_failure_retried_without_holding_up_others(
    pipeline_settings: Settings, simulation_pool: Any
) -> None:
    settings = pipeline_settings.model_copy(
        update={"topic_partitions": 1, "retry_backoff_s": 2.0, "max_attempts": 5}
    )
    failures: dict[str, int] = {}
    flaky = _flaky(STAGE_REGISTRY["fetch_forcing"], failures)
    async with running_pipeline(
        settings, simulation_pool=simulation_pool, stages={"fetch_forcing": flaky}
    ) as p:
        slow_body = mission_body(name="slow")
        response = await p.post_mission(slow_body)
        slow = response.json()["id"]
        failures[slow] = 2
        fast = await p.submit(mission_body(name="fast"))
        fast_final = await p.wait_final(fast)
        slow_mission = await p.mission(slow)
        assert fast_final["status"] == "completed"
        assert slow_mission["status"] not in ("completed", "failed"), "slow one should still retry"
        slow_final = await p.wait_final(slow)
        assert slow_final["status"] == "completed"
        assert failures[slow] == 0
        assert await published_statuses(p, slow) == HAPPY_PATH


async def test_permanent_failures_fail_at_once_with_reason(
    pipeline_settings: Settings, simulation_pool: Any
) -> None:
    retries_before = _retries("validate")
    async with running_pipeline(pipeline_settings, simulation_pool=simulation_pool) as p:
        on_land = mission_body(
            last_known_position={"lat": 61.0, "lon": 9.0, "time": "2024-01-01T06:00:00Z"}
        )
        land_id = await p.submit(on_land)
        too_long = await p.submit(mission_body(duration_hours=240))
        land = await p.wait_final(land_id)
        assert land["status"] == "failed"
        assert land["failure"]["reason"] == "position_on_land"
        assert "on land" in land["failure"]["detail"]
        gap = await p.wait_final(too_long)
        assert gap["status"] == "failed"
        assert gap["failure"]["reason"] == "forcing_gap"
        assert _retries("validate") == retries_before, "permanent errors are not retried"
        failed = await read_topic(
            p.settings,
            p.topic("missions.failed"),
            until=lambda recs: (
                bool(records_for(recs, land_id)) and bool(records_for(recs, too_long))
            ),
        )
        data = json.loads(records_for(failed, land_id)[0].value)
        assert data["stage"] == "validate" and data["reason"] == "position_on_land"


async def test_dead_letter_then_replay_completes(
    pipeline_settings: Settings, simulation_pool: Any
) -> None:
    settings = pipeline_settings.model_copy(update={"max_attempts": 2, "retry_backoff_s": 0.2})
    failures: dict[str, int] = {}
    flaky = _flaky(STAGE_REGISTRY["fetch_forcing"], failures)
    async with running_pipeline(
        settings, simulation_pool=simulation_pool, stages={"fetch_forcing": flaky}
    ) as p:
        response = await p.post_mission(mission_body())
        mission_id = response.json()["id"]
        failures[mission_id] = 10**6  # fails every attempt

        async def dead_lettered() -> bool:
            return bool(
                await read_dead_letters(p.settings, DeadLetterFilter(mission_id=mission_id))
            )

        await eventually(dead_lettered, 60)

        async def is_held() -> bool:
            return (await p.mission(mission_id))["status"] == "held"

        await eventually(is_held, timeout_s=1.0)  # visible within a second of the DLQ write
        [letter] = await read_dead_letters(p.settings, DeadLetterFilter(mission_id=mission_id))
        assert set(letter.attrs) >= DLQ_HEADERS
        assert letter.attrs["dlq_attempts"] == "2"
        assert letter.attrs["dlq_stage"] == "fetch_forcing"
        assert letter.attrs["dlq_error_type"] == "TransientError"
        assert letter.attrs["dlq_consumer_group"] == p.runners["fetch_forcing"].group
        assert letter.topic == p.topic("missions.validated.dlq")
        assert letter.key == mission_id.encode()
        held = await p.mission(mission_id)
        assert held["status"] == "held" and held["stage"] == "fetch_forcing"
        assert "TransientError: injected failure" in held["detail"]
        assert "an operator was alerted" in held["detail"]

        listed = await run_cli(p.settings, "dlq", "list", "--stage", "fetch_forcing")
        assert letter.ref in listed and "1 dead letter(s)" in listed

        failures[mission_id] = 0  # the outage is over: the operator replays
        first = await run_cli(p.settings, "dlq", "replay", "--stage", "fetch_forcing")
        assert f"replayed {letter.ref}" in first and letter.event_id in first
        assert "1 replayed, 0 already replayed" in first
        assert (await p.wait_final(mission_id))["status"] == "completed"
        statuses = await published_statuses(p, mission_id)
        assert statuses == [*HAPPY_PATH[:2], "held", *HAPPY_PATH[2:]]
        second = await run_cli(p.settings, "dlq", "replay", "--stage", "fetch_forcing")
        assert "0 replayed, 1 already replayed" in second


async def test_garbage_record_goes_to_dlq_and_consumer_continues(
    pipeline_settings: Settings, simulation_pool: Any
) -> None:
    async with running_pipeline(pipeline_settings, simulation_pool=simulation_pool) as p:
        garbage_key = str(uuid.uuid4()).encode()
        await produce_raw(
            p.settings, p.topic("missions.requested"), b"\x00not json at all", key=garbage_key
        )
        mission_id = await p.submit(mission_body())
        assert (await p.wait_final(mission_id))["status"] == "completed"

        async def garbage_dead_lettered() -> bool:
            letters = await read_dead_letters(p.settings, DeadLetterFilter(stage="validate"))
            return any(lt.key == garbage_key for lt in letters)

        await eventually(garbage_dead_lettered, 30)
        letters = await read_dead_letters(p.settings, DeadLetterFilter(stage="validate"))
        garbage = next(lt for lt in letters if lt.key == garbage_key)
        assert garbage.attrs["dlq_error_type"] == "UnparseableRecordError"
        assert garbage.attrs["dlq_attempts"] == "1"
        assert garbage.value == b"\x00not json at all"


async def test_cancelled_mission_is_skipped_by_later_stages(
    pipeline_settings: Settings, simulation_pool: Any
) -> None:
    async with running_pipeline(
        pipeline_settings, simulation_pool=simulation_pool, run_stages=("validate",)
    ) as p:
        mission_id = await p.submit(mission_body())

        async def validated() -> bool:
            return (await p.mission(mission_id))["status"] == "validated"

        await eventually(validated)
        async with p.client() as client:
            assert (await client.delete(f"/v1/missions/{mission_id}")).status_code == 202
        p.start_runner(STAGE_REGISTRY["fetch_forcing"])
        await eventually(lambda: _processed(p, "fetch_forcing", 1))
        await asyncio.sleep(0.5)
        mission = await p.mission(mission_id)
        assert mission["status"] == MissionStatus.CANCELLED.value
        assert await outbox_count(p, mission_id, ForcingReadyV1.topic) == 0


def _retries(stage: str) -> float:
    return REGISTRY.get_sample_value("driftline_stage_retries_total", {"stage": stage}) or 0.0


async def _processed(p: Any, stage: str, count: int) -> bool:
    return bool(p.runners[stage].processed >= count)
