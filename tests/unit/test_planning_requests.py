"""Plan and search requests as the API screens them (no services)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from driftline.contracts.plans import PlanCreate, SearchCreate
from driftline.db.models import Mission
from driftline.errors import RequestRejected
from driftline.plans import MissionNotReady, MissionWindow, object_key, particles_key, screen_plan
from tests.helpers import mission_body


def _mission(status: str = "completed", **changes: Any) -> Mission:
    request = mission_body(**changes)
    return Mission(
        id=uuid.uuid4(),
        tenant="jrcc",
        name="raft",
        request=request,
        status=status,
        result={"artifacts": [{"name": "raw/particles.nc", "key": "jrcc/m/raw/particles.nc"}]},
    )


def test_window_follows_the_request_forward_and_backward() -> None:
    forward = MissionWindow.of(mission_body())
    assert forward.start == datetime(2024, 1, 1, 6, tzinfo=UTC)
    assert forward.end == datetime(2024, 1, 1, 18, tzinfo=UTC)
    backward = MissionWindow.of({**mission_body(), "options": {"backward": True}})
    assert backward.end == datetime(2024, 1, 1, 6, tzinfo=UTC)
    assert backward.start == datetime(2023, 12, 31, 18, tzinfo=UTC)
    assert forward.clamp(datetime(2024, 1, 2, tzinfo=UTC)) == forward.end


def test_plans_need_a_completed_mission_with_its_particles() -> None:
    assert particles_key(_mission()) == "jrcc/m/raw/particles.nc"
    with pytest.raises(MissionNotReady):
        particles_key(_mission(status="simulated"))
    gone = _mission()
    gone.result = {"artifacts": []}
    with pytest.raises(MissionNotReady):
        particles_key(gone)


def test_screening_names_each_offending_field() -> None:
    body = PlanCreate.model_validate(
        {
            "commence_time": "2024-01-02T00:00:00Z",
            "units": [
                {"name": "A", "type": "vessel", "speed_kn": 10, "time_on_scene_h": 2},
                {"name": "B", "type": "helicopter", "speed_kn": 90, "time_on_scene_h": 1},
            ],
        }
    )
    screen_plan(
        _mission(), body.model_copy(update={"commence_time": datetime(2024, 1, 1, 9, tzinfo=UTC)})
    )
    with pytest.raises(RequestRejected) as info:
        screen_plan(_mission(object_type="OIL-DRUM"), body)
    fields = [field for field, _, _ in info.value.problems]
    assert fields == ["commence_time", "units.0.sweep_width_km", "units.1.sweep_width_km"]


def test_object_type_by_numeric_id_maps_to_its_key() -> None:
    assert object_key(_mission(object_type=26)) == "LIFE-RAFT-NB-1"


@pytest.mark.parametrize(
    "body",
    [
        {"searched_at": "2024-01-01T10:00:00Z"},  # nothing searched
        {"searched_at": "2024-01-01T10:00:00", "plan_id": str(uuid.uuid4()), "unit": "A"},
        {
            "searched_at": "2024-01-01T10:00:00Z",
            "geometry": {"type": "LineString", "coordinates": [[4, 60], [4.1, 60]]},
        },  # tracks without a sweep width
        {
            "searched_at": "2024-01-01T10:00:00Z",
            "geometry": {"type": "Polygon", "coordinates": [[[4, 60], [4.1, 60]]]},
            "pod": 0.5,
        },  # not a polygon
    ],
)
def test_bad_searches_are_refused(body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        SearchCreate.model_validate(body)


def test_unit_names_are_unique_within_a_plan() -> None:
    unit = {"name": "A", "type": "vessel", "speed_kn": 10, "time_on_scene_h": 2}
    with pytest.raises(ValidationError, match="unique"):
        PlanCreate.model_validate({"commence_time": "2024-01-01T10:00:00Z", "units": [unit, unit]})
