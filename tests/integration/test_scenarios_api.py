"""Weighted scenarios over the real API and PostgreSQL: accepted and stored with the
derived fields, refused with one entry per offending field, the old body unchanged."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from driftline.settings import Settings
from tests.helpers import mission_body
from tests.integration.api_harness import ApiHarness, assert_problem, error_fields, running_api

LKP = {"lat": 60.0, "lon": 4.0, "time": "2024-01-01T06:00:00Z", "radius_m": 500}
TRACK = [
    {"lat": 59.9, "lon": 3.6, "time": "2024-01-01T02:00:00Z"},
    {"lat": 60.1, "lon": 3.8, "time": "2024-01-01T05:00:00Z"},
]


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[ApiHarness]:
    async with running_api(settings) as harness:
        yield harness


def _scenarios(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "Fishing vessel overdue",
        "duration_hours": 12,
        "particles": 1000,
        "scenarios": [
            {"name": "PIW", "weight": 0.6, "object_type": "PIW-1", "last_known_position": LKP},
            {"name": "raft", "weight": 0.4, "object_type": 7, "track": TRACK},
        ],
    }
    body.update(changes)
    return body


async def test_a_scenario_mission_is_accepted_and_shown_with_derived_fields(
    api: ApiHarness,
) -> None:
    response = await api.post(_scenarios())
    assert response.status_code == 202, response.text
    shown = (await api.client.get(response.headers["Location"], headers=api.auth())).json()
    request = shown["request"]
    assert [s["name"] for s in request["scenarios"]] == ["PIW", "raft"]
    assert request["object_type"] == "PIW-1"
    assert request["last_known_position"]["time"] == "2024-01-01T02:00:00Z"
    # The stored request, posted again, is the same mission body (the derived fields match).
    again = await api.post({k: v for k, v in request.items() if v is not None})
    assert again.status_code == 202, again.text


async def test_scenario_refusals_name_each_field(api: ApiHarness) -> None:
    body = _scenarios(particles=20, end_position=LKP)
    body["scenarios"].append({"name": "bad", "weight": 1, "object_type": 1})
    response = await api.post(body)
    assert_problem(response, 422)
    assert error_fields(response) == {"scenarios.2"}, "shape errors first, per scenario"
    body["scenarios"].pop()
    response = await api.post(body)
    assert error_fields(response) == {"end_position", "scenarios.1.weight"}


async def test_the_single_scenario_body_still_needs_its_fields(api: ApiHarness) -> None:
    body = mission_body()
    del body["last_known_position"]
    response = await api.post(body)
    assert error_fields(response) == {"last_known_position"}
    assert (await api.post(mission_body())).status_code == 202
