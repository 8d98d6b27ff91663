"""Hostile input answers in words, never 500: each row of issue 8, sent as it is.

Every test drives the real app on the test's own PostgreSQL database. Callback URLs are
loopback IP literals only: nothing here resolves a name or reaches past 127.0.0.1/::1.
"""

from __future__ import annotations

import base64
import re
import socket
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from driftline.api.streams import asyncpg_dsn
from driftline.contracts.object_types import object_types
from driftline.settings import Settings
from tests.helpers import mission_body
from tests.integration.api_harness import (
    ApiHarness,
    assert_problem,
    error_fields,
    running_api,
)

W3C_TRACEPARENT = re.compile(r"00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}")
MB = 1024 * 1024


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[ApiHarness]:
    async with running_api(settings) as harness:
        yield harness


async def mission_count(api: ApiHarness) -> int:
    async with api.database.unit_of_work() as uow:
        return await uow.missions.count()


# -- strings PostgreSQL cannot store --------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "changes"),
    [
        ("name", {"name": "Life\u0000raft"}),
        ("external_ref", {"external_ref": "JRCC-\u0000"}),
        ("object_type", {"object_type": "LIFE-RAFT-DB-10\u0000"}),
        ("forcing.current", {"forcing": {"current": "\u0000", "wind": None}}),
        ("forcing.wind", {"forcing": {"current": None, "wind": "norkyst\u0000"}}),
    ],
)
async def test_nul_character_is_422_naming_the_field(
    api: ApiHarness, field: str, changes: dict[str, Any]
) -> None:
    response = await api.post(mission_body(**changes))
    assert error_fields(response) == {field}
    assert "NUL" in assert_problem(response, 422)["errors"][0]["message"]
    assert await mission_count(api) == 0


async def test_lone_surrogate_is_422_not_500(api: ApiHarness) -> None:
    # JSON may escape a lone surrogate, which UTF-8 (and so PostgreSQL) cannot hold.
    raw = '{"name": "\\ud800", "object_type": 1, "last_known_position": {"lat": 60, "lon": 4, '
    raw += '"time": "2024-01-01T06:00:00Z"}}'
    response = await api.client.post(
        "/v1/missions",
        content=raw.encode(),
        headers={**api.auth(), "Content-Type": "application/json"},
    )
    assert error_fields(response) == {"name"}


# -- object types -----------------------------------------------------------------------


@pytest.mark.parametrize("object_type", ["NOT-A-TYPE", 9999, True])
async def test_unknown_object_type_is_422_pointing_at_the_list(
    api: ApiHarness, object_type: object
) -> None:
    response = await api.post(mission_body(object_type=object_type))
    assert error_fields(response) == {"object_type"}
    assert "GET /v1/object-types" in response.json()["errors"][0]["message"]
    assert await mission_count(api) == 0


async def test_object_type_by_any_case_key_or_id_is_accepted(api: ApiHarness) -> None:
    for object_type, canonical in (("life-raft-db-10", "LIFE-RAFT-DB-10"), (7, 7), ("7", 7)):
        response = await api.post(mission_body(object_type=object_type))
        assert response.status_code == 202, response.text
        shown = await api.client.get(response.headers["Location"], headers=api.auth())
        # Stored in the form the published event schemas declare.
        assert shown.json()["request"]["object_type"] == canonical


async def test_object_types_are_listed_without_a_key(api: ApiHarness) -> None:
    response = await api.client.get("/v1/object-types")
    assert response.status_code == 200
    listed = response.json()
    assert len(listed) == 85
    assert {k: listed[0][k] for k in ("key", "id", "description")} == {
        "key": "PIW-1",
        "id": 1,
        "description": "Person-in-water (PIW), unknown state (mean values)",
    }
    assert listed[0]["leeway"]["downwind_slope"] == 0.96
    assert listed == [c.model_dump() for c in object_types()]


# -- times --------------------------------------------------------------------------------


@pytest.mark.parametrize("moment", ["9999-12-31T20:00:00Z", "0001-01-01T00:30:00+01:00"])
async def test_time_outside_the_sane_window_is_422(api: ApiHarness, moment: str) -> None:
    body = mission_body()
    body["last_known_position"]["time"] = moment
    response = await api.post(body)
    assert error_fields(response) == {"last_known_position.time"}
    assert await mission_count(api) == 0


