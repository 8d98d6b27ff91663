"""Retention on the real services: housekeeping prunes only what is past its bound,
topics get their retention by kind, the bucket gets its lifecycle rules."""

from __future__ import annotations

import uuid
from datetime import timedelta

import asyncpg
import pytest

from driftline.contracts.missions import utcnow
from driftline.db.unit_of_work import Database
from driftline.db.urls import asyncpg_dsn
from driftline.runtime.housekeeping import Housekeeper
from driftline.runtime.kafka import admin_client, create_topics, delete_topics
from driftline.runtime.topic_config import apply_retention, check_topics
from driftline.settings import Settings
from driftline.storage.lifecycle import configure_bucket
from tests.helpers import s3_client
from tests.pipeline import eventually


async def _execute(settings: Settings, sql: str, *args: object) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(settings.database_url))
    try:
        await conn.execute(sql, *args)
    finally:
        await conn.close()


async def test_housekeeping_prunes_only_rows_past_retention(settings: Settings) -> None:
    settings = settings.model_copy(update={"retention_outbox_s": 60, "housekeeping_batch": 2})
    old, new = utcnow() - timedelta(hours=2), utcnow()
    for i, (published, created) in enumerate(
        [(old, old), (old, old), (old, old), (new, new), (None, old)]
    ):
        await _execute(
            settings,
            "INSERT INTO outbox (topic, key, event_id, headers, payload, created_at, "
            "published_at) VALUES ('t', $1, $2, '{}', '{}', $3, $4)",
            f"k{i}",
            uuid.uuid4(),
            created,
            published,
        )
    for at in (utcnow() - timedelta(days=40), utcnow()):
        await _execute(
            settings,
            "INSERT INTO processed_events (consumer_group, event_id, processed_at) "
            "VALUES ('g', $1, $2)",
            uuid.uuid4(),
            at,
        )
    database = Database(settings)
    try:
        pruned = await Housekeeper(settings, database).pass_once()
        async with database.unit_of_work() as uow:
            outbox_left = await uow.retention.size("outbox")
            backlog = await uow.outbox.backlog()
            processed_left = await uow.retention.size("processed_events")
    finally:
        await database.close()
    assert pruned["outbox"] == 3, "three published long ago, in batches of two"
    assert outbox_left == 2 and backlog == 1, "the recent one and the unpublished one stay"
    assert pruned["processed_events"] == 1 and processed_left == 1


async def test_topics_get_their_retention_by_kind(settings: Settings) -> None:
    await create_topics(settings)
    rows = {r.topic: r for r in await check_topics(settings)}
    assert all(r.ok for r in rows.values()), [r for r in rows.values() if not r.ok]
    prefix = settings.topic_prefix
    assert rows[f"{prefix}missions.validated"].actual_ms == 3 * 86400 * 1000
    assert rows[f"{prefix}missions.completed"].actual_ms == 14 * 86400 * 1000
    assert rows[f"{prefix}missions.validated.dlq"].actual_ms == 30 * 86400 * 1000
    shorter = settings.model_copy(update={"retention_topic_public_s": 7 * 86400})
    changed = await apply_retention(shorter)
    public = ("missions.completed", "missions.failed", "missions.status", "plans.completed")
    assert sorted(changed) == sorted(f"{prefix}{name}" for name in public)

    async def applied() -> bool:  # the brokers take a moment to report altered configs
        return all(r.ok for r in await check_topics(shorter))

    await eventually(applied, 30)


async def test_delete_topics_takes_only_its_own_prefix(settings: Settings) -> None:
    """What each test's teardown (and the soak's clean-up) runs: a neighbour's topics stay."""
    neighbour = settings.model_copy(update={"topic_prefix": f"x{settings.topic_prefix}"})
    mine, theirs = await create_topics(settings), await create_topics(neighbour)
    assert mine and theirs
    try:
        assert await delete_topics(settings) == sorted(mine)

        async def gone() -> bool:
            async with admin_client(settings) as admin:
                left = set(await admin.list_topics())
            return not left & set(mine) and set(theirs) <= left

        await eventually(gone, 30)
        with pytest.raises(ValueError):
            await delete_topics(settings.model_copy(update={"topic_prefix": ""}))
    finally:
        await delete_topics(neighbour)


async def test_bucket_lifecycle_rules_are_set(settings: Settings) -> None:
    configured = settings.model_copy(update={"retention_artifacts_days": 400})
    rules = await configure_bucket(configured)
    assert {r["ID"]: r["Expiration"]["Days"] for r in rules} == {
        "driftline-forcing-subsets": 30,
        "driftline-mission-artifacts": 400,
    }
    async with s3_client(settings) as client:
        found = await client.get_bucket_lifecycle_configuration(Bucket=settings.s3_bucket)
    assert len(found["Rules"]) == 2


async def test_results_of_a_mission_past_artifact_retention_answer_410(
    settings: Settings,
) -> None:
    from driftline.contracts.missions import MissionStatus
    from tests.helpers import mission_body
    from tests.integration.api_harness import assert_problem, running_api

    async with running_api(settings, retention_artifacts_days=30) as api:
        mission_id = (await api.post(mission_body())).json()["id"]
        summary = {
            "particles_total": 1,
            "particles_active": 1,
            "particles_stranded": 0,
            "fraction_afloat": 1.0,
            "centroid": {"lat": 60.0, "lon": 4.0},
            "area_km2": {"50": 1.0},
        }
        async with api.database.unit_of_work() as uow:
            mission = await uow.missions.get(uuid.UUID(mission_id))
            assert mission is not None
            mission.status = MissionStatus.COMPLETED.value
            mission.result = {"summary": summary, "artifacts": []}
            mission.completed_at = utcnow() - timedelta(days=29)
        fresh = await api.client.get(f"/v1/missions/{mission_id}/results", headers=api.auth())
        assert fresh.status_code == 200, fresh.text
        async with api.database.unit_of_work() as uow:
            mission = await uow.missions.get(uuid.UUID(mission_id))
            assert mission is not None
            mission.completed_at = utcnow() - timedelta(days=31)
        gone = await api.client.get(f"/v1/missions/{mission_id}/results", headers=api.auth())
        assert "removed 30 days after" in assert_problem(gone, 410)["detail"]
        artifact = await api.client.get(
            f"/v1/missions/{mission_id}/artifacts/products/map.png", headers=api.auth()
        )
        assert_problem(artifact, 410)
