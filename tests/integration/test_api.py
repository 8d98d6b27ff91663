"""The REST API on a real PostgreSQL: accept, idempotency, tenancy, listing, cancel, health."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from driftline.api.app import create_app
from driftline.auth import create_api_key
from driftline.db.unit_of_work import Database
from driftline.settings import Settings
from tests.helpers import mission_body


class Api:
    def __init__(self, client: httpx.AsyncClient, database: Database, keys: dict[str, str]):
        self.client = client
        self.database = database
        self.keys = keys

    def auth(self, tenant: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[tenant]}"}

    async def post(self, tenant: str, body: dict[str, Any], **headers: str) -> httpx.Response:
        return await self.client.post(
            "/v1/missions", json=body, headers={**self.auth(tenant), **headers}
        )


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[Api]:
    app = create_app(settings)
    database = Database(settings)
    keys = {}
    async with database.unit_of_work() as uow:
        for tenant in ("alpha", "bravo"):
            keys[tenant] = await create_api_key(uow, tenant)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield Api(client, database, keys)
    await database.close()


async def test_accept_stores_mission_and_outbox_row_together(api: Api) -> None:
    response = await api.post("alpha", mission_body())
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "accepted"
    assert response.headers["Location"].endswith(f"/v1/missions/{body['id']}")
    async with api.database.unit_of_work() as uow:
        mission = await uow.missions.get(uuid.UUID(body["id"]))
        assert mission is not None and mission.tenant == "alpha"
        topics = await uow.outbox.topics()
    assert any(t.endswith("missions.requested") for t in topics)
    assert any(t.endswith("missions.status") for t in topics)


async def test_idempotency_key_same_body_same_mission_other_body_422(api: Api) -> None:
    first = await api.post("alpha", mission_body(), **{"Idempotency-Key": "k-1"})
    again = await api.post("alpha", mission_body(), **{"Idempotency-Key": "k-1"})
    assert first.status_code == again.status_code == 202
    assert first.json()["id"] == again.json()["id"]
    assert again.headers.get("Idempotent-Replayed") == "true"
    other = await api.post("alpha", mission_body(particles=2000), **{"Idempotency-Key": "k-1"})
    assert other.status_code == 422
    assert "different request body" in other.text
    async with api.database.unit_of_work() as uow:
        count = await uow.missions.count()
    assert count == 1


async def test_same_key_while_in_flight_is_409_and_a_dead_request_frees_it(api: Api) -> None:
    import uuid

    from driftline.contracts.missions import MissionCreate
    from driftline.missions import request_fingerprint

    body = mission_body()
    fingerprint = request_fingerprint(MissionCreate.model_validate(body))

    class Crashed(Exception):
        pass

    with contextlib.suppress(Crashed):
        # A first request holding the key, not finished yet: its transaction is open.
        async with api.database.unit_of_work() as uow:
            assert await uow.idempotency.claim(
                "alpha", "k-busy", fingerprint, mission_id=uuid.uuid4(), status=202, body={}
            )
            response = await api.post("alpha", body, **{"Idempotency-Key": "k-busy"})
            assert response.status_code == 409
            assert response.json()["type"].endswith("idempotency-key-in-use")
            raise Crashed  # the first request dies: its transaction rolls back
    retried = await api.post("alpha", body, **{"Idempotency-Key": "k-busy"})
    assert retried.status_code == 202, "nothing of the dead request is left to wait out"
    assert retried.headers.get("Idempotent-Replayed") is None
    again = await api.post("alpha", body, **{"Idempotency-Key": "k-busy"})
    assert again.json()["id"] == retried.json()["id"]


async def test_concurrent_same_key_files_one_mission(api: Api) -> None:
    body = mission_body()
    answers = await asyncio.gather(
        *(api.post("alpha", body, **{"Idempotency-Key": "k-race"}) for _ in range(8))
    )
    accepted = [a for a in answers if a.status_code == 202]
    assert accepted and {a.status_code for a in answers} <= {202, 409}
    assert len({a.json()["id"] for a in accepted}) == 1
    async with api.database.unit_of_work() as uow:
        assert await uow.missions.count() == 1


async def test_other_tenant_sees_404_and_no_key_401(api: Api) -> None:
    mission_id = (await api.post("alpha", mission_body())).json()["id"]
    own = await api.client.get(f"/v1/missions/{mission_id}", headers=api.auth("alpha"))
    assert own.status_code == 200 and own.json()["status"] == "accepted"
    foreign = await api.client.get(f"/v1/missions/{mission_id}", headers=api.auth("bravo"))
    assert foreign.status_code == 404
    for path in ("", "/results", "/events"):
        assert (
            await api.client.get(f"/v1/missions/{mission_id}{path}", headers=api.auth("bravo"))
        ).status_code == 404
    assert (await api.client.get(f"/v1/missions/{mission_id}")).status_code == 401
    bad = {"Authorization": "Bearer dl_nope"}
    assert (await api.client.get(f"/v1/missions/{mission_id}", headers=bad)).status_code == 401


async def test_invalid_body_names_each_field(api: Api) -> None:
    body = mission_body(particles=0, duration_hours=-3)
    body["last_known_position"]["lat"] = 123
    response = await api.post("alpha", body)
    assert response.status_code == 422
    fields = {e["field"] for e in response.json()["errors"]}
    assert {"particles", "duration_hours", "last_known_position.lat"} <= fields


async def test_list_is_newest_first_paginated_and_filtered(api: Api) -> None:
    ids = [(await api.post("alpha", mission_body(name=f"m{i}"))).json()["id"] for i in range(5)]
    await api.post("bravo", mission_body())
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (
            await api.client.get("/v1/missions", params=params, headers=api.auth("alpha"))
        ).json()
        seen += [m["id"] for m in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == list(reversed(ids))
    filtered = await api.client.get(
        "/v1/missions", params={"status": "completed"}, headers=api.auth("alpha")
    )
    assert filtered.json()["items"] == []


async def test_cancel_and_results_409_until_completed(api: Api) -> None:
    mission_id = (await api.post("alpha", mission_body())).json()["id"]
    results = await api.client.get(f"/v1/missions/{mission_id}/results", headers=api.auth("alpha"))
    assert results.status_code == 409
    cancelled = await api.client.delete(f"/v1/missions/{mission_id}", headers=api.auth("alpha"))
    assert cancelled.status_code == 202
    assert cancelled.json()["status"] == "cancelled"
    events = await api.client.get(f"/v1/missions/{mission_id}/events", headers=api.auth("alpha"))
    statuses = [line for line in events.text.splitlines() if line.startswith("data:")]
    assert '"accepted"' in statuses[0] and '"cancelled"' in statuses[-1]


async def test_health_and_metrics(api: Api) -> None:
    assert (await api.client.get("/healthz")).json() == {"status": "ok"}
    ready = await api.client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {"database": True, "kafka": True}
    await api.post("alpha", mission_body())
    text = (await api.client.get("/metrics")).text
    assert "driftline_missions_accepted_total" in text
    assert "driftline_outbox_backlog" in text
    assert "driftline_http_requests_total" in text
