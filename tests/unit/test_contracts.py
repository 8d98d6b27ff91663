"""The mission request's validation and the published schemas."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from driftline.contracts.missions import MissionCreate
from driftline.contracts.schemas import rendered_schemas
from driftline.contracts.topics import all_topics, consumer_group

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas"


def _body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "Person in water",
        "object_type": "PIW-1",
        "last_known_position": {
            "lat": 60.0,
            "lon": 4.0,
            "time": "2024-01-01T12:00:00Z",
            "radius_m": 500,
        },
        "duration_hours": 24,
        "particles": 1000,
    }
    body.update(changes)
    return body


def test_valid_request_is_normalised_to_utc() -> None:
    body = _body(last_known_position={"lat": 60, "lon": 4, "time": "2024-01-01T14:00:00+02:00"})
    mission = MissionCreate.model_validate(body)
    assert mission.last_known_position.time.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
    assert mission.last_known_position.time.hour == 12


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"particles": 0}, "particles"),
        ({"duration_hours": -1}, "duration_hours"),
        ({"last_known_position": {"lat": 91, "lon": 0, "time": "2024-01-01T00:00:00Z"}}, "lat"),
        ({"last_known_position": {"lat": 60, "lon": 4, "time": "2024-01-01T00:00:00"}}, "time"),
        ({"callback_url": "not a url"}, "callback_url"),
        ({"unknown": 1}, "unknown"),
        ({"end_position": {"lat": 60, "lon": 4, "time": "2023-12-31T00:00:00Z"}}, "end_position"),
    ],
)
def test_bad_fields_are_named(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        MissionCreate.model_validate(_body(**changes))
    assert field in str(info.value)


def test_topics_and_groups_follow_the_contract() -> None:
    names = all_topics("driftline.")
    for expected in (
        "driftline.missions.requested",
        "driftline.missions.validated",
        "driftline.forcing.ready",
        "driftline.simulations.completed",
        "driftline.results.ready",
        "driftline.missions.completed",
        "driftline.missions.failed",
        "driftline.missions.status",
        "driftline.missions.requested.dlq",
    ):
        assert expected in names
    assert consumer_group("driftline.", "validate") == "driftline.validate"


def test_published_schemas_are_current() -> None:
    """Fails when an event model changed without `make schemas`."""
    for name, content in rendered_schemas().items():
        path = SCHEMA_DIR / name
        assert path.exists(), f"schemas/{name} missing: run `make schemas`"
        assert path.read_text() == content, f"schemas/{name} is stale: run `make schemas`"
