"""Weighted scenarios in the mission request: the single-scenario body stays valid, the
derived envelope covers every scenario, refusals name what is wrong, and the validate
stage checks each scenario."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from driftline.contracts.envelope import Envelope, stage_source
from driftline.contracts.events import MissionRequestedV1, MissionValidatedV1
from driftline.contracts.missions import MissionCreate, particles_per_scenario
from driftline.errors import InvalidMission
from driftline.forcing.plan import seed_area
from driftline.settings import Settings
from tests.fakes import FakeLand, still_water_catalog
from tests.helpers import mission_body
from workers.validate import validate

LKP = {"lat": 60.0, "lon": 4.0, "time": "2024-01-01T06:00:00Z", "radius_m": 500}
TRACK = [
    {"lat": 59.9, "lon": 3.6, "time": "2024-01-01T02:00:00Z"},
    {"lat": 60.1, "lon": 3.8, "time": "2024-01-01T05:00:00Z"},
]
AREA = {
    "geometry": {
        "type": "Polygon",
        "coordinates": [[[3.5, 60.2], [3.7, 60.2], [3.7, 60.3], [3.5, 60.3], [3.5, 60.2]]],
    },
    "time": "2024-01-01T06:00:00Z",
}


def _two(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "Fishing vessel overdue",
        "duration_hours": 12,
        "particles": 1000,
        "scenarios": [
            {
                "name": "PIW at LKP",
                "weight": 0.6,
                "object_type": "PIW-1",
                "last_known_position": LKP,
            },
            {"name": "raft from track", "weight": 0.4, "object_type": 7, "track": TRACK},
        ],
    }
    body.update(changes)
    return body


def _errors(body: dict[str, Any]) -> list[tuple[tuple[Any, ...], str]]:
    with pytest.raises(ValidationError) as info:
        MissionCreate.model_validate(body)
    return [(e["loc"], e["msg"]) for e in info.value.errors()]


def test_the_single_scenario_body_is_one_scenario_of_weight_one() -> None:
    request = MissionCreate.model_validate(mission_body())
    assert request.scenarios is None
    [only] = request.scenario_list()
    assert only.weight == 1 and only.object_type == "LIFE-RAFT-DB-10"
    assert only.last_known_position == request.last_known_position
    assert request.scenario_particles() == [500]
    assert "scenarios" not in request.model_dump(exclude_none=True)


def test_without_scenarios_the_old_fields_are_still_required_by_name() -> None:
    body = mission_body()
    del body["object_type"], body["last_known_position"]
    errors = _errors(body)
    assert [loc for loc, _ in errors] == [("object_type",), ("last_known_position",)]


def test_scenarios_derive_an_envelope_that_covers_each_of_them() -> None:
    request = MissionCreate.model_validate(_two(scenarios=[*_two()["scenarios"], _area()]))
    assert request.object_type == "PIW-1", "the heaviest scenario's"
    envelope = request.last_known_position
    assert envelope.time == datetime(2024, 1, 1, 2, tzinfo=UTC), "the first seed time"
    box = seed_area(request)  # what the forcing plan covers
    for scenario in request.scenario_list():
        for lon, lat, _ in scenario.seed_points():
            assert box.lon_min <= lon <= box.lon_max and box.lat_min <= lat <= box.lat_max
    assert request.scenario_particles() == [500, 333, 167]


def _area(weight: float = 0.2) -> dict[str, Any]:
    return {"name": "reported area", "weight": weight, "object_type": "PIW-1", "area": AREA}


def test_a_stored_request_comes_back_the_same() -> None:
    request = MissionCreate.model_validate(_two())
    again = MissionCreate.model_validate(json.loads(request.model_dump_json()))
    assert again == request
    event = MissionRequestedV1(
        mission_id=uuid.uuid4(), tenant="t", requested_at=datetime.now(UTC), request=request
    )
    assert MissionRequestedV1.model_validate_json(event.model_dump_json()) == event


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"end_position": LKP}, ("end_position",), "each carries its own"),
        ({"particles": 20}, ("scenarios", 1, "weight"), "would get 8 particles"),
        ({"options": {"backward": True}}, ("options", "backward"), "single-scenario body"),
        ({"duration_hours": 2}, ("scenarios", 0), "after the run ends"),
        (
            {"last_known_position": {"lat": 1.0, "lon": 1.0, "time": "2024-01-01T02:00:00Z"}},
            ("last_known_position",),
            "omit it: it is derived",
        ),
        ({"object_type": "PIW-3"}, ("object_type",), "omit it: each has its own"),
    ],
)
def test_scenario_refusals_name_the_field_and_what_to_change(
    changes: dict[str, Any], field: tuple[Any, ...], words: str
) -> None:
    errors = _errors(_two(**changes))
    assert any(loc == field and words in msg for loc, msg in errors), errors


def test_a_name_with_braces_is_quoted_as_it_is() -> None:
    body = _two(duration_hours=2)
    body["scenarios"][0]["name"] = "raft {A}"
    errors = dict(_errors(body))
    assert "'raft {A}' may release its object" in errors[("scenarios", 0)]


@pytest.mark.parametrize(
    ("scenario", "words"),
    [
        ({"name": "x", "weight": 1, "object_type": 1}, "exactly one of"),
        (
            {"name": "x", "weight": 1, "object_type": 1, "track": TRACK, "area": AREA},
            "exactly one of",
        ),
        ({"name": "x", "weight": 0, "object_type": 1, "last_known_position": LKP}, "greater than"),
        ({"name": "x", "weight": 1, "object_type": "BOAT", "last_known_position": LKP}, "Leeway"),
        (
            {"name": "x", "weight": 1, "object_type": 1, "track": TRACK[::-1]},
            "must not go backwards",
        ),
        (
            {
                "name": "x",
                "weight": 1,
                "object_type": 1,
                "area": {
                    "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0]]]},
                    "time": "2024-01-01T06:00:00Z",
                },
            },
            "4 to 1000 positions",
        ),
        (
            {
                "name": "x",
                "weight": 1,
                "object_type": 1,
                "area": {
                    "geometry": {
                        "type": "Polygon",
                        "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]],
                    },
                    "time": "2024-01-01T06:00:00Z",
                },
            },
            "crosses itself",
        ),
    ],
)
def test_a_bad_scenario_is_refused_at_its_place(scenario: dict[str, Any], words: str) -> None:
    errors = _errors(_two(scenarios=[scenario]))
    assert any(loc[:2] == ("scenarios", 0) and words in msg for loc, msg in errors), errors


def test_scenarios_too_far_apart_for_one_mission() -> None:
    far = {**LKP, "lat": 66.0}  # 667 km north: 333 km either side of the centre
    body = _two()
    body["scenarios"][1] = {
        "name": "far",
        "weight": 0.4,
        "object_type": 1,
        "last_known_position": far,
    }
    [(loc, msg)] = _errors(body)
    assert loc == ("scenarios",) and "separate missions" in msg


def test_weights_divide_the_particles_to_within_one() -> None:
    assert particles_per_scenario(1000, [0.6, 0.4]) == [600, 400]
    assert particles_per_scenario(1000, [1, 1, 1]) == [334, 333, 333]
    counts = particles_per_scenario(997, [0.55, 0.3, 0.15])
    assert sum(counts) == 997
    assert all(abs(c - 997 * w) < 1 for c, w in zip(counts, [0.55, 0.3, 0.15], strict=True))


def _requested(body: dict[str, Any]) -> Envelope[MissionRequestedV1]:
    data = MissionRequestedV1(
        mission_id=uuid.uuid4(),
        tenant="t",
        requested_at=datetime.now(UTC),
        request=MissionCreate.model_validate(body),
    )
    return Envelope(data=data, source=stage_source("test"))


async def test_validate_names_each_scenarios_objects() -> None:
    outcome = await validate(
        _requested(_two()), settings=Settings(), catalog=still_water_catalog(), land=FakeLand()
    )
    [validated] = outcome.emits
    assert isinstance(validated, MissionValidatedV1)
    assert validated.object_type_key == "PIW-1"
    assert "2 scenarios; object PIW-1, LIFE-RAFT-DB-10" in (outcome.detail or "")


async def test_validate_refuses_a_scenario_on_land_naming_it() -> None:
    body = _two()
    body["scenarios"][0]["last_known_position"] = {**LKP, "lon": 4.5}  # east of the coast
    with pytest.raises(InvalidMission) as info:
        await validate(
            _requested(body), settings=Settings(), catalog=still_water_catalog(), land=FakeLand()
        )
    assert info.value.reason == "position_on_land"
    assert "of scenario 'PIW at LKP'" in info.value.detail


async def test_validate_refuses_a_track_entirely_on_land() -> None:
    body = _two()
    body["scenarios"][1]["track"] = [{**p, "lon": 4.5} for p in TRACK]
    with pytest.raises(InvalidMission) as info:
        await validate(
            _requested(body), settings=Settings(), catalog=still_water_catalog(), land=FakeLand()
        )
    assert "The track of scenario 'raft from track' lies entirely on land" in info.value.detail


def test_the_schema_says_either_the_old_fields_or_scenarios() -> None:
    schema = MissionCreate.model_json_schema()
    assert "last_known_position" not in schema.get("required", [])
    assert schema["anyOf"] == [
        {"required": ["object_type", "last_known_position"]},
        {"required": ["scenarios"]},
    ]
    assert schema["properties"]["scenarios"]["anyOf"][0]["maxItems"] == 8
