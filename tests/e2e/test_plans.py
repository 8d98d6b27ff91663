"""Search planning end to end: a real mission completes, then plans and searches go
through the API, the outbox, Kafka and the `plan` stage on the real services."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

from driftline.auth import create_api_key
from driftline.contracts.envelope import header_map
from driftline.plans import particles_key
from driftline.settings import Settings
from tests.helpers import s3_client
from tests.pipeline import (
    Pipeline,
    eventually,
    mission_body,
    outbox_count,
    produce_raw,
    read_topic,
    records_for,
    running_pipeline,
)

UNITS = [
    {"name": "RESCUE 1", "type": "vessel", "speed_kn": 12, "time_on_scene_h": 3},
    {"name": "HELO 2", "type": "helicopter", "speed_kn": 90, "time_on_scene_h": 1.5},
]
PLAN = {"commence_time": "2024-01-01T12:00:00Z", "units": UNITS}


async def _wait_plan(p: Pipeline, mission_id: str, plan_id: str, timeout_s: float = 180) -> Any:
    deadline = time.monotonic() + timeout_s
    async with p.client() as client:
        while True:
            plan = (await client.get(f"/v1/missions/{mission_id}/plans/{plan_id}")).json()
            if plan["status"] in ("completed", "failed"):
                return plan
            assert time.monotonic() < deadline, f"plan still {plan['status']}"
            await asyncio.sleep(0.3)


async def test_plan_search_record_and_replan(
    pipeline_settings: Settings, simulation_pool: Any
) -> None:
    async with running_pipeline(pipeline_settings, simulation_pool=simulation_pool) as p:
        mission_id = await p.submit(mission_body())
        async with p.client() as client:
            early = await client.post(f"/v1/missions/{mission_id}/plans", json=PLAN)
        assert early.status_code == 409, early.text  # the mission is still running
        assert early.json()["type"].endswith(":mission-not-completed")
        assert (await p.wait_final(mission_id, timeout_s=240))["status"] == "completed"

        async with p.client() as client:
            outside = await client.post(
                f"/v1/missions/{mission_id}/plans",
                json={**PLAN, "commence_time": "2024-01-03T00:00:00Z"},
            )
            assert outside.status_code == 422
            assert outside.headers["content-type"] == "application/problem+json"
            assert outside.json()["errors"][0]["field"] == "commence_time"
            accepted = await client.post(f"/v1/missions/{mission_id}/plans", json=PLAN)
        assert accepted.status_code == 202, accepted.text
        plan_id = accepted.json()["id"]
        assert accepted.headers["Location"].endswith(f"/plans/{plan_id}")
        plan = await _wait_plan(p, mission_id, plan_id)
        assert plan["status"] == "completed", plan
        summary = plan["summary"]
        assert {a["unit"] for a in summary["areas"]} == {"RESCUE 1", "HELO 2"}
        assert abs(summary["pos"] - sum(a["pos"] for a in summary["areas"])) < 1e-3
        assert {a["name"] for a in plan["artifacts"]} == {
            "plan.geojson",
            "plan.kml",
            "plan.gpx",
            "plan.png",
            "briefing.txt",
        }
        async with p.client() as client:
            gpx = await client.get(f"/v1/missions/{mission_id}/plans/{plan_id}/artifacts/plan.gpx")
        assert gpx.status_code == 200 and b"<rte>" in gpx.content

        # The public event, once.
        completed = await read_topic(
            p.settings,
            p.topic("plans.completed"),
            until=lambda recs: bool(records_for(recs, mission_id)),
        )
        (record,) = records_for(completed, mission_id)
        assert header_map(record.headers)["ce_type"] == "driftline.plan.completed.v1"
        assert json.loads(record.value)["plan_id"] == plan_id

        await _redelivered_request_changes_nothing(p, mission_id, plan_id)
        await _search_then_replan(p, mission_id, plan_id, summary)
        await _other_tenant_sees_nothing(p, mission_id)
        await _plan_without_particles_fails_alone(p, mission_id)


async def _redelivered_request_changes_nothing(p: Pipeline, mission_id: str, plan_id: str) -> None:
    """A plan request delivered again (as after a crash before the offset commit)."""
    requested = await read_topic(
        p.settings,
        p.topic("plans.requested"),
        until=lambda recs: bool(records_for(recs, mission_id)),
    )
    original = records_for(requested, mission_id)[0]
    runner = p.runners["plan"]
    before = runner.processed
    await produce_raw(
        p.settings, original.topic, original.value, key=original.key, headers=list(original.headers)
    )

    async def handled() -> bool:
        return runner.processed > before

    await eventually(handled, timeout_s=120)
    async with p.database.unit_of_work() as uow:
        plans = await uow.plans.for_mission(uuid.UUID(mission_id))
        claims = await uow.processed.count(runner.group)
    assert [str(x.id) for x in plans] == [plan_id]
    assert claims == 1
    assert await outbox_count(p, mission_id, "plans.completed") == 1


async def _search_then_replan(
    p: Pipeline, mission_id: str, plan_id: str, first: dict[str, Any]
) -> None:
    async with p.client() as client:
        recorded = await client.post(
            f"/v1/missions/{mission_id}/searches",
            json={"searched_at": "2024-01-01T12:00:00Z", "plan_id": plan_id, "unit": "RESCUE 1"},
        )
        assert recorded.status_code == 202, recorded.text
        update_id = recorded.json()["map_update_plan_id"]
        update = await _wait_plan(p, mission_id, update_id)
        assert update["status"] == "completed", update
        assert update["summary"]["searches_applied"] == 1
        assert update["summary"]["cumulative_pos_before"] > 0
        listing = (await client.get(f"/v1/missions/{mission_id}/searches")).json()
        assert len(listing["items"]) == 1
        assert listing["cumulative_pos"] == update["summary"]["cumulative_pos_before"]
        again = await client.post(f"/v1/missions/{mission_id}/plans", json=PLAN)
        second = await _wait_plan(p, mission_id, again.json()["id"])
    rescue = next(a for a in first["areas"] if a["unit"] == "RESCUE 1")
    assert second["summary"]["searches_applied"] == 1
    # Searched at the commence time, as planned: the cumulative POS is that area's POS.
    assert abs(second["summary"]["cumulative_pos_before"] - rescue["pos"]) < 0.01
    assert second["summary"]["cumulative_pos_after"] > second["summary"]["cumulative_pos_before"]


async def _other_tenant_sees_nothing(p: Pipeline, mission_id: str) -> None:
    async with p.database.unit_of_work() as uow:
        other = await create_api_key(uow, "someone-else")
    async with p.client() as client:
        headers = {"Authorization": f"Bearer {other}"}
        for path in ("plans", "searches"):
            answer = await client.get(f"/v1/missions/{mission_id}/{path}", headers=headers)
            assert answer.status_code == 404
        posted = await client.post(f"/v1/missions/{mission_id}/plans", json=PLAN, headers=headers)
        assert posted.status_code == 404


async def _plan_without_particles_fails_alone(p: Pipeline, mission_id: str) -> None:
    """A permanent error fails the plan with its reason; the mission stays completed."""
    async with p.database.unit_of_work() as uow:
        mission = await uow.missions.get(uuid.UUID(mission_id))
        assert mission is not None
        key = particles_key(mission)
    async with s3_client(p.settings) as s3:
        await s3.delete_object(Bucket=p.settings.s3_bucket, Key=key)
    async with p.client() as client:
        accepted = await client.post(f"/v1/missions/{mission_id}/plans", json=PLAN)
    plan = await _wait_plan(p, mission_id, accepted.json()["id"])
    assert plan["status"] == "failed"
    assert plan["failure"].startswith("particles_missing")
    assert (await p.mission(mission_id))["status"] == "completed"