async def test_window_follows_the_settings(settings: Settings) -> None:
    async with running_api(settings, mission_max_future_days=0.0) as api:
        body = mission_body()
        body["last_known_position"]["time"] = "2030-01-01T00:00:00Z"
        assert error_fields(await api.post(body)) == {"last_known_position.time"}
        body["last_known_position"]["time"] = "1949-12-31T23:00:00Z"
        assert error_fields(await api.post(body)) == {"last_known_position.time"}
        body["last_known_position"]["time"] = "1950-01-01T00:00:00Z"
        body["end_position"] = {"lat": 60.1, "lon": 4.1, "time": "2031-01-01T00:00:00Z"}
        assert error_fields(await api.post(body)) == {"end_position.time"}


# -- traceparent --------------------------------------------------------------------------


async def stored_traceparent(api: ApiHarness, mission_id: str) -> str:
    async with api.database.unit_of_work() as uow:
        mission = await uow.missions.get(uuid.UUID(mission_id))
    assert mission is not None and mission.traceparent is not None
    return mission.traceparent


TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.mark.parametrize(
    "traceparent",
    [
        f"00-{TRACE_ID}-00f067aa0ba902b7-01{'0' * 4000}",  # over-long flags
        f"00-{TRACE_ID}ab-00f067aa0ba902b7-01",  # over-long trace id
        f"00-{TRACE_ID}-00f067aa0ba902b7-zz",  # non-hex flags
        f"00-{TRACE_ID[:-2]}zz-00f067aa0ba902b7-01",  # non-hex trace id
        f"00-{TRACE_ID.upper()}-00F067AA0BA902B7-01",  # upper case
        f"00-{'0' * 32}-00f067aa0ba902b7-01",  # all-zero trace id
    ],
)
async def test_invalid_traceparent_starts_a_new_trace(api: ApiHarness, traceparent: str) -> None:
    response = await api.post(mission_body(), traceparent=traceparent)
    assert response.status_code == 202, response.text
    assert traceparent not in response.text and "traceparent" not in response.headers
    stored = await stored_traceparent(api, response.json()["id"])
    assert W3C_TRACEPARENT.fullmatch(stored), stored
    assert TRACE_ID not in stored.lower() and "0" * 32 not in stored


async def test_valid_traceparent_keeps_its_trace(api: ApiHarness) -> None:
    response = await api.post(mission_body(), traceparent=f"00-{TRACE_ID}-00f067aa0ba902b7-01")
    stored = await stored_traceparent(api, response.json()["id"])
    assert stored.split("-")[1] == TRACE_ID and W3C_TRACEPARENT.fullmatch(stored)


# -- Last-Event-ID ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "last_event_id",
    ["²".encode("latin-1"), b"99999999999999999999999", str(2**63).encode(), b"-1", b" "],
)
async def test_bad_last_event_id_is_ignored(api: ApiHarness, last_event_id: bytes) -> None:
    mission_id = (await api.post(mission_body())).json()["id"]
    await api.client.delete(f"/v1/missions/{mission_id}", headers=api.auth())
    response = await api.client.get(
        f"/v1/missions/{mission_id}/events",
        headers=api.raw_auth(Last_Event_ID=last_event_id),
    )
    assert response.status_code == 200, response.text
    statuses = [line for line in response.text.splitlines() if line.startswith("data:")]
    assert len(statuses) == 2 and '"cancelled"' in statuses[-1]  # replayed from the start


# -- bodies -------------------------------------------------------------------------------


