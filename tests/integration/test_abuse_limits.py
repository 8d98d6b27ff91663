"""Limits per API key (rate, concurrent streams), status streams fed by LISTEN/NOTIFY,
and key revocation taking effect at once, on the real app and PostgreSQL."""

from __future__ import annotations

import asyncio
import time

import httpx

from driftline.auth import revoke_api_key
from driftline.settings import Settings
from tests.helpers import mission_body
from tests.integration.api_harness import ApiHarness, assert_problem, running_api
from tests.pipeline import run_cli


def rate_headers(response: httpx.Response) -> tuple[str, str]:
    return response.headers["RateLimit"], response.headers["RateLimit-Policy"]


async def test_reads_over_the_limit_are_429_with_ietf_headers(settings: Settings) -> None:
    async with running_api(settings, rate_limit_read_burst=3, rate_limit_read_per_s=0.2) as api:
        answers = [await api.client.get("/v1/missions", headers=api.auth()) for _ in range(4)]
        assert [r.status_code for r in answers[:3]] == [200, 200, 200]
        assert rate_headers(answers[0]) == ('"read";r=2;t=5', '"read";q=3;w=15')
        refused = answers[3]
        problem = assert_problem(refused, 429)
        assert problem["type"].endswith("rate-limited")
        assert int(refused.headers["Retry-After"]) >= 1
        limit, policy = rate_headers(refused)
        assert limit.startswith('"read";r=0;') and policy == '"read";q=3;w=15'
        # Per key: the other tenant's key still reads; writes have their own bucket.
        assert (await api.client.get("/v1/missions", headers=api.auth("bravo"))).status_code == 200
        assert (await api.post(mission_body())).status_code == 202


async def test_writes_over_the_limit_are_429(settings: Settings) -> None:
    async with running_api(settings, rate_limit_write_burst=2, rate_limit_write_per_s=0.1) as api:
        codes = [(await api.post(mission_body())).status_code for _ in range(3)]
        assert codes == [202, 202, 429]
        async with api.database.unit_of_work() as uow:
            assert await uow.missions.count() == 2
        assert (await api.post(mission_body(), tenant="bravo")).status_code == 202


async def test_revoked_key_is_refused_at_once(settings: Settings) -> None:
    async with running_api(settings) as api:
        assert (await api.client.get("/v1/missions", headers=api.auth())).status_code == 200
        async with api.database.unit_of_work() as uow:
            await revoke_api_key(uow, api.key_ids["alpha"])
        refused = await api.client.get("/v1/missions", headers=api.auth())
        assert "revoked" in assert_problem(refused, 401)["detail"]
        assert (await api.client.get("/v1/missions", headers=api.auth("bravo"))).status_code == 200


async def test_keys_list_and_revoke_from_the_cli(settings: Settings) -> None:
    async with running_api(settings) as api:
        listed = await run_cli(settings, "keys", "list", "--tenant", "alpha")
        key_id = str(api.key_ids["alpha"])
        assert key_id in listed and "alpha test key" in listed
        assert str(api.key_ids["bravo"]) not in listed
        revoked = await run_cli(settings, "keys", "revoke", key_id)
        assert f"revoked key {key_id} of tenant alpha" in revoked
        assert_problem(await api.client.get("/v1/missions", headers=api.auth()), 401)
        relisted = await run_cli(settings, "keys", "list")
        row = next(line for line in relisted.splitlines() if key_id in line)
        assert "alpha" in row and row.count("20") >= 2  # created and revoked times


# -- status streams -----------------------------------------------------------------------


async def open_stream(api: ApiHarness, mission_id: str, tenant: str = "alpha") -> httpx.Response:
    return await api.client.get(f"/v1/missions/{mission_id}/events", headers=api.auth(tenant))


async def test_stream_wakes_on_notify_not_on_a_poll(settings: Settings) -> None:
    # Keep-alive and idle far away: only a notification can end this stream quickly.
    async with running_api(settings, sse_keepalive_s=60.0, sse_idle_timeout_s=120.0) as api:
        await api.wait_listening()
        mission_id = (await api.post(mission_body())).json()["id"]
        stream = asyncio.create_task(open_stream(api, mission_id))
        await api.wait_streams(1)
        await asyncio.sleep(0.3)  # the stream has read `accepted` and waits
        cancelled_at = time.monotonic()
        await api.client.delete(f"/v1/missions/{mission_id}", headers=api.auth())
        response = await asyncio.wait_for(stream, 10)
        assert time.monotonic() - cancelled_at < 2.0
        events = [line for line in response.text.splitlines() if line.startswith("data:")]
        assert '"accepted"' in events[0] and '"cancelled"' in events[-1]
        assert response.headers["content-type"].startswith("text/event-stream")
        assert api.services.slots.open(api.key_ids["alpha"]) == 0


async def test_streams_per_key_are_capped_and_idle_streams_end(settings: Settings) -> None:
    async with running_api(
        settings, sse_max_streams_per_key=2, sse_idle_timeout_s=1.5, sse_keepalive_s=0.5
    ) as api:
        mission_id = (await api.post(mission_body())).json()["id"]
        started = time.monotonic()
        streams = [asyncio.create_task(open_stream(api, mission_id)) for _ in range(2)]
        await api.wait_streams(2)
        third = await open_stream(api, mission_id)
        assert assert_problem(third, 429)["type"].endswith("too-many-streams")
        assert "Retry-After" in third.headers
        # Another key is not affected.
        other = (await api.post(mission_body(), tenant="bravo")).json()["id"]
        bravo = asyncio.create_task(open_stream(api, other, tenant="bravo"))
        for response in await asyncio.gather(*streams, bravo):
            assert response.status_code == 200
            assert ": keep-alive" in response.text and ": idle, closing" in response.text
            assert '"accepted"' in response.text
        assert 1.5 <= time.monotonic() - started < 10
        assert api.services.slots.open(api.key_ids["alpha"]) == 0
        assert (await asyncio.wait_for(open_stream(api, mission_id), 10)).status_code == 200


async def test_stream_resumes_after_last_event_id(settings: Settings) -> None:
    async with running_api(settings) as api:
        mission_id = (await api.post(mission_body())).json()["id"]
        await api.client.delete(f"/v1/missions/{mission_id}", headers=api.auth())
        full = await open_stream(api, mission_id)
        ids = [line.split(": ", 1)[1] for line in full.text.splitlines() if line.startswith("id:")]
        assert len(ids) == 2
        resumed = await api.client.get(
            f"/v1/missions/{mission_id}/events",
            headers={**api.auth(), "Last-Event-ID": ids[0]},
        )
        assert [line for line in resumed.text.splitlines() if line.startswith("id:")] == [
            f"id: {ids[1]}"
        ]