class CountingBody:
    """A 64 MB request body handed over in 64 KiB chunks, counting what was pulled."""

    def __init__(self, total: int = 64 * MB, chunk: int = 64 * 1024) -> None:
        self.total, self.chunk, self.pulled = total, chunk, 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for _ in range(self.total // self.chunk):
            self.pulled += 1
            yield b" " * self.chunk


async def test_64_mb_body_without_a_key_is_401_unread(api: ApiHarness) -> None:
    body = CountingBody()
    response = await api.client.post(
        "/v1/missions",
        content=body,
        headers={"Content-Type": "application/json", "Content-Length": str(body.total)},
    )
    assert_problem(response, 401)
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert body.pulled == 0


async def test_64_mb_body_with_a_key_is_413_unread(api: ApiHarness) -> None:
    body = CountingBody()
    response = await api.client.post(
        "/v1/missions",
        content=body,
        headers={
            **api.auth(),
            "Content-Type": "application/json",
            "Content-Length": str(body.total),
        },
    )
    assert_problem(response, 413)
    assert body.pulled == 0


async def test_64_mb_bytes_body_is_401_then_413(api: ApiHarness) -> None:
    payload = b" " * (64 * MB)
    headers = {"Content-Type": "application/json"}
    assert_problem(await api.client.post("/v1/missions", content=payload, headers=headers), 401)
    response = await api.client.post(
        "/v1/missions", content=payload, headers={**headers, **api.auth()}
    )
    assert_problem(response, 413)


async def test_streamed_body_is_stopped_at_the_limit(api: ApiHarness) -> None:
    body = CountingBody()  # no Content-Length: sent chunked, counted as it arrives
    response = await api.client.post(
        "/v1/missions",
        content=body,
        headers={**api.auth(), "Content-Type": "application/json"},
    )
    assert_problem(response, 413)
    limit_chunks = api.services.settings.api_max_body_bytes // body.chunk
    assert body.pulled <= limit_chunks + 1  # stopped at the limit, not read to the end


async def test_body_limit_is_a_setting(settings: Settings) -> None:
    async with running_api(settings, api_max_body_bytes=2048) as api:
        response = await api.post(mission_body(name="x" * 190, external_ref="y" * 190))
        assert response.status_code == 202, response.text
        body = mission_body(name="x" * 190) | {"padding": "z" * 3000}
        assert_problem(await api.post(body), 413)


@pytest.mark.parametrize(
    ("content_type", "content"),
    [
        ("text/plain", b'{"name": "x"}'),
        ("application/xml", b"<mission><name>x</name></mission>"),
        ("application/x-www-form-urlencoded", b"name=x&object_type=1"),
        ("multipart/form-data; boundary=b", b'--b\r\nContent-Disposition: form-data; name="a"'),
    ],
)
async def test_bodies_that_are_not_json_are_415(
    api: ApiHarness, content_type: str, content: bytes
) -> None:
    response = await api.client.post(
        "/v1/missions", content=content, headers={**api.auth(), "Content-Type": content_type}
    )
    assert_problem(response, 415)
    assert response.headers["Accept"] == "application/json"


# -- Idempotency-Key ----------------------------------------------------------------------


@pytest.mark.parametrize("key", [b"", b" ", b"x" * 256, "caf\u00e9".encode("latin-1"), b"a\tb"])
async def test_malformed_idempotency_key_is_400(api: ApiHarness, key: bytes) -> None:
    response = await api.client.post(
        "/v1/missions", json=mission_body(), headers=api.raw_auth(Idempotency_Key=key)
    )
    assert "Idempotency-Key" in assert_problem(response, 400)["detail"]
    assert await mission_count(api) == 0


async def test_failed_request_releases_its_idempotency_key(settings: Settings) -> None:
    """A request that fails (500) after claiming its key leaves no claim behind: the
    retry is processed (202), not told to wait (409) until the claim expires."""
    async with running_api(settings, raise_app_exceptions=False) as api:
        # A real failure inside the mission's transaction, after the key was claimed:
        # this test's own database refuses every new mission for a while.
        admin = await asyncpg.connect(asyncpg_dsn(settings.database_url))
        try:
            await admin.execute(
                "CREATE FUNCTION refuse_mission() RETURNS trigger AS $$ BEGIN "
                "RAISE EXCEPTION 'refused by the test'; END $$ LANGUAGE plpgsql;"
                "CREATE TRIGGER refuse_mission BEFORE INSERT ON missions "
                "FOR EACH ROW EXECUTE FUNCTION refuse_mission()"
            )
            body = mission_body()
            failed = await api.post(body, **{"Idempotency-Key": "retry-me"})
            problem = assert_problem(failed, 500)
            assert "refused by the test" not in failed.text  # the cause stays in the logs
            assert problem["detail"]
            async with api.database.unit_of_work() as uow:
                assert await uow.idempotency.get("alpha", "retry-me") is None
            await admin.execute("DROP TRIGGER refuse_mission ON missions")
        finally:
            await admin.close()
        retried = await api.post(body, **{"Idempotency-Key": "retry-me"})
        assert retried.status_code == 202, retried.text
        again = await api.post(body, **{"Idempotency-Key": "retry-me"})
        assert again.json()["id"] == retried.json()["id"]
        assert again.headers["Idempotent-Replayed"] == "true"


# -- callback URLs (loopback literals only: nothing is resolved or contacted) ----------------


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/hook", "http://[::1]:9/hook"])
async def test_callback_to_an_internal_address_is_422(api: ApiHarness, url: str) -> None:
    response = await api.post(mission_body(callback_url=url))
    assert error_fields(response) == {"callback_url"}
    entry = response.json()["errors"][0]
    assert entry["type"] == "callback_url_refused"
    assert url in entry["message"]  # the filter's own sentence, naming the URL
    assert await mission_count(api) == 0


async def test_allow_listed_callback_is_accepted(settings: Settings) -> None:
    # Accepted only: no worker runs here, so nothing is ever delivered.
    async with running_api(settings, webhook_allowlist=["127.0.0.1/32"]) as api:
        response = await api.post(mission_body(callback_url="http://127.0.0.1:9/hook"))
        assert response.status_code == 202, response.text


async def test_several_refusals_come_back_together(api: ApiHarness) -> None:
    body = mission_body(callback_url="http://127.0.0.1:9/hook")
    body["last_known_position"]["time"] = "9999-12-31T20:00:00Z"
    assert error_fields(await api.post(body)) == {"callback_url", "last_known_position.time"}


# -- PostgreSQL unavailable ---------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_database_refusing_connections_is_503_with_retry_after(settings: Settings) -> None:
    closed = f"postgresql+asyncpg://driftline:driftline@127.0.0.1:{free_port()}/driftline"
    async with running_api(settings.model_copy(update={"database_url": closed}), tenants=()) as api:
        headers = {"Authorization": "Bearer dl_whatever"}
        for response in (
            await api.client.post("/v1/missions", json=mission_body(), headers=headers),
            await api.client.get("/v1/missions", headers=headers),
            await api.client.get(f"/v1/missions/{uuid.uuid4()}/events", headers=headers),
        ):
            assert_problem(response, 503)
            assert int(response.headers["Retry-After"]) > 0
        assert (await api.client.get("/v1/object-types")).status_code == 200
        assert (await api.client.get("/readyz")).status_code == 503


# -- problem details everywhere -----------------------------------------------------------


async def test_errors_are_problem_details(api: ApiHarness) -> None:
    assert_problem(await api.client.get("/v1/missions"), 401)
    assert_problem(await api.client.get(f"/v1/missions/{uuid.uuid4()}", headers=api.auth()), 404)
    assert_problem(await api.client.get("/v1/nothing-here", headers=api.auth()), 404)
    assert_problem(await api.client.put("/v1/missions", headers=api.auth()), 405)
    bad_cursor = await api.client.get("/v1/missions?cursor=bm9wZQ", headers=api.auth())
    assert assert_problem(bad_cursor, 400)["type"].endswith("bad-cursor")
    invalid = await api.post(mission_body(particles=0))
    problem = assert_problem(invalid, 422)
    assert problem["errors"] == [
        {
            "field": "particles",
            "message": "Input should be greater than or equal to 10",
            "type": "greater_than_equal",
        }
    ]
    mission_id = (await api.post(mission_body())).json()["id"]
    results = await api.client.get(f"/v1/missions/{mission_id}/results", headers=api.auth())
    assert assert_problem(results, 409)["type"].endswith("mission-not-completed")
    forged = base64.urlsafe_b64encode(f"2024-01-01T00:00:00|{uuid.uuid4()}".encode()).decode()
    response = await api.client.get("/v1/missions", params={"cursor": forged}, headers=api.auth())
    assert_problem(response, 400)  # a zone-less time in a forged cursor: 400, not 500
